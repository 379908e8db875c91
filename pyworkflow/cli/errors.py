"""Turning failures into one red ``Error: ...`` line plus a hint, exit code 1 — never a traceback
(``--verbose`` shows it). Click's own usage errors keep exit code 2."""

from __future__ import annotations

import sqlite3
from typing import IO, Any

import click

from pyworkflow.cli.output import print_error
from pyworkflow.client.errors import ApiError, TransportError, UnknownWorkflowError
from pyworkflow.client.http import is_loopback
from pyworkflow.config import ENV_API_URL
from pyworkflow.exceptions import (
    ConfigurationError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    HookPayloadError,
    InvalidArgumentsError,
    InvalidTokenError,
    ScheduleNotFoundError,
    WorkflowAlreadyRunningError,
    WorkflowError,
    WorkflowNotFoundError,
)


class CliError(click.ClickException):
    """A failure the user can fix; printed as one red line and a hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        print_error(self.message, self.hint)


def _unreachable(exc: TransportError, api_url: str) -> CliError:
    cause = exc.__cause__
    reason = (
        "no answer in time"
        if isinstance(cause, TimeoutError)
        else str(cause) or type(cause).__name__
    )
    hint = (
        f"is `pyworkflow dev` running? (check --api-url / {ENV_API_URL})"
        if is_loopback(api_url)
        else f"check --api-url (or {ENV_API_URL}) and your network"
    )
    return CliError(f"Cannot reach {api_url}: {reason}", hint)


def _api_error(exc: ApiError, api_url: str) -> CliError:
    """Answers that are not pyworkflow's own errors: API Gateway's, or not an API at all."""
    if isinstance(exc, TransportError):
        if exc.__cause__ is not None:
            return _unreachable(exc, api_url)
        return CliError(
            f"{api_url} did not answer as a pyworkflow API: {exc}",
            f"check --api-url (or {ENV_API_URL}): the stack's API base URL, stage included",
        )
    hint: str | None = None
    if exc.status in (401, 403):
        hint = (
            "the API checks SigV4 signatures (IAM auth): set AWS credentials allowed to "
            "call it and AWS_REGION (or pass --no-sign for an API without auth)"
        )
    elif exc.status == 404 and exc.error_type is None:
        hint = f"no such route there: check --api-url (or {ENV_API_URL}), stage included"
    return CliError(f"API {api_url}: {exc}", hint)


def to_cli_error(exc: BaseException, *, db: str, api_url: str | None = None) -> CliError:
    """The message and a hint for an exception raised by a command (``api_url``: the command
    talked to that API rather than to local storage)."""
    message = str(exc) or type(exc).__name__
    hint: str | None = None
    if api_url is not None:
        if isinstance(exc, ApiError):
            return _api_error(exc, api_url)
        if isinstance(exc, UnknownWorkflowError):
            return CliError(
                message,
                "'pyworkflow workflows list' shows the workflows the API "
                "serves (its function's PYWORKFLOW_MODULE)",
            )
        if isinstance(exc, ConfigurationError):  # e.g. no credentials to sign with
            return CliError(
                message.replace("pass sign=False", "pass --no-sign"),
                "configure AWS credentials and AWS_REGION, or --no-sign for an "
                "API that checks no signature",
            )
    if isinstance(exc, WorkflowNotFoundError):
        hint = (
            f"'pyworkflow runs list' shows the runs the API at {api_url} has"
            if api_url is not None
            else f"'pyworkflow runs list' shows the runs stored in {db} (choose another with --db)"
        )
    elif isinstance(exc, ScheduleNotFoundError):
        hint = "'pyworkflow schedules list' shows the schedules"
    elif isinstance(exc, InvalidTokenError | HookNotFoundError):
        shows = (
            "'pyworkflow runs logs RUN_ID --filter hook' shows a run's hooks"
            if api_url is not None
            else "'pyworkflow hooks list --run RUN_ID' shows a run's hooks"
        )
        hint = f"{shows}; without the token, use 'pyworkflow hooks resume --run RUN_ID --name NAME'"
    elif isinstance(exc, HookExpiredError | HookAlreadyReceivedError):
        hint = "a hook takes one payload before it expires" + (
            "" if api_url is not None else "; see 'pyworkflow hooks list'"
        )
    elif isinstance(exc, HookPayloadError):
        hint = "the hook stays pending: send a payload matching its schema"
    elif isinstance(exc, InvalidArgumentsError):
        hint = "'pyworkflow workflows info NAME' shows the workflow's parameters"
    elif isinstance(exc, WorkflowAlreadyRunningError):
        hint = "a run with this idempotency key is still running: wait for it or use another key"
    elif isinstance(exc, ConfigurationError):
        hint = "check --module/-m (PYWORKFLOW_MODULE) and --db (PYWORKFLOW_DB)"
    elif isinstance(exc, sqlite3.Error):
        message = f"Database {db}: {message}"
        hint = "point --db (or PYWORKFLOW_DB) at a writable SQLite file"
    elif isinstance(exc, WorkflowError | ValueError):
        pass
    elif isinstance(exc, OSError) and "://" in (db or ""):  # a database server
        message = f"Cannot reach database {db}: {message}"
        hint = "check the URL of --db (or PYWORKFLOW_DB / PYWORKFLOW_DATABASE_URL)"
    elif isinstance(exc, NotImplementedError):
        message = f"Not available in this build: {message or 'not implemented'}"
    else:
        message = f"{type(exc).__name__}: {message}"
        hint = "re-run with --verbose to see the traceback"
    return CliError(message, hint)

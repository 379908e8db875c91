"""Turning failures into one red ``Error: ...`` line plus a hint, exit code 1 — never a traceback
(``--verbose`` shows it). Click's own usage errors keep exit code 2."""

from __future__ import annotations

import sqlite3
from typing import IO, Any

import click

from pyworkflow.cli.output import print_error
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


def to_cli_error(exc: BaseException, *, db: str) -> CliError:
    """The message and a hint for an exception raised by a command."""
    message = str(exc) or type(exc).__name__
    hint: str | None = None
    if isinstance(exc, WorkflowNotFoundError):
        hint = f"'pyworkflow runs list' shows the runs stored in {db} (choose another with --db)"
    elif isinstance(exc, ScheduleNotFoundError):
        hint = "'pyworkflow schedules list' shows the schedules"
    elif isinstance(exc, InvalidTokenError | HookNotFoundError):
        hint = ("'pyworkflow hooks list --run RUN_ID' shows a run's hooks; without the token, "
                "use 'pyworkflow hooks resume --run RUN_ID --name NAME'")
    elif isinstance(exc, HookExpiredError | HookAlreadyReceivedError):
        hint = "a hook takes one payload before it expires; see 'pyworkflow hooks list'"
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
    elif isinstance(exc, NotImplementedError):
        message = f"Not available in this build: {message or 'not implemented'}"
    else:
        message = f"{type(exc).__name__}: {message}"
        hint = "re-run with --verbose to see the traceback"
    return CliError(message, hint)

"""The ``pyworkflow`` command: global options and the command groups."""

from __future__ import annotations

import logging
from typing import Any

import click
from click.core import ParameterSource

import pyworkflow
from pyworkflow.cli.config import ENV_DB_PATH, ENV_MODULE, CliState, resolve
from pyworkflow.cli.errors import CliError, to_cli_error
from pyworkflow.config import ENV_API_URL
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.settings import ENV_API_NO_SIGN


class _EchoHandler(logging.Handler):
    """Engine warnings as one line on the current stderr (tracebacks only with --verbose)."""

    verbose = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                if self.verbose:
                    message += "\n" + logging.Formatter().formatException(record.exc_info)
                else:
                    message += f": {type(exc).__name__}: {exc}"
            click.echo(f"{record.levelname.lower()}: {message}", err=True)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("pyworkflow")
    handler = next((h for h in logger.handlers if isinstance(h, _EchoHandler)), None)
    if handler is None:
        handler = _EchoHandler(level=logging.WARNING)
        logger.addHandler(handler)
    handler.verbose = verbose
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:
        logger.setLevel(logging.INFO)


class PyworkflowGroup(click.Group):
    """Turns every error a command raises into one readable line (see ``errors``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except Exception as exc:
            obj = ctx.find_object(CliState)
            if obj is not None and obj.verbose:
                raise
            db = obj.db_label() if obj is not None else "?"
            api_url = obj.api_url if obj is not None else None
            raise to_cli_error(exc, db=db, api_url=api_url) from None


@click.group(cls=PyworkflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(pyworkflow.__version__, "--version", prog_name="pyworkflow")
@click.option(
    "--module",
    "-m",
    envvar=ENV_MODULE,
    metavar="MODULES",
    help=f"Module(s) defining workflows, comma-separated (env {ENV_MODULE}, or "
    'module = "..." in pyworkflow.toml / [tool.pyworkflow]).',
)
@click.option(
    "--db",
    envvar=ENV_DB_PATH,
    metavar="PATH|URL",
    help=f"SQLite file, or a database URL: postgresql://.., mysql://.. (env {ENV_DB_PATH}; "
    "default .pyworkflow/pyworkflow.db).",
)
@click.option(
    "--api-url",
    envvar=ENV_API_URL,
    metavar="URL",
    help=f"Talk to a stack's HTTP API instead of local storage (env {ENV_API_URL}), "
    "e.g. http://127.0.0.1:8787 for 'pyworkflow dev'.",
)
@click.option(
    "--no-sign",
    is_flag=True,
    envvar=ENV_API_NO_SIGN,
    help="Send API requests without a SigV4 signature (env "
    f"{ENV_API_NO_SIGN}=1). Loopback URLs (the local stack) are never signed.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"], case_sensitive=False),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--verbose", "-v", is_flag=True, help="Engine logs, and tracebacks on errors.")
@click.pass_context
def main(
    ctx: click.Context,
    module: str | None,
    db: str | None,
    api_url: str | None,
    no_sign: bool,
    output: str,
    verbose: bool,
) -> None:
    """pyworkflow: durable, event-sourced workflows on SQLite, or on AWS through the stack's
    API (--api-url).

    \b
      pyworkflow -m myapp.workflows workflows list
      pyworkflow -m myapp.workflows workflows run order --arg order_id=o-1
      pyworkflow runs list --status suspended
      pyworkflow runs logs RUN_ID
      pyworkflow -m myapp.workflows worker
      pyworkflow --api-url http://127.0.0.1:8787 workflows run order --arg order_id=o-1 --wait
    """
    source = None
    if module is not None:
        source = (
            "--module"
            if ctx.get_parameter_source("module") == ParameterSource.COMMANDLINE
            else ENV_MODULE
        )
    _setup_logging(verbose)
    if api_url is not None and ctx.get_parameter_source("db") == ParameterSource.COMMANDLINE:
        if ctx.get_parameter_source("api_url") == ParameterSource.COMMANDLINE:
            raise click.UsageError(
                "--db and --api-url exclude each other: runs are either in a "
                "local database or behind the API"
            )
        api_url = None  # --db on the command line beats PYWORKFLOW_API_URL in the environment
    obj = resolve(module, source, db, output.lower(), verbose, api_url, no_sign)
    ctx.obj = obj
    if obj.remote:
        try:
            obj.backend  # noqa: B018 - builds the client now: a bad URL fails here
        except ConfigurationError as exc:
            raise CliError(
                str(exc),
                f"--api-url (or {ENV_API_URL}) is the stack's API base "
                "URL, e.g. http://127.0.0.1:8787",
            ) from None
        return
    try:
        obj.configure_storage()
    except (ValueError, OSError, ConfigurationError) as exc:
        raise CliError(f"Cannot use database {obj.db_label()}: {exc}") from None


def _register() -> None:
    from pyworkflow.cli.db import db
    from pyworkflow.cli.dev import dev
    from pyworkflow.cli.hooks import hooks
    from pyworkflow.cli.init import init
    from pyworkflow.cli.replay import replay
    from pyworkflow.cli.runs import runs
    from pyworkflow.cli.schedules import schedules
    from pyworkflow.cli.worker import worker
    from pyworkflow.cli.workflows import workflows

    for command in (workflows, runs, hooks, schedules, worker, dev, init, replay, db):
        main.add_command(command)
    _output_everywhere(main)


def _set_output(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CliState).output = value.lower()


def _output_everywhere(group: click.Group) -> None:
    """``-o json`` after the command too (``pyworkflow runs logs RUN_ID -o json``), not only
    before it: where people type it, and what the docs show."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _output_everywhere(command)
        elif not any("--output" in p.opts for p in command.params):
            command.params.append(
                click.Option(
                    ["--output", "-o"],
                    type=click.Choice(["table", "json"], case_sensitive=False),
                    default=None,
                    expose_value=False,
                    callback=_set_output,
                    help="Output format (also accepted before the command).",
                )
            )


_register()

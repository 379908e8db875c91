"""``pyworkflow dev``: the AWS stack of ``template.yaml`` on this machine, until Ctrl-C.

The logic is ``pyworkflow.dev.stack.LocalStack``; this command parses options, prints where
everything is, and logs each API request in one line. Any exit (Ctrl-C, SIGTERM, a start-up
error) stops DynamoDB Local and moto's server with it.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import shlex
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from pyworkflow.cli.config import ENV_MODULE, state
from pyworkflow.cli.errors import CliError
from pyworkflow.cli.init import DISTRIBUTION
from pyworkflow.cli.output import console, info, print_key_values
from pyworkflow.settings import unset_variables

if TYPE_CHECKING:
    from pyworkflow.dev.stack import LocalStack

# Lambda's logs are JSON lines; in a terminal they drown the request lines unless asked for.
_QUIET_ENV = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=what)
        out[name] = value
    return out


def _default_template() -> Path:
    """``./template.yaml``: the stack of the project this runs in."""
    here = Path.cwd() / "template.yaml"
    if here.is_file():
        return here
    raise CliError(
        f"No template.yaml in {Path.cwd()}: run pyworkflow dev in a project's folder "
        "(pyworkflow init NAME creates one), or pass --template PATH"
    )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C (``finally`` blocks run, the JVM is stopped) instead of
    ending the process on the spot, during start-up too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _curl_hint(api_url: str, modules: str | None) -> str:
    """A ``POST /runs`` for the first workflow of the module, its parameters as kwargs."""
    body: dict[str, Any] = {"workflow": "<workflow>", "kwargs": {}}
    if modules:
        try:
            from pyworkflow.config import import_modules
            from pyworkflow.core.registry import list_workflows

            import_modules(modules)
            found = sorted(list_workflows().items())
            if found:
                name, defn = found[0]
                params = defn.signature.parameters if defn.signature is not None else {}
                body = {
                    "workflow": name,
                    "kwargs": {
                        p: "..."
                        for p, spec in params.items()
                        if spec.default is inspect.Parameter.empty
                        and spec.kind not in (spec.VAR_POSITIONAL, spec.VAR_KEYWORD)
                    },
                }
        except Exception:  # noqa: BLE001 - only a hint; the worker reports import errors
            pass
    data = shlex.quote(json.dumps(body))
    return f"curl -s -X POST {api_url}/runs -H 'content-type: application/json' -d {data}"


@click.command("dev")
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="Port of the local HTTP API on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--module",
    "-m",
    "module",
    metavar="MODULES",
    help=f"Workflow module(s) for the functions (default: the global --module / "
    f"{ENV_MODULE}, else the template's WorkflowModule default).",
)
@click.option(
    "--template",
    "-t",
    "template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SAM template (default: ./template.yaml, else pyworkflow's).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Template parameter override (repeatable), e.g. --param MaxReceiveCount=3.",
)
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Extra function environment (repeatable), e.g. "
    "--env PYWORKFLOW_SQS_DELAY_MAX_SECONDS=0 (every timer via the Scheduler).",
)
@click.option(
    "--dynamodb-endpoint",
    metavar="URL",
    help="Use this running DynamoDB (Local) instead of starting one.",
)
@click.option(
    "--persist",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep DynamoDB Local's data in DIR across restarts (default: in memory, gone on exit).",
)
@click.option(
    "--lambda-runtime",
    is_flag=True,
    help="Run each function as Lambda does: its own long-lived process under AWS's runtime "
    "interface client (awslambdaric), with the function's timeout enforced; cold starts are "
    "printed. Default: the handlers run in this process.",
)
@click.option(
    "--iam",
    is_flag=True,
    help="Enforce the template's roles: each function signs as its role (implies "
    "--lambda-runtime), Scheduler delivers with its role, moto's IAM checks every request "
    "(DynamoDB served by moto, as DynamoDB Local checks none); on exit, the actions each role "
    "was granted and never used.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="No line per API request, SQS delivery or Scheduler fire.",
)
def dev(
    port: int,
    module: str | None,
    template: Path | None,
    params: tuple[str, ...],
    envs: tuple[str, ...],
    dynamodb_endpoint: str | None,
    persist: Path | None,
    lambda_runtime: bool,
    iam: bool,
    quiet: bool,
) -> None:
    """Run the deployable stack locally: DynamoDB Local, SQS and Scheduler (moto), the API
    function behind an HTTP API, the worker fed by the queue. Ctrl-C stops it.

    \b
      pyworkflow -m myapp.workflows dev
      PYWORKFLOW_API_URL=http://127.0.0.1:8787 pyworkflow runs list
    """
    st = state()
    # the local stack's own dependencies are an extra, not the library's
    needed = ("moto", "awslambdaric") if lambda_runtime or iam else ("moto",)
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise CliError(
            f"pyworkflow dev needs the local stack's dependencies ({', '.join(missing)} "
            f"missing): pip install '{DISTRIBUTION}[local]'"
        )
    from pyworkflow.dev.stack import LocalStack

    if iam and (persist is not None or dynamodb_endpoint is not None):
        raise CliError("--iam serves DynamoDB from moto: no --persist or --dynamodb-endpoint")
    if persist is not None and dynamodb_endpoint is not None:
        raise CliError(
            "--persist is for the DynamoDB Local that pyworkflow dev starts; "
            "with --dynamodb-endpoint the data is where that DynamoDB keeps it"
        )
    template_path = template or _default_template()
    module = module or st.module
    env = _pairs(envs, "--env")
    if not st.verbose:
        env = {**unset_variables(_QUIET_ENV), **env}
    out = console()
    out.print("[bold]pyworkflow dev[/bold]: the AWS stack of the template, on this machine")

    def progress(message: str) -> None:
        info(f"  {message}")

    def request_line(method: str, path: str, status: int, seconds: float) -> None:
        style = "green" if status < 400 else ("yellow" if status < 500 else "red")
        out.print(
            f"[dim]{method:<6}[/dim] {path} [{style}]{status}[/{style}] "
            f"[dim]{seconds * 1000:.0f} ms[/dim]",
            highlight=False,
        )

    def machinery_line(line: str) -> None:
        out.print(f"[dim]{escape(line)}[/dim]", highlight=False)

    if st.verbose:
        logging.getLogger("pyworkflow.dev").setLevel(logging.INFO)
    stack = LocalStack(
        template=template_path,
        parameters=_pairs(params, "--param"),
        module=module,
        port=port,
        env=env,
        on_progress=progress,
        on_request=None if quiet else request_line,
        on_event=None if quiet else machinery_line,
        dynamodb_endpoint=dynamodb_endpoint,
        persist=persist,
        lambda_runtime=lambda_runtime,
        iam=iam,
    )
    with _sigterm_as_interrupt():
        _serve(stack, template_path, persist, dynamodb_endpoint)


def _serve(
    stack: LocalStack, template_path: Path, persist: Path | None, dynamodb_endpoint: str | None
) -> None:
    from pyworkflow.dev.stack import LocalStackError
    from pyworkflow.dev.template import TemplateError

    out = console()
    try:
        stack.start()  # stops what it started when it fails or is interrupted
    except (LocalStackError, TemplateError) as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        raise click.Abort() from None
    stack_info = stack.info
    if stack_info is None:  # start() returns once the stack runs, with its info set
        stack.stop()
        raise CliError("The local stack did not start")
    rows: list[tuple[str, Any]] = [("template", template_path)]
    rows.extend(stack.describe())
    rows.append(("workflows", stack_info.environment.get(ENV_MODULE, "-")))
    print_key_values(None, rows)
    out.print()
    out.print(
        "[bold]Try[/bold]  "
        + _curl_hint(stack_info.api_url, stack_info.environment.get(ENV_MODULE)),
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"     PYWORKFLOW_API_URL={stack_info.api_url} pyworkflow runs list",
        highlight=False,
        soft_wrap=True,
    )
    if dynamodb_endpoint is not None:
        where = f"the data is in your DynamoDB at {dynamodb_endpoint}"
    elif persist is not None:
        where = f"DynamoDB Local keeps its data in {persist}"
    else:
        where = "the data is in memory and gone on exit; --persist DIR keeps it"
    out.print(f"[dim]Ctrl-C stops the stack ({where}).[/dim]")
    try:
        stack.run_forever()
    except LocalStackError as exc:
        raise CliError(str(exc)) from None
    if stack.iam_binding is not None:
        out.print(stack.iam_report(), highlight=False, markup=False)
    out.print("[dim]stopped[/dim]")

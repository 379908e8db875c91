"""``pyworkflow dev``: the AWS stack of ``template.yaml`` on this machine, until Ctrl-C.

The logic is ``pyworkflow.dev.stack.LocalStack`` (in the repository, not in the installed package);
this command parses options, prints where everything is, and logs each API request in one line.
"""

from __future__ import annotations

import inspect
import json
import logging
import shlex
from pathlib import Path
from typing import Any

import click

from pyworkflow.cli.config import ENV_MODULE, state
from pyworkflow.cli.errors import CliError
from pyworkflow.cli.output import console, info, print_key_values
from pyworkflow.settings import unset_variables

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
    """``./template.yaml`` (a user project), else the repository's."""
    here = Path.cwd() / "template.yaml"
    if here.is_file():
        return here
    from pyworkflow.dev.template import TEMPLATE_PATH

    return TEMPLATE_PATH


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
def dev(
    port: int,
    module: str | None,
    template: Path | None,
    params: tuple[str, ...],
    envs: tuple[str, ...],
    dynamodb_endpoint: str | None,
) -> None:
    """Run the deployable stack locally: DynamoDB Local, SQS and Scheduler (moto), the API
    function behind an HTTP API, the worker fed by the queue. Ctrl-C stops it.

    \b
      pyworkflow -m myapp.workflows dev
      PYWORKFLOW_API_URL=http://127.0.0.1:8787 pyworkflow runs list
    """
    st = state()
    try:
        from pyworkflow.dev.stack import LocalStack, LocalStackError
        from pyworkflow.dev.template import TemplateError
    except ImportError as exc:
        raise CliError(
            f"pyworkflow dev needs the repository's infra/ package and the dev "
            f"extras (pip install -e '.[dev]'): {exc}"
        ) from None
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

    if st.verbose:
        logging.getLogger("pyworkflow.dev").setLevel(logging.INFO)
    template_path = template or _default_template()
    stack = LocalStack(
        template=template_path,
        parameters=_pairs(params, "--param"),
        module=module,
        port=port,
        env=env,
        on_progress=progress,
        on_request=request_line,
        dynamodb_endpoint=dynamodb_endpoint,
    )
    try:
        stack.start()
    except (LocalStackError, TemplateError) as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        stack.stop()
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
    out.print("[dim]Ctrl-C stops the stack (its data lives in memory).[/dim]")
    try:
        stack.run_forever()
    except LocalStackError as exc:
        raise CliError(str(exc)) from None
    out.print("[dim]stopped[/dim]")

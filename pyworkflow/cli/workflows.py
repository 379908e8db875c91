"""``pyworkflow workflows list | info NAME | run NAME``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from pyworkflow.cli.config import MODULE_HINT, CliState, run_async, state
from pyworkflow.cli.errors import CliError
from pyworkflow.cli.output import (
    error_pairs,
    info,
    json_text,
    pretty,
    print_json,
    print_key_values,
    print_table,
    status_text,
)
from pyworkflow.core.models import RunStatus

ARGS_HINT = (
    "keyword arguments: --arg key=value (repeatable; values parse as JSON, else stay "
    "strings) or --args-json '{\"key\": 1}'; positional: --args-json '[1, \"two\"]'"
)


def parse_arguments(
    arg: tuple[str, ...], args_json: str | None
) -> tuple[list[Any], dict[str, Any]]:
    """``--args-json`` (object: keyword arguments, list: positional) plus ``--arg k=v``."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if args_json is not None:
        try:
            data = json.loads(args_json)
        except json.JSONDecodeError as exc:
            raise CliError(f"--args-json is not valid JSON: {exc}", ARGS_HINT) from None
        if isinstance(data, dict):
            kwargs.update(data)
        elif isinstance(data, list):
            args = data
        else:
            raise CliError(
                "--args-json must be a JSON object (keyword arguments) or a JSON list "
                f"(positional arguments), not {type(data).__name__}",
                ARGS_HINT,
            )
    for item in arg:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--arg {item!r} is not key=value", ARGS_HINT)
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return args, kwargs


@click.group()
def workflows() -> None:
    """Registered workflows: list, inspect, run."""


@workflows.command("list")
def list_cmd() -> None:
    """List the workflows defined in the imported modules (or served by --api-url)."""
    st = state()
    defs = run_async(st.backend.workflows())
    if st.json:
        print_json(defs)
        return
    if not defs:
        if st.remote:
            info(f"No workflows registered at {st.backend.label}.")
            return
        where = f"imported: {', '.join(st.imported)}" if st.imported else "no module imported"
        info(f"No workflows registered ({where}).")
        info(f"Hint: {MODULE_HINT}")
        return
    print_table(
        "Workflows",
        ["Name", "Parameters", "Max duration", "Tags", "Module"],
        [
            (
                d["name"],
                d.get("signature") or "-",
                d.get("max_duration") or "-",
                ", ".join(d.get("tags") or []) or "-",
                d.get("module") or "-",
            )
            for d in defs
        ],
    )


@workflows.command("info")
@click.argument("name")
def info_cmd(name: str) -> None:
    """Show a workflow's parameters and options."""
    st = state()
    data = run_async(st.backend.workflow(name))
    if st.json:
        print_json(data)
        return
    durable = data.get("durable")
    pairs: list[tuple[str, Any]] = [("Name", data["name"])]
    if data.get("module"):
        pairs.append(("Function", f"{data['module']}.{data['function']}"))
    pairs += [
        ("Signature", f"{data['name']}{data.get('signature') or '(...)'}"),
        ("Max duration", data.get("max_duration") or "-"),
        ("Tags", ", ".join(data.get("tags") or []) or "-"),
        ("Durable", "default" if durable is None else str(durable).lower()),
    ]
    if data.get("version"):
        pairs.append(("Version", data["version"]))
    for p in data.get("parameters") or []:
        detail = p["type"] or "any"
        detail += (
            ", required"
            if p["required"]
            else (f", default {p['default']}" if p["default"] is not None else "")
        )
        pairs.append((f"  {p['name']}", detail))
    description = data.get("description") or (data.get("doc") or "").split("\n")[0]
    if description:
        pairs.append(("Description", description))
    print_key_values(f"Workflow {data['name']}", pairs)


@workflows.command("run")
@click.argument("name")
@click.option(
    "--arg",
    "arg",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keyword argument (repeatable); the value is parsed as JSON when it parses.",
)
@click.option(
    "--args-json",
    metavar="JSON",
    help="Arguments as JSON: an object (keyword) or a list (positional).",
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Start at most one run for this key (repeats return that run).",
)
@click.option(
    "--wait/--no-wait",
    default=False,
    show_default=True,
    help="Keep running until the run ends (sleeps included), with a live status.",
)
@click.option(
    "--timeout", type=float, metavar="SECONDS", help="With --wait: stop waiting after this long."
)
def run_cmd(
    name: str,
    arg: tuple[str, ...],
    args_json: str | None,
    idempotency_key: str | None,
    wait: bool,
    timeout: float | None,
) -> None:
    """Start a run of workflow NAME and drive it until it completes or waits (with
    --api-url: start it in the stack; --wait follows it until it ends).

    \b
      pyworkflow -m app.flows workflows run order --arg order_id=o-1 --arg amount=12.5
      pyworkflow -m app.flows workflows run order --args-json '{"order_id": "o-1"}' --wait
    """
    st = state()
    backend = st.backend
    backend.require_workflow(name)
    args, kwargs = parse_arguments(arg, args_json)
    clash = sorted(backend.start_reserved & kwargs.keys())
    if clash:
        raise CliError(
            f"Argument name(s) {', '.join(clash)} cannot be passed by keyword",
            "pass the arguments positionally: --args-json '[...]'",
        )
    failed = run_async(_run(st, name, args, kwargs, idempotency_key, wait, timeout))
    if failed:
        raise click.exceptions.Exit(1)


async def _run(
    st: CliState,
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    idempotency_key: str | None,
    wait: bool,
    patience: float | None,
) -> bool:
    from pyworkflow.cli.watch import follow_chain, wait_until_terminal, waiting_for

    backend = st.backend
    run_id = await backend.start(name, args, kwargs, idempotency_key)
    first = await backend.get_run(run_id)
    timed_out = False
    if wait:
        try:
            final = await wait_until_terminal(backend, run_id, patience=patience, show=not st.json)
            timed_out = not final.status.is_terminal
        except asyncio.CancelledError:  # Ctrl-C: stop waiting, report where the run is
            info(f"Stopped waiting; the run carries on {backend.carries_on}.", json_mode=True)
            final = await follow_chain(backend, first)
        if timed_out and not st.json:  # JSON says it with "timed_out"
            info(
                f"Timed out after {patience:g}s; the run carries on {backend.carries_on}.",
                json_mode=True,
            )
    else:
        await backend.settle()
        final = await follow_chain(backend, first)
    chain = await backend.chain(run_id) if final.run_id != run_id else [first]
    waiting = await waiting_for(backend, final)
    result = json_text(final.result)
    if st.json:
        print_json(
            {
                "run_id": run_id,
                "workflow_name": name,
                "status": final.status.value,
                "result": result,
                "error": final.error,
                "error_type": final.error_type,
                "error_traceback": final.error_traceback,
                "final_run_id": final.run_id,
                "chain_length": len(chain),
                "waiting_for": waiting,
                "timed_out": timed_out,
            }
        )
        return final.status == RunStatus.FAILED or timed_out
    pairs: list[tuple[str, Any]] = [
        ("Run ID", run_id),
        ("Workflow", name),
        ("Status", status_text(final.status)),
    ]
    if final.run_id != run_id:
        pairs.append(
            ("Chain", f"{len(chain)} runs, now {final.run_id} (pyworkflow runs chain {run_id})")
        )
    if final.status == RunStatus.COMPLETED:
        pairs.append(("Result", pretty(result)))
    pairs.extend(error_pairs(final))
    if waiting:
        pairs.append(("Waiting for", waiting))
    print_key_values(None, pairs)
    if not final.status.is_terminal:
        if waiting and waiting.startswith("hook"):
            hook = waiting.split("'")[1]
            info(
                f"Resume it with: pyworkflow hooks resume --run {final.run_id} --name {hook} "
                "--payload '<json>'"
            )
        elif not wait and st.remote:
            info(
                f"The run carries on {backend.carries_on}: 'pyworkflow runs status "
                f"{final.run_id}' (or run with --wait)."
            )
        elif not wait:
            info("Sleeps and retries resume under 'pyworkflow worker' (or run with --wait).")
    # a timeout is not success: a script waiting for the result must see it did not come
    return final.status == RunStatus.FAILED or timed_out

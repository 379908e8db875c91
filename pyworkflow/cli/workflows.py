"""``pyworkflow workflows list | info NAME | run NAME``."""

from __future__ import annotations

import asyncio
import inspect
import json
from datetime import datetime
from typing import Any

import click

from pyworkflow.cli.config import MODULE_HINT, CliState, run_async, state
from pyworkflow.cli.errors import CliError
from pyworkflow.cli.output import (
    info,
    json_text,
    pretty,
    print_json,
    print_key_values,
    print_table,
    status_text,
)
from pyworkflow.core.models import RunStatus
from pyworkflow.core.registry import WorkflowDefinition, list_workflows

ARGS_HINT = ("keyword arguments: --arg key=value (repeatable; values parse as JSON, else stay "
             "strings) or --args-json '{\"key\": 1}'; positional: --args-json '[1, \"two\"]'")
# Keyword names start() takes for itself: they cannot reach the workflow by keyword.
_RESERVED = {"runtime", "durable", "storage", "idempotency_key"}


def parse_arguments(arg: tuple[str, ...], args_json: str | None
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
            raise CliError("--args-json must be a JSON object (keyword arguments) or a JSON list "
                           f"(positional arguments), not {type(data).__name__}", ARGS_HINT)
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


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def describe_parameters(defn: WorkflowDefinition) -> list[dict[str, Any]]:
    if defn.signature is None:
        return []
    params = []
    for p in defn.signature.parameters.values():
        annotation = defn.hints.get(p.name, p.annotation)
        params.append({
            "name": p.name,
            "kind": p.kind.name.lower(),
            "type": _type_name(annotation) or None,
            "required": p.default is inspect.Parameter.empty and p.kind not in (
                p.VAR_POSITIONAL, p.VAR_KEYWORD),
            "default": None if p.default is inspect.Parameter.empty else repr(p.default),
        })
    return params


def _signature(defn: WorkflowDefinition) -> str:
    parts = []
    for p in describe_parameters(defn):
        prefix = {"var_positional": "*", "var_keyword": "**"}.get(p["kind"], "")
        text = prefix + p["name"] + (f": {p['type']}" if p["type"] else "")
        if p["default"] is not None:
            text += f" = {p['default']}"
        parts.append(text)
    return f"({', '.join(parts)})"


def _definition_json(defn: WorkflowDefinition) -> dict[str, Any]:
    return {
        "name": defn.name,
        "module": defn.func.__module__,
        "function": defn.func.__qualname__,
        "signature": _signature(defn),
        "parameters": describe_parameters(defn),
        "max_duration": defn.max_duration,
        "tags": list(defn.tags),
        "durable": defn.durable,
        "version": defn.version,
        "doc": inspect.getdoc(defn.func),
    }


@click.group()
def workflows() -> None:
    """Registered workflows: list, inspect, run."""


@workflows.command("list")
def list_cmd() -> None:
    """List the workflows defined in the imported modules."""
    st = state()
    st.load_modules()
    defs = sorted(list_workflows().values(), key=lambda d: d.name)
    if st.json:
        print_json([_definition_json(d) for d in defs])
        return
    if not defs:
        where = f"imported: {', '.join(st.imported)}" if st.imported else "no module imported"
        info(f"No workflows registered ({where}).")
        info(f"Hint: {MODULE_HINT}")
        return
    print_table("Workflows", ["Name", "Parameters", "Max duration", "Tags", "Module"], [
        (d.name, _signature(d), d.max_duration or "-", ", ".join(d.tags) or "-",
         d.func.__module__) for d in defs
    ])


@workflows.command("info")
@click.argument("name")
def info_cmd(name: str) -> None:
    """Show a workflow's parameters and options."""
    st = state()
    defn = st.workflow(name)
    data = _definition_json(defn)
    if st.json:
        print_json(data)
        return
    pairs: list[tuple[str, Any]] = [
        ("Name", defn.name),
        ("Function", f"{data['module']}.{data['function']}"),
        ("Signature", f"{defn.name}{data['signature']}"),
        ("Max duration", defn.max_duration or "-"),
        ("Tags", ", ".join(defn.tags) or "-"),
        ("Durable", "default" if defn.durable is None else str(defn.durable).lower()),
    ]
    if defn.version:
        pairs.append(("Version", defn.version))
    for p in data["parameters"]:
        detail = p["type"] or "any"
        detail += ", required" if p["required"] else (
            f", default {p['default']}" if p["default"] is not None else "")
        pairs.append((f"  {p['name']}", detail))
    if data["doc"]:
        pairs.append(("Description", data["doc"].splitlines()[0]))
    print_key_values(f"Workflow {defn.name}", pairs)


@workflows.command("run")
@click.argument("name")
@click.option("--arg", "arg", multiple=True, metavar="KEY=VALUE",
              help="Keyword argument (repeatable); the value is parsed as JSON when it parses.")
@click.option("--args-json", metavar="JSON",
              help="Arguments as JSON: an object (keyword) or a list (positional).")
@click.option("--idempotency-key", metavar="KEY",
              help="Start at most one run for this key (repeats return that run).")
@click.option("--wait/--no-wait", default=False, show_default=True,
              help="Keep running until the run ends (sleeps included), with a live status.")
@click.option("--timeout", type=float, metavar="SECONDS",
              help="With --wait: stop waiting after this long.")
def run_cmd(name: str, arg: tuple[str, ...], args_json: str | None,
            idempotency_key: str | None, wait: bool, timeout: float | None) -> None:
    """Start a run of workflow NAME and drive it until it completes or waits.

    \b
      pyworkflow -m app.flows workflows run order --arg order_id=o-1 --arg amount=12.5
      pyworkflow -m app.flows workflows run order --args-json '{"order_id": "o-1"}' --wait
    """
    st = state()
    defn = st.workflow(name)
    args, kwargs = parse_arguments(arg, args_json)
    clash = sorted(_RESERVED & kwargs.keys())
    if clash:
        raise CliError(f"Argument name(s) {', '.join(clash)} cannot be passed by keyword",
                       "pass the arguments positionally: --args-json '[...]'")
    failed = run_async(_run(st, defn, args, kwargs, idempotency_key, wait, timeout))
    if failed:
        raise click.exceptions.Exit(1)


async def _failed_run(rt: Any, name: str, since: datetime, exc: Exception) -> str | None:
    """The run this process just started that failed with ``exc`` (None: no run was created)."""
    from pyworkflow.cli.watch import follow_chain

    page = await rt.storage.list_runs(workflow_name=name, limit=20)
    for run in reversed(page.items):  # oldest first: ours started right after ``since``
        if run.created_at < since or run.parent_run_id or run.continued_from_run_id:
            continue
        final = await follow_chain(rt, run)
        if final.status == RunStatus.FAILED and final.error_type == type(exc).__name__ \
                and final.error == str(exc):
            return run.run_id
    return None


async def _run(st: CliState, defn: WorkflowDefinition, args: list[Any], kwargs: dict[str, Any],
               idempotency_key: str | None, wait: bool, patience: float | None) -> bool:
    import pyworkflow
    from pyworkflow.cli.watch import follow_chain, wait_until_terminal, waiting_for
    from pyworkflow.runtime.local import get_runtime

    rt = get_runtime()
    started_at = rt.clock.now()
    try:
        run_id = await pyworkflow.start(defn.wrapper, *args, idempotency_key=idempotency_key,
                                        **kwargs)
    except Exception as exc:
        # start() re-raises a failed run's exception (as 0.1.9): report the run instead.
        found = await _failed_run(rt, defn.name, started_at, exc)
        if found is None:
            raise
        run_id = found
    first = await rt.storage.get_run(run_id)
    assert first is not None
    if wait:
        try:
            final = await wait_until_terminal(rt, run_id, patience=patience, show=not st.json)
        except asyncio.CancelledError:  # Ctrl-C: stop waiting, report where the run is
            info("Stopped waiting; the run carries on under 'pyworkflow worker'.", json_mode=True)
            final = await follow_chain(rt, first)
    else:
        await rt.drain()
        final = await follow_chain(rt, first)
    chain = await rt.storage.get_workflow_chain(run_id) if final.run_id != run_id else [first]
    waiting = await waiting_for(rt, final)
    result = json_text(final.result)
    if st.json:
        print_json({
            "run_id": run_id, "workflow_name": defn.name, "status": final.status.value,
            "result": result, "error": final.error, "error_type": final.error_type,
            "final_run_id": final.run_id, "chain_length": len(chain), "waiting_for": waiting,
        })
        return final.status == RunStatus.FAILED
    pairs: list[tuple[str, Any]] = [("Run ID", run_id), ("Workflow", defn.name),
                                    ("Status", status_text(final.status))]
    if final.run_id != run_id:
        pairs.append(("Chain", f"{len(chain)} runs, now {final.run_id} "
                               f"(pyworkflow runs chain {run_id})"))
    if final.status == RunStatus.COMPLETED:
        pairs.append(("Result", pretty(result)))
    if final.error:
        pairs.append(("Error", f"{final.error_type + ': ' if final.error_type else ''}"
                               f"{final.error}"))
    if waiting:
        pairs.append(("Waiting for", waiting))
    print_key_values(None, pairs)
    if not final.status.is_terminal:
        if waiting and waiting.startswith("hook"):
            hook = waiting.split("'")[1]
            info(f"Resume it with: pyworkflow hooks resume --run {final.run_id} --name {hook} "
                 "--payload '<json>'")
        elif not wait:
            info("Sleeps and retries resume under 'pyworkflow worker' (or run with --wait).")
    return final.status == RunStatus.FAILED

"""``pyworkflow runs list | status | show | logs | chain | cancel | children``."""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from pyworkflow.cli.config import run_async, state
from pyworkflow.cli.output import (
    console,
    dump_run,
    error_pairs,
    event_summary,
    fmt_time,
    info,
    json_text,
    pretty,
    print_json,
    print_key_values,
    print_table,
    print_tracebacks,
    run_duration,
    status_text,
    success,
    warn,
)
from pyworkflow.core.models import RunStatus, WorkflowRun

STATUSES = [s.value for s in RunStatus]


def _run_rows(runs: list[WorkflowRun], *, depth: bool = False) -> list[list[Any]]:
    rows = []
    for r in runs:
        row: list[Any] = [
            r.run_id,
            r.workflow_name,
            status_text(r.status),
            fmt_time(r.created_at),
            run_duration(r),
        ]
        if depth:
            row.insert(3, str(r.nesting_depth))
        rows.append(row)
    return rows


@click.group()
def runs() -> None:
    """Workflow runs: list, inspect, cancel."""


@runs.command("list")
@click.option(
    "--status", type=click.Choice(STATUSES, case_sensitive=False), help="Only runs in this status."
)
@click.option("--workflow", "workflow_name", metavar="NAME", help="Only runs of this workflow.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--cursor", metavar="CURSOR", help="Continue after a previous page.")
def list_cmd(status: str | None, workflow_name: str | None, limit: int, cursor: str | None) -> None:
    """List runs, newest first."""
    st = state()
    page = run_async(
        st.backend.list_runs(
            status=RunStatus(status.lower()) if status else None,
            workflow=workflow_name,
            limit=limit,
            cursor=cursor,
        )
    )
    if st.json:
        print_json({"runs": [dump_run(r) for r in page.items], "next_cursor": page.next_cursor})
        return
    if not page.items:
        info("No runs found.")
    else:
        print_table(
            None, ["Run ID", "Workflow", "Status", "Created", "Duration"], _run_rows(page.items)
        )
    if page.next_cursor:
        info(f"Next page: --cursor {page.next_cursor}")


@runs.command("status")
@click.argument("run_id")
def status_cmd(run_id: str) -> None:
    """Show a run's state, arguments, result or error."""
    st = state()

    async def go() -> tuple[WorkflowRun, str | None]:
        from pyworkflow.cli.watch import waiting_for

        run = await st.backend.get_run(run_id)
        return run, await waiting_for(st.backend, run)

    run, waiting = run_async(go())
    if st.json:
        print_json({**dump_run(run), "waiting_for": waiting})
        return
    pairs: list[tuple[str, Any]] = [
        ("Run ID", run.run_id),
        ("Workflow", run.workflow_name),
        ("Status", status_text(run.status)),
        ("Created", fmt_time(run.created_at)),
        ("Started", fmt_time(run.started_at)),
        ("Completed", fmt_time(run.completed_at)),
        ("Duration", run_duration(run)),
    ]
    args, kwargs = json_text(run.input_args), json_text(run.input_kwargs)
    if args:
        pairs.append(("Args", pretty(args)))
    if kwargs:
        pairs.append(("Kwargs", pretty(kwargs)))
    if run.status == RunStatus.COMPLETED:
        pairs.append(("Result", pretty(json_text(run.result))))
    pairs.extend(error_pairs(run))
    if waiting:
        pairs.append(("Waiting for", waiting))
    if run.wake_at and not run.status.is_terminal:
        pairs.append(("Wakes at", fmt_time(run.wake_at)))
    for label, value in [
        ("Idempotency key", run.idempotency_key),
        ("Parent run", run.parent_run_id),
        ("Continued from", run.continued_from_run_id),
        ("Continued as", run.continued_to_run_id),
        ("Schedule", run.schedule_id),
        ("Tags", ", ".join(run.tags)),
        ("Cancel reason", run.cancel_reason),
    ]:
        if value:
            pairs.append((label, value))
    if run.cancel_requested and not run.status.is_terminal:
        pairs.append(("Cancel", "requested"))
    if run.context:
        pairs.append(("Context", pretty(run.context)))
    print_key_values(f"Run {run.run_id}", pairs)


@runs.command("show")
@click.argument("run_id")
@click.option("--events", "with_events", is_flag=True, help="Also list the raw events.")
def show_cmd(run_id: str, with_events: bool) -> None:
    """Show a run as a timeline: one row per step, sleep, hook, child, fan-out item or patch
    with its start, duration, attempts and outcome; what it waits for; its continue-as-new
    chain and its children.

    \b
      pyworkflow runs show RUN_ID
      pyworkflow runs show RUN_ID --events
      pyworkflow -o json runs show RUN_ID
    """
    from pyworkflow.cli.timeline import collect, render, to_json

    st = state()
    view = run_async(collect(st.backend, run_id))
    if st.json:
        print_json(to_json(view, with_events=with_events))
        return
    render(view, with_events=with_events)


@runs.command("logs")
@click.argument("run_id")
@click.option(
    "--filter",
    "type_filter",
    metavar="TYPE_PREFIX",
    help="Only events whose type starts with this (e.g. step, hook.created).",
)
def logs_cmd(run_id: str, type_filter: str | None) -> None:
    """Show a run's event history."""
    st = state()

    async def go() -> list[Any]:
        await st.backend.get_run(run_id)
        return await st.backend.events(run_id)

    events = run_async(go())
    if type_filter:
        prefix = type_filter.lower().strip()
        events = [
            e
            for e in events
            if e.type.value.startswith(prefix) or e.type.value.replace(".", "_").startswith(prefix)
        ]
    if st.json:
        print_json([e.model_dump(mode="json") for e in events])
        return
    if not events:
        info(f"No events{' matching ' + repr(type_filter) if type_filter else ''} for {run_id}.")
        return
    print_table(
        f"Events of {run_id}",
        ["#", "Time", "Type", "Details"],
        [
            (
                str(e.sequence),
                fmt_time(e.timestamp, precise=True),
                status_text(e.type.value) if e.type.value.startswith("workflow.") else e.type.value,
                event_summary(e),
            )
            for e in events
        ],
    )
    print_tracebacks(events)


@runs.command("chain")
@click.argument("run_id")
def chain_cmd(run_id: str) -> None:
    """Show the continue-as-new chain RUN_ID belongs to, oldest first."""
    st = state()
    chain = run_async(st.backend.chain(run_id))
    if st.json:
        print_json([dump_run(r) for r in chain])
        return
    out = console()
    out.print(Text("Continue-As-New Chain", style="bold"))
    out.print(Text("─" * 60, style="dim"))
    out.print(f"Chain length: {len(chain)} run(s)\n")
    for i, run in enumerate(chain):
        position = "START" if i == 0 else "CURRENT" if i == len(chain) - 1 else f"#{i + 1}"
        header = Text(position, style="bold")
        if run.run_id == run_id:
            header.append(" <--")
        out.print(header)
        out.print(f"   Run ID: {run.run_id}")
        out.print(f"   Workflow: {run.workflow_name}")
        out.print(Text("   Status: ").append(status_text(run.status)))
        out.print(f"   Duration: {run_duration(run)}")
        if run.started_at:
            out.print(f"   Started: {fmt_time(run.started_at)}")
        if i < len(chain) - 1:
            out.print(Text("\n   ↓ continued as new\n", style="dim"))
        else:
            out.print()


@runs.command("cancel")
@click.argument("run_id")
@click.option("--reason", metavar="TEXT", help="Recorded with the cancellation.")
@click.option(
    "--wait/--no-wait", default=False, show_default=True, help="Wait until the run has ended."
)
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: how long to wait.",
)
def cancel_cmd(run_id: str, reason: str | None, wait: bool, timeout: float) -> None:
    """Cancel a run: it gets CancellationError at its current or next wait."""
    st = state()
    if not st.remote:
        st.load_modules()
    backend = st.backend

    async def go() -> tuple[bool, WorkflowRun, WorkflowRun]:
        before = await backend.get_run(run_id)
        if before.status.is_terminal:
            return False, before, before
        # Locally, cancelling drives the run here: its workflow must be importable.
        backend.require_workflow(before.workflow_name, run_id=run_id)
        cancelled = await backend.cancel(run_id, reason, wait=wait, timeout=timeout)
        return cancelled, before, await backend.get_run(run_id)

    cancelled, before, after = run_async(go())
    if st.json:
        print_json(
            {
                "run_id": run_id,
                "cancelled": cancelled,
                "status": after.status.value,
                "previous_status": before.status.value,
            }
        )
        return
    if before.status.is_terminal:
        warn(f"Run {run_id} already ended: {before.status.value}; nothing to cancel.")
    elif after.status == RunStatus.CANCELLED:
        success(f"Run {run_id} cancelled.")
    elif after.status.is_terminal:
        warn(f"Run {run_id} ended as {after.status.value} before the cancellation took effect.")
    else:
        info(
            f"Cancellation requested; run {run_id} is {after.status.value} and stops at its "
            "next await (add --wait to wait for it)."
        )


@runs.command("children")
@click.argument("run_id")
@click.option(
    "--status",
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Only children in this status.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def children_cmd(run_id: str, status: str | None, limit: int) -> None:
    """List the child runs RUN_ID started."""
    st = state()
    local = st.local("runs children")
    children = run_async(
        local.list_children(
            run_id, status=RunStatus(status.lower()) if status else None, limit=limit
        )
    )
    if st.json:
        print_json([dump_run(r) for r in children])
        return
    if not children:
        info(f"Run {run_id} has no child runs.")
        return
    print_table(
        f"Children of {run_id}",
        ["Run ID", "Workflow", "Status", "Depth", "Created", "Duration"],
        _run_rows(children, depth=True),
    )

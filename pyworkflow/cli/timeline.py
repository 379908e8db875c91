"""``pyworkflow runs show RUN_ID``: one run as a readable timeline in the terminal, or as JSON.

What is shown is read through the CLI's backend (local storage or a stack's API): the run, its
history, its continue-as-new chain and its children's runs. The history becomes operations with
start offsets, durations, attempts and outcomes in ``pyworkflow/runtime/timeline.py``, the
computation the web viewer (``/ui``) uses too, so both say the same thing.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from rich.text import Text

from pyworkflow.cli.output import (
    console,
    error_pairs,
    event_summary,
    fmt_offset,
    fmt_seconds,
    fmt_time,
    json_text,
    pretty,
    print_key_values,
    print_table,
    run_duration,
    short,
    status_text,
)
from pyworkflow.cli.watch import WaitTracker
from pyworkflow.core.events import Event
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.exceptions import WorkflowNotFoundError
from pyworkflow.runtime.timeline import Operation, OpKind, Timeline, build_timeline

if TYPE_CHECKING:
    from pyworkflow.cli.backend import Backend

#: Children whose runs are looked up (one request each through the API); the rest are listed
#: from the parent's history alone.
MAX_CHILD_LOOKUPS = 50
BAR_WIDTH = 24
KIND_STYLES = {
    OpKind.STEP: "blue",
    OpKind.SLEEP: "yellow",
    OpKind.HOOK: "magenta",
    OpKind.CHILD: "cyan",
    OpKind.PATCH: "dim",
    OpKind.FAN_OUT: "dim",
}


class ChildRun(BaseModel):
    """A child run as the parent's history records it, and its own status when looked up."""

    op: int
    name: str
    run_id: str
    outcome: str  # what the parent recorded: completed, failed, waiting...
    status: RunStatus | None = None  # the child run's own status (None: not looked up/found)
    path: str | None = None


class RunView(BaseModel):
    """Everything ``runs show`` prints."""

    run: WorkflowRun
    timeline: Timeline
    waiting_for: str | None
    chain: list[WorkflowRun]
    children: list[ChildRun]
    events: list[Event]


async def collect(backend: Backend, run_id: str) -> RunView:
    run = await backend.get_run(run_id)  # first: an unknown run is one clear error
    events, chain = await asyncio.gather(backend.events(run_id), backend.chain(run_id))
    timeline = build_timeline(events)
    waiting = None
    if not run.status.is_terminal:
        tracker = WaitTracker()
        tracker.feed(events)
        waiting = tracker.describe()
    children = [
        ChildRun(op=o.op, name=o.name, run_id=o.child_run_id, outcome=o.outcome, path=o.path)
        for o in timeline.children
        if o.child_run_id
    ]
    looked_up = children[:MAX_CHILD_LOOKUPS]
    found = await asyncio.gather(*(_status(backend, c.run_id) for c in looked_up))
    for child, status in zip(looked_up, found, strict=True):
        child.status = status
    return RunView(
        run=run,
        timeline=timeline,
        waiting_for=waiting,
        chain=chain,
        children=children,
        events=events,
    )


async def _status(backend: Backend, run_id: str) -> RunStatus | None:
    try:
        return (await backend.get_run(run_id)).status
    except WorkflowNotFoundError:  # recorded as started, not created yet
        return None


# --- words ------------------------------------------------------------------------------------
def _when(value: datetime | None) -> str:
    return fmt_time(value, short_today=True)


def op_label(o: Operation) -> str:
    """The op number, or its path inside a fan-out ("5.1.0")."""
    return o.path or str(o.op)


def op_detail(o: Operation) -> str:
    """The wait an operation is (or was), and what else is worth a glance, in words."""
    parts: list[str] = []
    if o.kind == OpKind.SLEEP and o.wait_until is not None:
        parts.append(f"until {_when(o.wait_until)}")
    elif o.kind == OpKind.HOOK:
        if o.end is None:
            parts.append(
                "waiting for its payload"
                + (f", expires {_when(o.wait_until)}" if o.wait_until else "")
            )
        else:
            parts.append(f"waited {fmt_seconds(o.elapsed)}")
    elif o.kind == OpKind.CHILD and o.child_run_id:
        parts.append(f"run {o.child_run_id}")
    elif o.outcome == "retrying" and o.wait_until is not None:
        parts.append(f"next attempt at {_when(o.wait_until)}")
    if o.retries:
        parts.append(f"{o.retries} retr{'y' if o.retries == 1 else 'ies'}")
    if o.fan_out is not None:
        item = f"item {o.fan_out[1]}" + (f" {o.item!r}" if o.item else "")
        parts.append(f"{item} of fan-out {o.fan_out[0]}")
    if o.error:
        parts.append(short(o.error, 80))
    return " · ".join(parts)


def bar(o: Operation, total: float, width: int = BAR_WIDTH) -> Text:
    """Where the operation sits in the run: ``█`` while it ran or waited, ``░`` still open."""
    scale = width / total if total > 0 else 0.0
    begin = min(width - 1, int(o.start * scale))
    end = width if o.end is None else min(width, max(begin + 1, math.ceil(o.end * scale)))
    style = "red" if o.failed else KIND_STYLES.get(o.kind, "")
    text = Text(" " * begin)
    text.append(("░" if o.end is None else "█") * (end - begin), style=style)
    return text


def operation_data(o: Operation) -> dict[str, Any]:
    return {
        "op": o.op,
        "path": o.path,
        "kind": o.kind.value,
        "name": o.name,
        "label": o.label,
        "item": o.item,
        "start": o.start,
        "end": o.end,
        "duration": o.elapsed,
        "attempts": o.attempts,
        "retries": o.retries,
        "outcome": o.outcome,
        "failed": o.failed,
        "run_ms": o.run_ms,
        "wait_until": o.wait_until.isoformat() if o.wait_until else None,
        "child_run_id": o.child_run_id,
        "error": o.error,
        "detail": op_detail(o),
        "fan_out": None if o.fan_out is None else {"op": o.fan_out[0], "item": o.fan_out[1]},
    }


def _seconds(run: WorkflowRun) -> float | None:
    if run.started_at is None or run.completed_at is None:
        return None
    return (run.completed_at - run.started_at).total_seconds()


def to_json(view: RunView, *, with_events: bool) -> dict[str, Any]:
    """``runs show -o json``: what the table shows, as data (durations in seconds)."""
    run = view.run
    data: dict[str, Any] = {
        "run": run.model_dump(mode="json"),
        "duration": _seconds(run),
        "waiting_for": view.waiting_for,
        "total": view.timeline.total,
        "operations": [operation_data(o) for o in view.timeline.operations],
        "chain": [{"run_id": r.run_id, "status": r.status.value} for r in view.chain],
        "previous_run_id": run.continued_from_run_id,
        "next_run_id": run.continued_to_run_id,
        "children": [c.model_dump(mode="json") for c in view.children],
    }
    if with_events:
        data["events"] = [e.model_dump(mode="json") for e in view.events]
    return data


# --- the terminal ----------------------------------------------------------------------------
def render(view: RunView, *, with_events: bool) -> None:
    _header(view)
    _operations(view.timeline)
    _chain(view)
    _children(view)
    if with_events:
        _events(view.timeline, view.events)


def _section(title: str) -> None:
    out = console()
    out.print()
    out.print(Text(title, style="bold"))


def _header(view: RunView) -> None:
    run = view.run
    workflow = run.workflow_name
    if run.metadata.get("version"):
        workflow += f" (version {run.metadata['version']})"
    pairs: list[tuple[str, Any]] = [
        ("Workflow", workflow),
        ("Status", status_text(run.status)),
        ("Created", fmt_time(run.created_at)),
        ("Started", fmt_time(run.started_at)),
        ("Finished", fmt_time(run.completed_at)),
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
    if view.waiting_for:
        pairs.append(("Waiting for", Text(view.waiting_for, style="yellow")))
    if run.wake_at and not run.status.is_terminal:
        pairs.append(("Wakes at", fmt_time(run.wake_at)))
    if run.cancel_requested and not run.status.is_terminal:
        reason = f": {run.cancel_reason}" if run.cancel_reason else ""
        pairs.append(("Cancel", f"requested{reason}"))
    for label, value in [
        ("Parent run", run.parent_run_id),
        ("Schedule", run.schedule_id),
        ("Tags", ", ".join(run.tags)),
    ]:
        if value:
            pairs.append((label, value))
    print_key_values(f"Run {run.run_id}", pairs)


def _operations(tl: Timeline) -> None:
    _section(f"Operations ({len(tl.operations)}) over {fmt_seconds(tl.total)}")
    if not tl.operations:
        console().print(Text("No steps, sleeps, hooks or children yet.", style="dim"))
        return
    rows = []
    for o in tl.operations:
        outcome = Text(
            o.outcome, style="red" if o.failed else "yellow" if o.end is None else "green"
        )
        rows.append(
            [
                op_label(o),
                Text(o.kind.value, style=KIND_STYLES.get(o.kind, "")),
                o.title,
                fmt_offset(o.start),
                fmt_seconds(o.elapsed),
                str(o.attempts) if o.kind == OpKind.STEP else "",
                outcome,
                op_detail(o),
                bar(o, tl.total),
            ]
        )
    print_table(
        None,
        ["Op", "Kind", "Name", "Start", "Duration", "Tries", "Outcome", "Detail", "Timeline"],
        rows,
    )


def _chain(view: RunView) -> None:
    run = view.run
    if len(view.chain) <= 1 and not run.continued_from_run_id and not run.continued_to_run_id:
        return
    _section(f"Continue-as-new chain ({len(view.chain)} runs)")
    out = console()
    if run.continued_from_run_id:
        out.print(f"Previous run: {run.continued_from_run_id}")
    if run.continued_to_run_id:
        out.print(f"Next run:     {run.continued_to_run_id}")
    for i, r in enumerate(view.chain, 1):
        line = Text(f"  {i}. {r.run_id} ")
        line.append(status_text(r.status))
        if r.run_id == run.run_id:
            line.append("  <- this run", style="bold")
        out.print(line)


def _children(view: RunView) -> None:
    if not view.children:
        return
    _section(f"Children ({len(view.children)})")
    rows = [
        [
            c.run_id,
            c.name,
            op_label_of(c),
            status_text(c.status) if c.status else Text("-", style="dim"),
            c.outcome,
        ]
        for c in view.children
    ]
    print_table(None, ["Run ID", "Workflow", "Op", "Status", "Parent saw"], rows)
    if len(view.children) > MAX_CHILD_LOOKUPS:
        console().print(
            Text(f"Statuses looked up for the first {MAX_CHILD_LOOKUPS} only.", style="dim")
        )


def op_label_of(child: ChildRun) -> str:
    return child.path or str(child.op)


def _events(tl: Timeline, events: list[Event]) -> None:
    _section(f"Events ({len(events)})")
    by_sequence = {e.sequence: e for e in events}
    print_table(
        None,
        ["#", "Time", "Type", "Op", "Details"],
        [
            [
                str(r.sequence),
                fmt_offset(r.offset),
                status_text(r.type) if r.family == "workflow" else r.type,
                "" if r.op is None else str(r.data.get("path") or r.op),
                event_summary(by_sequence[r.sequence]),
            ]
            for r in tl.rows
        ],
    )

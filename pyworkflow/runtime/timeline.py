"""One run's timeline, computed from its history: rows (one per event, with its time since the
run started) and operations (one per step, sleep, hook, child, patch or fan-out item: start, end,
elapsed time, attempts, outcome, what it waits for).

Pure (events in, a ``Timeline`` out) and free of any presentation, so the web viewer
(``pyworkflow/handlers/ui_templates/timeline.py``) and the terminal (``pyworkflow runs show``, in
``pyworkflow/cli/timeline.py``) say the same thing about durations, waits and retries.

Times come from the events' timestamps, which the engine takes from its clock: with a
``ManualClock`` (tests, the testing kit) every offset and duration is exact. A step that records
only its ending (the default; ``at_most_once`` steps also record ``step.started``) is taken to
have begun ``duration_ms`` before it, as the step measured its last attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from pyworkflow.core.events import TERMINAL_OP_EVENTS, Event, EventType


class OpKind(StrEnum):
    STEP = "step"
    SLEEP = "sleep"
    HOOK = "hook"
    CHILD = "child"
    CONTEXT = "context"
    PATCH = "patch"
    #: The record of a fan-out stopped early (``parallel.completed``); its items are ops of
    #: their own, with a ``path``.
    FAN_OUT = "fan_out"
    OTHER = "other"


_KIND_BY_PREFIX = {
    "step": OpKind.STEP,
    "sleep": OpKind.SLEEP,
    "hook": OpKind.HOOK,
    "child_workflow": OpKind.CHILD,
    "context": OpKind.CONTEXT,
    "patch": OpKind.PATCH,
    "parallel": OpKind.FAN_OUT,
}
#: The event that opens an operation which records its start (a step records only its end,
#: unless it is at-most-once).
_OPENING = frozenset(
    {
        EventType.STEP_STARTED,
        EventType.SLEEP_STARTED,
        EventType.HOOK_CREATED,
        EventType.CHILD_WORKFLOW_STARTED,
    }
)
_OUTCOMES = {
    EventType.STEP_COMPLETED: "completed",
    EventType.STEP_FAILED: "failed",
    EventType.STEP_CANCELLED: "cancelled",
    EventType.SLEEP_COMPLETED: "slept",
    EventType.HOOK_RECEIVED: "received",
    EventType.HOOK_EXPIRED: "expired",
    EventType.HOOK_FAILED: "failed",
    EventType.CHILD_WORKFLOW_COMPLETED: "completed",
    EventType.CHILD_WORKFLOW_FAILED: "failed",
    EventType.CHILD_WORKFLOW_CANCELLED: "cancelled",
    EventType.CONTEXT_UPDATED: "updated",
    EventType.PATCH_APPLIED: "applied",
    EventType.PARALLEL_COMPLETED: "stopped early",
}


class Row(BaseModel):
    """One event of the history."""

    sequence: int
    offset: float  # seconds since the run's first event
    type: str
    family: str  # "step", "sleep", "workflow"... (the type's prefix)
    op: int | None = None
    name: str | None = None
    attempt: int | None = None
    data: dict[str, Any]


class Operation(BaseModel):
    """A durable operation: every event with the same ``op``."""

    op: int
    kind: OpKind
    name: str
    start: float  # seconds since the run started
    end: float | None = None  # None: still running or waiting
    attempts: int = 1
    retries: int = 0
    outcome: str  # completed, failed, slept, received, waiting...
    failed: bool = False
    run_ms: float | None = None  # a step's last attempt, as the step measured it
    child_run_id: str | None = None
    #: A sleep's wake-up time; for an open hook its expiry, for a step waiting to retry the
    #: time of the next attempt.
    wait_until: datetime | None = None
    error: str | None = None
    #: Where the last failed attempt raised (user frames; ``core.retry.format_traceback``).
    traceback: str | None = None
    #: Inside a fan-out: "5.1.0" (fan-out op 5, item 1, the item's first operation).
    path: str | None = None
    #: The label the code gave the operation (``sleep(name=)``, ``start_child_workflow(name=)``,
    #: ``parallel(name=)``/``map(name=)``); ``name`` is what identifies it on replay.
    label: str | None = None
    #: Inside a fan-out: the label of the item it belongs to (``parallel(names=)``,
    #: ``map(item_name=)``).
    item: str | None = None

    @property
    def title(self) -> str:
        """The label, with the operation's own name after it when they differ."""
        if self.label and self.label != self.name:
            return f"{self.label} ({self.name})"
        return self.name

    @property
    def elapsed(self) -> float | None:
        return None if self.end is None else self.end - self.start

    @property
    def fan_out(self) -> tuple[int, int] | None:
        """(the fan-out's op, the item's index) for an operation of a fan-out item."""
        if self.path is None:
            return None
        parts = self.path.split(".")
        try:
            return int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            return None


class Timeline(BaseModel):
    started_at: datetime | None
    rows: list[Row]
    operations: list[Operation]
    total: float  # seconds from the first to the last event

    @property
    def children(self) -> list[Operation]:
        return [o for o in self.operations if o.kind == OpKind.CHILD]

    def open_operations(self) -> list[Operation]:
        return [o for o in self.operations if o.end is None]


def _family(type_: str) -> str:
    return type_.split(".", 1)[0]


def build_timeline(events: list[Event]) -> Timeline:
    events = sorted(events, key=lambda e: e.sequence)
    origin = events[0].timestamp if events else None

    def offset(e: Event) -> float:
        return (e.timestamp - origin).total_seconds() if origin is not None else 0.0

    rows = [
        Row(
            sequence=e.sequence,
            offset=offset(e),
            type=e.type.value,
            family=_family(e.type.value),
            op=e.op,
            name=e.data.get("step_name") or e.data.get("name"),
            attempt=e.data.get("attempt") if isinstance(e.data.get("attempt"), int) else None,
            data=e.data,
        )
        for e in events
    ]
    by_op: dict[int, list[Event]] = {}
    for e in events:
        # A fan-out's parallel.started only counts its items (for replay checks): the items
        # are the operations; the fan-out shows as one only when it stopped early.
        if e.op is not None and e.type != EventType.PARALLEL_STARTED:
            by_op.setdefault(e.op, []).append(e)
    operations = [_operation(op, evs, offset) for op, evs in sorted(by_op.items())]
    _label_items(events, operations)
    total = max((r.offset for r in rows), default=0.0)
    return Timeline(started_at=origin, rows=rows, operations=operations, total=total)


def _operation(op: int, events: list[Event], offset: Callable[[Event], float]) -> Operation:
    first = events[0]
    kind = _KIND_BY_PREFIX.get(_family(first.type.value), OpKind.OTHER)
    terminal = next((e for e in events if e.type in TERMINAL_OP_EVENTS), None)
    opening = next((e for e in events if e.type in _OPENING), None)
    retries = [e for e in events if e.type == EventType.STEP_RETRYING]
    name = str(first.data.get("step_name") or first.data.get("name") or kind.value)
    run_ms = terminal.data.get("duration_ms") if terminal is not None else None
    start = offset(opening or first)
    if opening is None and terminal is first and isinstance(run_ms, int | float):
        # A step records only its ending: it began when its (only) attempt began.
        start = max(0.0, offset(terminal) - run_ms / 1000)
    attempts = max(
        [int(a) for e in events if isinstance(a := e.data.get("attempt"), int)], default=1
    )
    child = next((e.data.get("child_run_id") for e in events if e.data.get("child_run_id")), None)
    label = next((e.data[k] for e in events for k in _LABEL_KEYS if e.data.get(k)), None)
    path = next((p for e in events if isinstance(p := e.data.get("path"), str)), None)
    result = Operation(
        op=op,
        kind=kind,
        name=name,
        start=start,
        end=offset(terminal) if terminal is not None else None,
        attempts=attempts,
        retries=len(retries),
        outcome="",
        run_ms=float(run_ms) if isinstance(run_ms, int | float) else None,
        child_run_id=str(child) if child else None,
        path=path,
        label=str(label) if label is not None else None,
    )
    if kind == OpKind.SLEEP and opening is not None:
        result.wait_until = parse_time(opening.data.get("resume_at"))
    failures = [e.data["traceback"] for e in events if isinstance(e.data.get("traceback"), str)]
    result.traceback = failures[-1] if failures else None
    if terminal is None:
        result.outcome = "retrying" if retries else "waiting" if opening else "running"
        if kind == OpKind.HOOK and opening is not None:
            result.wait_until = parse_time(opening.data.get("expires_at"))
        elif retries:
            result.wait_until = parse_time(retries[-1].data.get("retry_at"))
        return result
    result.outcome = _OUTCOMES.get(terminal.type, terminal.type.value)
    if terminal.type == EventType.PARALLEL_COMPLETED and terminal.data.get("reason"):
        result.outcome = f"stopped early: {terminal.data['reason']}"
    result.failed = result.outcome in ("failed", "expired", "cancelled")
    if "error" in terminal.data:
        result.error = error_text(terminal.data)
    return result


#: Where each primitive records the label the code gave it.
_LABEL_KEYS = ("sleep_name", "child_name", "label")


def _label_items(events: list[Event], operations: list[Operation]) -> None:
    """Give each operation of a fan-out item that item's label (``parallel.started``'s
    ``item_names``), and a stopped-early fan-out its own label; the innermost fan-out wins."""
    fan_outs: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.type == EventType.PARALLEL_STARTED and e.op is not None:
            path = e.data.get("path")
            fan_outs[path if isinstance(path, str) else str(e.op)] = e.data
    if not fan_outs:
        return
    for o in operations:
        if o.kind == OpKind.FAN_OUT:
            started = fan_outs.get(o.path or str(o.op))
            if started is not None and isinstance(started.get("label"), str):
                o.label = started["label"]
        if o.path is None:
            continue
        parts = o.path.split(".")
        for cut in range(len(parts) - 2, 0, -1):
            started = fan_outs.get(".".join(parts[:cut]))
            names = started.get("item_names") if started is not None else None
            if isinstance(names, list):
                index = int(parts[cut])
                o.item = str(names[index]) if 0 <= index < len(names) else None
                break


def parse_time(raw: Any) -> datetime | None:
    """An ISO time from an event's data (``resume_at``, ``retry_at``...), None if it is not."""
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def error_text(data: dict[str, Any]) -> str:
    """``ErrorType: message`` from an event's data."""
    kind = data.get("error_type")
    message = str(data.get("error") or "")
    return f"{kind}: {message}" if kind else message

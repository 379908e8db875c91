"""One run's timeline: its history turned into rows (one per event, with its time since the run
started) and operations (one per step, sleep, hook or child: start, end, elapsed time, attempts,
outcome), then rendered as the run page.

``build_timeline`` is pure (a run and its events in, a ``Timeline`` out), so what the page says
about durations, waits and retries is tested without a browser.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from handlers.ui_templates.html import (
    LIST_HREF_FROM_RUN,
    Html,
    esc,
    fmt_offset,
    fmt_seconds,
    fmt_time,
    h,
    join,
    json_block,
    json_text_block,
    page,
    run_href,
    status_badge,
)
from pyworkflow.core.events import TERMINAL_OP_EVENTS, Event, EventType
from pyworkflow.core.models import WorkflowRun

#: Keys of an event's data already shown in their own columns (or not worth showing).
_SHOWN_KEYS = frozenset({"op", "name", "step_name"})


class OpKind(StrEnum):
    STEP = "step"
    SLEEP = "sleep"
    HOOK = "hook"
    CHILD = "child"
    CONTEXT = "context"
    OTHER = "other"


_KIND_BY_PREFIX = {"step": OpKind.STEP, "sleep": OpKind.SLEEP, "hook": OpKind.HOOK,
                   "child_workflow": OpKind.CHILD, "context": OpKind.CONTEXT}
#: The event that opens an operation which records its start (a step records only its end).
_OPENING = frozenset({EventType.STEP_STARTED, EventType.SLEEP_STARTED, EventType.HOOK_CREATED,
                      EventType.CHILD_WORKFLOW_STARTED})


class Row(BaseModel):
    """One event of the history."""

    sequence: int
    offset: float                   # seconds since the run's first event
    type: str
    family: str                     # "step", "sleep", "workflow"... (the type's prefix)
    op: int | None = None
    name: str | None = None
    attempt: int | None = None
    data: dict[str, Any]


class Operation(BaseModel):
    """A durable operation: every event with the same ``op``."""

    op: int
    kind: OpKind
    name: str
    start: float                    # seconds since the run started
    end: float | None = None        # None: still running or waiting
    attempts: int = 1
    retries: int = 0
    outcome: str                    # completed, failed, slept, received, waiting...
    failed: bool = False
    run_ms: float | None = None     # a step's last attempt, as the step measured it
    child_run_id: str | None = None
    wait_until: datetime | None = None
    error: str | None = None

    @property
    def elapsed(self) -> float | None:
        return None if self.end is None else self.end - self.start


class Timeline(BaseModel):
    started_at: datetime | None
    rows: list[Row]
    operations: list[Operation]
    total: float                    # seconds from the first to the last event

    @property
    def children(self) -> list[Operation]:
        return [o for o in self.operations if o.kind == OpKind.CHILD]


def _family(type_: str) -> str:
    return type_.split(".", 1)[0]


def build_timeline(events: list[Event]) -> Timeline:
    events = sorted(events, key=lambda e: e.sequence)
    origin = events[0].timestamp if events else None

    def offset(e: Event) -> float:
        return (e.timestamp - origin).total_seconds() if origin is not None else 0.0

    rows = [Row(sequence=e.sequence, offset=offset(e), type=e.type.value,
                family=_family(e.type.value), op=e.op,
                name=e.data.get("step_name") or e.data.get("name"),
                attempt=e.data.get("attempt") if isinstance(e.data.get("attempt"), int) else None,
                data=e.data) for e in events]
    by_op: dict[int, list[Event]] = {}
    for e in events:
        if e.op is not None:
            by_op.setdefault(e.op, []).append(e)
    operations = [_operation(op, evs, offset) for op, evs in sorted(by_op.items())]
    total = max((r.offset for r in rows), default=0.0)
    return Timeline(started_at=origin, rows=rows, operations=operations, total=total)


def _operation(op: int, events: list[Event], offset: Any) -> Operation:
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
    attempts = max([int(a) for e in events if isinstance(a := e.data.get("attempt"), int)],
                   default=1)
    child = next((e.data.get("child_run_id") for e in events if e.data.get("child_run_id")),
                 None)
    result = Operation(
        op=op, kind=kind, name=name, start=start,
        end=offset(terminal) if terminal is not None else None,
        attempts=attempts, retries=len(retries), outcome="",
        run_ms=float(run_ms) if isinstance(run_ms, int | float) else None,
        child_run_id=str(child) if child else None,
    )
    if terminal is None:
        result.outcome = "retrying" if retries else "waiting" if opening else "running"
        if kind == OpKind.SLEEP and opening is not None:
            result.wait_until = _parse_time(opening.data.get("resume_at"))
        elif kind == OpKind.HOOK and opening is not None:
            result.wait_until = _parse_time(opening.data.get("expires_at"))
        elif retries:
            result.wait_until = _parse_time(retries[-1].data.get("retry_at"))
        return result
    result.outcome = {
        EventType.STEP_COMPLETED: "completed", EventType.STEP_FAILED: "failed",
        EventType.SLEEP_COMPLETED: "slept", EventType.HOOK_RECEIVED: "received",
        EventType.HOOK_EXPIRED: "expired", EventType.CHILD_WORKFLOW_COMPLETED: "completed",
        EventType.CHILD_WORKFLOW_FAILED: "failed",
        EventType.CHILD_WORKFLOW_CANCELLED: "cancelled",
        EventType.CONTEXT_UPDATED: "updated",
    }.get(terminal.type, terminal.type.value)
    result.failed = result.outcome in ("failed", "expired", "cancelled")
    if "error" in terminal.data:
        result.error = _error_text(terminal.data)
    return result


def _parse_time(raw: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _duration_text(raw: Any) -> str:
    """A sleep's duration as given: seconds (``"1"``, ``1.5``) or a string like ``"1d"``."""
    try:
        return fmt_seconds(float(raw))
    except (TypeError, ValueError):
        return str(raw)


def _error_text(data: dict[str, Any]) -> str:
    kind = data.get("error_type")
    message = str(data.get("error") or "")
    return f"{kind}: {message}" if kind else message


# --- rendering --------------------------------------------------------------------------------
def _run_link(run_id: str | None, css: str = "") -> Html:
    if not run_id:
        return Html('<span class="muted">—</span>')
    return h('<a class="{}" href="{}">{}</a>', css, run_href(run_id, from_list=False), run_id)


def _row_detail(row: Row, origin: datetime | None) -> Html:
    """What an event says, in words; payloads as escaped JSON."""
    d, t = row.data, row.type
    parts: list[Html] = []
    if row.attempt is not None:
        parts.append(h('<span class="attempt">attempt {}</span>', row.attempt))
    if "duration_ms" in d:
        parts.append(h('<span class="took">took {}</span>',
                       fmt_seconds(float(d["duration_ms"]) / 1000)))
    if "error" in d and t != EventType.WORKFLOW_CONTINUED_AS_NEW:
        parts.append(h('<span class="err">{}</span>', _error_text(d)))
    for key, label in (("retry_at", "retry at"), ("resume_at", "until"),
                       ("expires_at", "expires")):
        when = _parse_time(d.get(key))
        if when is not None:
            since = fmt_offset((when - origin).total_seconds()) if origin else ""
            parts.append(h('<span class="when">{} {} ({})</span>', label, fmt_time(when), since))
    if "duration" in d:
        parts.append(h("<span>for {}</span>", _duration_text(d["duration"])))
    if d.get("child_run_id"):
        parts.append(h("child {}", _run_link(str(d["child_run_id"]), "child")))
    if d.get("new_run_id"):
        parts.append(h("continued as {}", _run_link(str(d["new_run_id"]), "next-run")))
    if d.get("continued_from_run_id"):
        parts.append(h("continued from {}", _run_link(str(d["continued_from_run_id"]))))
    if d.get("parent_run_id"):
        parts.append(h("parent {}", _run_link(str(d["parent_run_id"]))))
    handled = {"attempt", "duration_ms", "error", "error_type", "retry_at", "resume_at",
               "expires_at", "duration", "child_run_id", "new_run_id", "continued_from_run_id",
               "parent_run_id", "hook_id", "wait", "parent_close_policy", "workflow_name"}
    rest = {k: v for k, v in d.items() if k not in handled and k not in _SHOWN_KEYS
            and not (k == "idempotency_key" and v is None)}
    for key, value in rest.items():
        parts.append(h('<span class="kv">{}=</span>{}', key, json_block(value)))
    return join(parts, " · ")


def _events_table(tl: Timeline) -> Html:
    rows = []
    for row in tl.rows:
        css = ("bad" if row.type in (EventType.STEP_FAILED, EventType.WORKFLOW_FAILED,
                                     EventType.CHILD_WORKFLOW_FAILED, EventType.HOOK_EXPIRED)
               else "retry" if row.type == EventType.STEP_RETRYING else "")
        rows.append(h(
            '<tr class="event {css}" data-seq="{seq}" data-type="{type}">'
            '<td class="num">{seq}</td><td class="num">{offset}</td>'
            '<td class="mono t-{family}">{type}</td><td class="num">{op}</td><td>{name}</td>'
            "<td>{detail}</td></tr>",
            css=css, seq=row.sequence, offset=fmt_offset(row.offset), family=row.family,
            type=row.type, op="" if row.op is None else row.op, name=row.name or "",
            detail=_row_detail(row, tl.started_at)))
    return h('<table id="timeline"><thead><tr><th class="num">#</th><th class="num">Time</th>'
             '<th>Event</th><th class="num">Op</th><th>Name</th><th>Details</th></tr></thead>'
             "<tbody>{}</tbody></table>", join(rows))


BAR_WIDTH = 220


def _bar(o: Operation, total: float) -> Html:
    scale = BAR_WIDTH / total if total > 0 else 0.0
    x = min(BAR_WIDTH - 2, o.start * scale)
    end = o.end if o.end is not None else total
    width = max(2.0, (end - o.start) * scale)
    css = "failed" if o.failed else o.kind.value if o.kind != OpKind.CONTEXT else "other"
    return h('<svg class="bar" width="{w}" height="10" aria-hidden="true">'
             '<rect class="track" x="0" y="2" width="{w}" height="6"></rect>'
             '<rect class="{css}" x="{x}" y="0" width="{width}" height="10"></rect></svg>',
             w=BAR_WIDTH, css=css, x=f"{x:.1f}", width=f"{min(width, BAR_WIDTH - x):.1f}")


def _operations_table(tl: Timeline) -> Html:
    if not tl.operations:
        return Html('<p class="muted">No steps, sleeps, hooks or children.</p>')
    rows = []
    for o in tl.operations:
        outcome = o.outcome
        if o.wait_until is not None and o.end is None:
            outcome += f" until {fmt_time(o.wait_until)}"
        detail = []
        if o.run_ms is not None:
            detail.append(h("ran {}", fmt_seconds(o.run_ms / 1000)))
        if o.child_run_id:
            detail.append(_run_link(o.child_run_id, "child"))
        if o.error:
            detail.append(h('<span class="err">{}</span>', o.error))
        rows.append(h(
            '<tr class="op {css}" data-op="{op}" data-kind="{kind}">'
            '<td class="num">{op}</td><td>{kind}</td><td>{name}</td>'
            '<td class="num">{start}</td><td class="num">{end}</td>'
            '<td class="num duration">{elapsed}</td><td class="num attempts">{attempts}</td>'
            '<td class="outcome">{outcome}</td><td>{detail}</td><td>{bar}</td></tr>',
            css="bad" if o.failed else "retry" if o.retries else "", op=o.op, kind=o.kind.value,
            name=o.name, start=fmt_offset(o.start), end=fmt_offset(o.end),
            elapsed=fmt_seconds(o.elapsed), attempts=o.attempts, outcome=outcome,
            detail=join(detail, " · "), bar=_bar(o, tl.total)))
    return h('<table id="operations"><thead><tr><th class="num">Op</th><th>Kind</th>'
             '<th>Name</th><th class="num">Start</th><th class="num">End</th>'
             '<th class="num">Elapsed</th><th class="num">Attempts</th><th>Outcome</th>'
             "<th>Details</th><th>Waterfall</th></tr></thead><tbody>{}</tbody></table>",
             join(rows))


def _chain(run: WorkflowRun, chain: list[WorkflowRun]) -> Html:
    if len(chain) <= 1 and not run.continued_from_run_id and not run.continued_to_run_id:
        return Html("")
    items = []
    for i, r in enumerate(chain, 1):
        label = h("#{} {}", i, status_badge(r.status.value))
        if r.run_id == run.run_id:
            items.append(h('<li class="current" data-run-id="{}"><span>{}</span> {}</li>',
                           r.run_id, r.run_id, label))
        else:
            items.append(h('<li data-run-id="{}">{} {}</li>', r.run_id, _run_link(r.run_id),
                           label))
    nav = []
    if run.continued_from_run_id:
        nav.append(h('<a class="chain-prev" href="{}">← previous run</a>',
                     run_href(run.continued_from_run_id, from_list=False)))
    if run.continued_to_run_id:
        nav.append(h('<a class="chain-next" href="{}">next run →</a>',
                     run_href(run.continued_to_run_id, from_list=False)))
    return h('<h2>Continue-as-new chain</h2><nav class="pager">{}</nav>'
             '<ol class="chain" id="chain">{}</ol>', join(nav), join(items))


def _children(tl: Timeline) -> Html:
    kids = tl.children
    if not kids:
        return Html("")
    items = [h('<li>{} <span class="muted">{} (op {})</span> {}</li>', _run_link(
        o.child_run_id, "child"), o.name, o.op, status_badge(o.outcome)) for o in kids]
    return h('<h2>Children</h2><ul id="children">{}</ul>', join(items))


def _facts(run: WorkflowRun) -> Html:
    duration = ((run.completed_at - run.started_at).total_seconds()
                if run.completed_at and run.started_at else None)
    facts: list[tuple[str, Html]] = [
        ("Workflow", esc(run.workflow_name)),
        ("Status", status_badge(run.status.value)),
        ("Created", esc(fmt_time(run.created_at))),
        ("Started", esc(fmt_time(run.started_at))),
        ("Completed", esc(fmt_time(run.completed_at))),
        ("Duration", esc(fmt_seconds(duration))),
        ("Arguments", json_text_block(run.input_args)),
        ("Keyword arguments", json_text_block(run.input_kwargs)),
    ]
    if run.wake_at and not run.status.is_terminal:
        facts.append(("Waiting until", esc(fmt_time(run.wake_at))))
    if run.parent_run_id:
        facts.append(("Parent", _run_link(run.parent_run_id, "parent")))
    if run.schedule_id:
        facts.append(("Schedule", esc(run.schedule_id)))
    if run.tags:
        facts.append(("Tags", esc(", ".join(run.tags))))
    if run.metadata.get("version"):
        facts.append(("Version", esc(run.metadata["version"])))
    if run.cancel_requested:
        facts.append(("Cancel requested", esc(run.cancel_reason or "yes")))
    return h('<dl class="facts">{}</dl>',
             join(h("<dt>{}</dt><dd>{}</dd>", k, v) for k, v in facts))


def _outcome(run: WorkflowRun) -> Html:
    if run.result is not None:
        return h('<h2>Result</h2><div id="result">{}</div>', json_text_block(run.result))
    if run.error is not None:
        return h('<h2>Error</h2><div id="error" class="error-box">{}</div>',
                 f"{run.error_type}: {run.error}" if run.error_type else run.error)
    return Html("")


def render_run_page(run: WorkflowRun, events: list[Event], chain: list[WorkflowRun]) -> Html:
    tl = build_timeline(events)
    body = h(
        '<p><a href="{home}">← all runs</a></p><h1 id="run-id">{run_id}</h1>{facts}{outcome}'
        "{chain}{children}<h2>Operations</h2>{ops}<h2>Timeline</h2>{events}",
        home=LIST_HREF_FROM_RUN, run_id=run.run_id, facts=_facts(run), outcome=_outcome(run),
        chain=_chain(run, chain), children=_children(tl), ops=_operations_table(tl),
        events=_events_table(tl))
    # A run still going refreshes itself; a finished one stays still.
    return page(f"Run {run.run_id}", body, home_href=LIST_HREF_FROM_RUN,
                refresh_seconds=None if run.status.is_terminal else 5)

"""One run's page: its timeline (``pyworkflow/runtime/timeline.py`` turns the history into rows
and operations: offsets, durations, waits, retries) rendered as HTML, with the run's facts, its
continue-as-new chain and its children.

The computation is pure and shared with the terminal (``pyworkflow runs show``), so what the page
says about durations, waits and retries is tested without a browser.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import WorkflowRun
from pyworkflow.handlers.ui_templates.actions import Actions, render_actions
from pyworkflow.handlers.ui_templates.html import (
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
from pyworkflow.runtime.timeline import (
    Operation,
    OpKind,
    Row,
    Timeline,
    build_timeline,
    error_text,
    parse_time,
)

__all__ = ["OpKind", "Operation", "Row", "Timeline", "build_timeline", "render_run_page"]

#: Keys of an event's data already shown in their own columns (or not worth showing).
_SHOWN_KEYS = frozenset({"op", "name", "step_name"})
#: Kinds the page's stylesheet colours; the others are drawn as "other".
_STYLED_KINDS = frozenset({OpKind.STEP, OpKind.SLEEP, OpKind.HOOK, OpKind.CHILD})


def _duration_text(raw: Any) -> str:
    """A sleep's duration as given: seconds (``"1"``, ``1.5``) or a string like ``"1d"``."""
    try:
        return fmt_seconds(float(raw))
    except (TypeError, ValueError):
        return str(raw)


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
        parts.append(
            h('<span class="took">took {}</span>', fmt_seconds(float(d["duration_ms"]) / 1000))
        )
    if "error" in d and t != EventType.WORKFLOW_CONTINUED_AS_NEW:
        parts.append(h('<span class="err">{}</span>', error_text(d)))
    for key, label in (("retry_at", "retry at"), ("resume_at", "until"), ("expires_at", "expires")):
        when = parse_time(d.get(key))
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
    handled = {
        "attempt",
        "duration_ms",
        "error",
        "error_type",
        "retry_at",
        "resume_at",
        "expires_at",
        "duration",
        "child_run_id",
        "new_run_id",
        "continued_from_run_id",
        "parent_run_id",
        "hook_id",
        "wait",
        "parent_close_policy",
        "workflow_name",
    }
    rest = {
        k: v
        for k, v in d.items()
        if k not in handled and k not in _SHOWN_KEYS and not (k == "idempotency_key" and v is None)
    }
    for key, value in rest.items():
        parts.append(h('<span class="kv">{}=</span>{}', key, json_block(value)))
    return join(parts, " · ")


def _events_table(tl: Timeline) -> Html:
    rows = []
    for row in tl.rows:
        css = (
            "bad"
            if row.type
            in (
                EventType.STEP_FAILED,
                EventType.WORKFLOW_FAILED,
                EventType.CHILD_WORKFLOW_FAILED,
                EventType.HOOK_EXPIRED,
            )
            else "retry"
            if row.type == EventType.STEP_RETRYING
            else ""
        )
        rows.append(
            h(
                '<tr class="event {css}" data-seq="{seq}" data-type="{type}">'
                '<td class="num">{seq}</td><td class="num">{offset}</td>'
                '<td class="mono t-{family}">{type}</td><td class="num">{op}</td><td>{name}</td>'
                "<td>{detail}</td></tr>",
                css=css,
                seq=row.sequence,
                offset=fmt_offset(row.offset),
                family=row.family,
                type=row.type,
                op="" if row.op is None else row.op,
                name=row.name or "",
                detail=_row_detail(row, tl.started_at),
            )
        )
    return h(
        '<table id="timeline"><thead><tr><th class="num">#</th><th class="num">Time</th>'
        '<th>Event</th><th class="num">Op</th><th>Name</th><th>Details</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        join(rows),
    )


BAR_WIDTH = 220


def _bar(o: Operation, total: float) -> Html:
    scale = BAR_WIDTH / total if total > 0 else 0.0
    x = min(BAR_WIDTH - 2, o.start * scale)
    end = o.end if o.end is not None else total
    width = max(2.0, (end - o.start) * scale)
    css = "failed" if o.failed else o.kind.value if o.kind in _STYLED_KINDS else "other"
    return h(
        '<svg class="bar" width="{w}" height="10" aria-hidden="true">'
        '<rect class="track" x="0" y="2" width="{w}" height="6"></rect>'
        '<rect class="{css}" x="{x}" y="0" width="{width}" height="10"></rect></svg>',
        w=BAR_WIDTH,
        css=css,
        x=f"{x:.1f}",
        width=f"{min(width, BAR_WIDTH - x):.1f}",
    )


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
        if o.item:
            detail.append(h('item <span class="item">{}</span>', o.item))
        if o.child_run_id:
            detail.append(_run_link(o.child_run_id, "child"))
        if o.error:
            detail.append(h('<span class="err">{}</span>', o.error))
        if o.traceback:
            detail.append(
                h(
                    '<details class="traceback"><summary>stack trace</summary>'
                    "<pre>{}</pre></details>",
                    o.traceback,
                )
            )
        rows.append(
            h(
                '<tr class="op {css}" data-op="{op}" data-kind="{kind}">'
                '<td class="num">{op}</td><td>{kind}</td><td>{name}</td>'
                '<td class="num">{start}</td><td class="num">{end}</td>'
                '<td class="num duration">{elapsed}</td><td class="num attempts">{attempts}</td>'
                '<td class="outcome">{outcome}</td><td>{detail}</td><td>{bar}</td></tr>',
                css="bad" if o.failed else "retry" if o.retries else "",
                op=o.op,
                kind=o.kind.value,
                name=o.title,
                start=fmt_offset(o.start),
                end=fmt_offset(o.end),
                elapsed=fmt_seconds(o.elapsed),
                attempts=o.attempts,
                outcome=outcome,
                detail=join(detail, " · "),
                bar=_bar(o, tl.total),
            )
        )
    return h(
        '<table id="operations"><thead><tr><th class="num">Op</th><th>Kind</th>'
        '<th>Name</th><th class="num">Start</th><th class="num">End</th>'
        '<th class="num">Elapsed</th><th class="num">Attempts</th><th>Outcome</th>'
        "<th>Details</th><th>Waterfall</th></tr></thead><tbody>{}</tbody></table>",
        join(rows),
    )


def _chain(run: WorkflowRun, chain: list[WorkflowRun]) -> Html:
    if len(chain) <= 1 and not run.continued_from_run_id and not run.continued_to_run_id:
        return Html("")
    items = []
    for i, r in enumerate(chain, 1):
        label = h("#{} {}", i, status_badge(r.status.value))
        if r.run_id == run.run_id:
            items.append(
                h(
                    '<li class="current" data-run-id="{}"><span>{}</span> {}</li>',
                    r.run_id,
                    r.run_id,
                    label,
                )
            )
        else:
            items.append(h('<li data-run-id="{}">{} {}</li>', r.run_id, _run_link(r.run_id), label))
    nav = []
    if run.continued_from_run_id:
        nav.append(
            h(
                '<a class="chain-prev" href="{}">← previous run</a>',
                run_href(run.continued_from_run_id, from_list=False),
            )
        )
    if run.continued_to_run_id:
        nav.append(
            h(
                '<a class="chain-next" href="{}">next run →</a>',
                run_href(run.continued_to_run_id, from_list=False),
            )
        )
    return h(
        '<h2>Continue-as-new chain</h2><nav class="pager">{}</nav>'
        '<ol class="chain" id="chain">{}</ol>',
        join(nav),
        join(items),
    )


def _children(tl: Timeline) -> Html:
    kids = tl.children
    if not kids:
        return Html("")
    items = [
        h(
            '<li>{} <span class="muted">{} (op {})</span> {}</li>',
            _run_link(o.child_run_id, "child"),
            o.name,
            o.op,
            status_badge(o.outcome),
        )
        for o in kids
    ]
    return h('<h2>Children</h2><ul id="children">{}</ul>', join(items))


def _facts(run: WorkflowRun) -> Html:
    duration = (
        (run.completed_at - run.started_at).total_seconds()
        if run.completed_at and run.started_at
        else None
    )
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
    return h('<dl class="facts">{}</dl>', join(h("<dt>{}</dt><dd>{}</dd>", k, v) for k, v in facts))


def _outcome(run: WorkflowRun) -> Html:
    if run.result is not None:
        return h('<h2>Result</h2><div id="result">{}</div>', json_text_block(run.result))
    if run.error is not None:
        return h(
            '<h2>Error</h2><div id="error" class="error-box">{}{}</div>',
            f"{run.error_type}: {run.error}" if run.error_type else run.error,
            h('<pre id="traceback">{}</pre>', run.error_traceback)
            if run.error_traceback
            else Html(""),
        )
    return Html("")


def render_run_page(
    run: WorkflowRun,
    events: list[Event],
    chain: list[WorkflowRun],
    actions: Actions | None = None,
    flash: Html | None = None,
) -> Html:
    tl = build_timeline(events)
    actions = actions or Actions()
    body = h(
        '<p><a href="{home}">← all runs</a></p>{flash}<h1 id="run-id">{run_id}</h1>{facts}'
        "{actions}{outcome}{chain}{children}<h2>Operations</h2>{ops}<h2>Timeline</h2>{events}",
        home=LIST_HREF_FROM_RUN,
        flash=flash or Html(""),
        run_id=run.run_id,
        actions=render_actions(run.run_id, actions),
        facts=_facts(run),
        outcome=_outcome(run),
        chain=_chain(run, chain),
        children=_children(tl),
        ops=_operations_table(tl),
        events=_events_table(tl),
    )
    # A run still going refreshes itself (to its page without the query: a message shown after
    # an action is shown once); a finished one stays still, and so does one waiting on a hook,
    # whose form would lose a payload being typed.
    still = run.status.is_terminal or bool(actions.hook_tokens)
    return page(
        f"Run {run.run_id}",
        body,
        home_href=LIST_HREF_FROM_RUN,
        refresh_seconds=None if still else 5,
        refresh_href=run_href(run.run_id, from_list=False),
    )

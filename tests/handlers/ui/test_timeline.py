"""``build_timeline``: what the run page says about offsets, durations, waits and retries,
from histories written out by hand (including shapes the engine may record later, such as a
step's own ``step.started``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pyworkflow.core.events import Event, EventType
from pyworkflow.handlers.ui_templates.html import fmt_offset, fmt_seconds, h, json_block
from pyworkflow.handlers.ui_templates.timeline import OpKind, build_timeline

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _events(*spec: tuple[float, EventType, dict[str, Any]]) -> list[Event]:
    return [
        Event(
            event_id=f"e{i}",
            run_id="r",
            type=type_,
            timestamp=T0 + timedelta(seconds=at),
            data=data,
            sequence=i,
        )
        for i, (at, type_, data) in enumerate(spec, 1)
    ]


def test_offsets_are_from_the_first_event_and_rows_follow_the_sequence() -> None:
    events = _events(
        (0, EventType.WORKFLOW_STARTED, {}),
        (2.5, EventType.STEP_COMPLETED, {"op": 0, "name": "a", "attempt": 1, "duration_ms": 500}),
        (3, EventType.WORKFLOW_COMPLETED, {"result": 1}),
    )
    tl = build_timeline(list(reversed(events)))
    assert [r.sequence for r in tl.rows] == [1, 2, 3]
    assert [r.offset for r in tl.rows] == [0, 2.5, 3]
    assert tl.total == 3
    (step,) = tl.operations
    # A step records only its ending: it began duration_ms before it.
    assert (step.kind, step.start, step.end, step.elapsed) == (OpKind.STEP, 2.0, 2.5, 0.5)
    assert step.outcome == "completed" and step.run_ms == 500


def test_a_retried_step_counts_attempts_and_spans_its_backoffs() -> None:
    tl = build_timeline(
        _events(
            (0, EventType.WORKFLOW_STARTED, {}),
            (
                1,
                EventType.STEP_RETRYING,
                {
                    "op": 0,
                    "name": "pay",
                    "attempt": 1,
                    "error": "x",
                    "error_type": "ValueError",
                    "retry_at": "2030-01-01T00:00:03+00:00",
                },
            ),
            (
                3,
                EventType.STEP_RETRYING,
                {
                    "op": 0,
                    "name": "pay",
                    "attempt": 2,
                    "error": "y",
                    "retry_at": "2030-01-01T00:00:07+00:00",
                },
            ),
            (
                7,
                EventType.STEP_FAILED,
                {"op": 0, "name": "pay", "attempt": 3, "error": "z", "error_type": "FatalError"},
            ),
        )
    )
    (op,) = tl.operations
    assert (op.attempts, op.retries, op.start, op.end) == (3, 2, 1, 7)
    assert op.failed and op.outcome == "failed" and op.error == "FatalError: z"


def test_open_waits_say_until_when() -> None:
    tl = build_timeline(
        _events(
            (0, EventType.WORKFLOW_STARTED, {}),
            (
                1,
                EventType.SLEEP_STARTED,
                {
                    "op": 0,
                    "name": "sleep",
                    "resume_at": "2030-01-02T00:00:00+00:00",
                    "duration": "1d",
                },
            ),
        )
    )
    (sleep,) = tl.operations
    assert sleep.end is None and sleep.elapsed is None and sleep.outcome == "waiting"
    assert sleep.wait_until == datetime(2030, 1, 2, tzinfo=UTC)
    tl = build_timeline(
        _events(
            (0, EventType.WORKFLOW_STARTED, {}),
            (
                1,
                EventType.STEP_RETRYING,
                {"op": 0, "name": "s", "attempt": 1, "retry_at": "2030-01-01T00:01:00+00:00"},
            ),
        )
    )
    assert tl.operations[0].outcome == "retrying"
    assert tl.operations[0].wait_until == T0 + timedelta(minutes=1)


def test_a_recorded_step_start_measures_the_step_from_it() -> None:
    tl = build_timeline(
        _events(
            (0, EventType.WORKFLOW_STARTED, {}),
            (1, EventType.STEP_STARTED, {"op": 0, "name": "s"}),
            (4, EventType.STEP_COMPLETED, {"op": 0, "name": "s", "duration_ms": 10}),
        )
    )
    assert (tl.operations[0].start, tl.operations[0].elapsed) == (1, 3)


def test_hooks_and_children() -> None:
    tl = build_timeline(
        _events(
            (0, EventType.WORKFLOW_STARTED, {}),
            (
                1,
                EventType.HOOK_CREATED,
                {"op": 0, "name": "approve", "hook_id": "hook_approve_0", "expires_at": None},
            ),
            (5, EventType.HOOK_EXPIRED, {"op": 0, "name": "approve"}),
            (6, EventType.CHILD_WORKFLOW_STARTED, {"op": 1, "name": "kid", "child_run_id": "r-c1"}),
            (
                9,
                EventType.CHILD_WORKFLOW_FAILED,
                {
                    "op": 1,
                    "name": "kid",
                    "child_run_id": "r-c1",
                    "error": "boom",
                    "error_type": "ValueError",
                },
            ),
        )
    )
    hook, child = tl.operations
    assert (hook.kind, hook.elapsed, hook.outcome, hook.failed) == (OpKind.HOOK, 4, "expired", True)
    assert (child.kind, child.child_run_id, child.elapsed) == (OpKind.CHILD, "r-c1", 3)
    assert child.error == "ValueError: boom" and tl.children == [child]


def test_the_run_page_shows_operation_labels_and_item_names() -> None:
    from pyworkflow.core.models import RunStatus, WorkflowRun
    from pyworkflow.handlers.ui_templates.timeline import render_run_page

    events = _events(
        (0, EventType.WORKFLOW_STARTED, {}),
        (0, EventType.SLEEP_STARTED, {"op": 0, "name": "sleep", "sleep_name": "cool_off"}),
        (1, EventType.SLEEP_COMPLETED, {"op": 0, "name": "sleep"}),
        (
            1,
            EventType.PARALLEL_STARTED,
            {"op": 1, "name": "parallel", "total": 1, "item_names": ["<card>"]},
        ),
        (2, EventType.STEP_COMPLETED, {"op": 2, "name": "pay", "path": "1.0.0", "result": 1}),
    )
    run = WorkflowRun(run_id="r", workflow_name="w", status=RunStatus.RUNNING)
    html = str(render_run_page(run, events, []))
    assert "<td>cool_off (sleep)</td>" in html
    assert 'item <span class="item">&lt;card&gt;</span>' in html  # text, never markup


def test_formatting() -> None:
    assert [fmt_seconds(s) for s in (0.0004, 0.25, 12.34, 125, 7300, 200000)] == [
        "0.4 ms",
        "250 ms",
        "12.3 s",
        "2m 05s",
        "2h 01m",
        "2d 07h",
    ]
    assert fmt_offset(None) == "—" and fmt_offset(1.5) == "+1.5 s"
    assert h("<b>{}</b>", "<i>") == "<b>&lt;i&gt;</b>"
    assert h('<a title="{}">', '"x" onmouseover=y') == '<a title="&quot;x&quot; onmouseover=y">'
    long = json_block({"k": "<s>" * 100})
    assert long.startswith('<details class="payload">') and "<s>" not in long

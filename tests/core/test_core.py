"""The pure core: durations, JSON payloads, retry math and the replay rules of the context."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum

import pytest
from pydantic import BaseModel

from pyworkflow.core.clock import ManualClock
from pyworkflow.core.context import ExecutionContext
from pyworkflow.core.duration import parse_duration, resolve_wake_time
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import WorkflowRun
from pyworkflow.core.retry import rebuild_error, retry_delay_seconds
from pyworkflow.core.serde import from_jsonable, to_jsonable
from pyworkflow.exceptions import (
    CancellationError,
    FatalError,
    NonDeterminismError,
    RunFailure,
    SerializationError,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        (45, 45),
        (0.5, 0.5),
        ("250ms", 0.25),
        ("10", 10),
        (timedelta(minutes=2), 120),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "abc", "5x", "-5s", -1, "5m garbage", True, None, "100000d"])
def test_bad_durations_say_what_is_accepted(bad):
    with pytest.raises(ValueError, match="(?i)duration"):
        parse_duration(bad)


def test_wake_time_from_datetime_and_duration():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert resolve_wake_time("1h", now) == now + timedelta(hours=1)
    naive = datetime(2030, 1, 2)
    assert resolve_wake_time(naive, now) == naive.replace(tzinfo=UTC)


class Item(BaseModel):
    name: str
    price: Decimal


@dataclass
class Point:
    x: int
    y: int


class Color(Enum):
    RED = "red"


def test_to_jsonable_handles_common_types():
    data = to_jsonable(
        {
            "item": Item(name="a", price=Decimal("1.50")),
            "when": datetime(2030, 1, 1, tzinfo=UTC),
            "pt": Point(1, 2),
            "tags": {"x"},
            "tuple": (1, 2),
            "color": Color.RED,
            3: "int key",
        }
    )
    assert data == {
        "item": {"name": "a", "price": "1.50"},
        "when": "2030-01-01T00:00:00+00:00",
        "pt": {"x": 1, "y": 2},
        "tags": ["x"],
        "tuple": [1, 2],
        "color": "red",
        "3": "int key",
    }


@pytest.mark.parametrize("bad", [object(), float("nan"), {(1, 2): "tuple key"}, lambda: 1])
def test_to_jsonable_rejects_what_json_cannot_hold(bad):
    with pytest.raises(SerializationError, match="cannot be stored as JSON"):
        to_jsonable(bad, what="The thing")


def test_from_jsonable_uses_annotations_and_tolerates_old_shapes():
    assert from_jsonable({"name": "a", "price": "2"}, Item) == Item(name="a", price=Decimal(2))
    assert from_jsonable(["1", "2"], list[int]) == [1, 2]
    assert from_jsonable({"unexpected": 1}, Item) == {"unexpected": 1}
    assert from_jsonable({"a": 1}, None) == {"a": 1}


def test_retry_delays():
    assert [retry_delay_seconds("exponential", a) for a in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert retry_delay_seconds("exponential", 30) == 300
    assert retry_delay_seconds(7, 3) == 7
    assert [retry_delay_seconds([1, 5, 30], a) for a in (1, 2, 3, 4)] == [1, 5, 30, 30]
    assert retry_delay_seconds("10s", 2) == 10


def test_recorded_failures_rebuild_safe_types_only():
    assert isinstance(rebuild_error({"error_type": "ValueError", "error": "x"}, "s"), ValueError)
    assert isinstance(rebuild_error({"error_type": "FatalError", "error": "x"}, "s"), FatalError)
    custom = rebuild_error({"error_type": "PaymentDeclined", "error": "no funds"}, "charge")
    assert isinstance(custom, FatalError)
    assert "PaymentDeclined" in str(custom) and "charge" in str(custom)


# --- context rules ---------------------------------------------------------------------------
class _NullJournal:
    clock = ManualClock()

    async def write(self, events):
        pass

    async def checkpoint(self):
        pass


def _run() -> WorkflowRun:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return WorkflowRun(run_id="r1", workflow_name="wf", created_at=now, updated_at=now)


def _event(seq: int, type_: EventType, **data) -> Event:
    return Event(
        event_id=f"e{seq}",
        run_id="r1",
        type=type_,
        sequence=seq,
        timestamp=datetime(2030, 1, 1, tzinfo=UTC),
        data=data,
    )


async def test_begin_returns_recorded_ops_and_detects_mismatch():
    history = [
        _event(1, EventType.WORKFLOW_STARTED),
        _event(2, EventType.STEP_COMPLETED, op=0, name="a", result=1),
        _event(3, EventType.SLEEP_STARTED, op=1, name="sleep", resume_at="2030-01-01T01:00:00"),
    ]
    ctx = ExecutionContext(_run(), history, _NullJournal())
    _, rec = await ctx.begin("step", "a")
    assert rec is not None and rec.terminal is not None and rec.terminal.data["result"] == 1
    with pytest.raises(RunFailure) as info:
        await ctx.begin("step", "b")
    assert isinstance(info.value.error, NonDeterminismError)
    assert "sleep 'sleep'" in str(info.value.error) and "step 'b'" in str(info.value.error)


async def test_a_recorded_op_without_its_opening_event_fails_the_run():
    history = [
        _event(1, EventType.WORKFLOW_STARTED),
        _event(2, EventType.SLEEP_STARTED, op=0, name="sleep", resume_at="2030-01-01T01:00:00"),
    ]
    ctx = ExecutionContext(_run(), history, _NullJournal())
    _, rec = await ctx.begin("sleep", "sleep")
    assert rec is not None
    assert ctx.opening(rec, EventType.SLEEP_STARTED) is rec.events[0]
    with pytest.raises(RunFailure) as info:  # a real check, not an assert: kept under -O
        ctx.opening(rec, EventType.HOOK_CREATED)
    error = info.value.error
    assert isinstance(error, NonDeterminismError) and error.mismatch is not None
    assert error.mismatch.op == "0" and "hook.created" in error.mismatch.expected


async def test_cancellation_applies_only_to_ops_unsettled_before_the_request():
    history = [
        _event(1, EventType.WORKFLOW_STARTED),
        _event(2, EventType.STEP_COMPLETED, op=0, name="a", result=1),
        _event(3, EventType.CANCELLATION_REQUESTED, reason="stop"),
        _event(4, EventType.STEP_COMPLETED, op=1, name="cleanup", result=2),
    ]
    ctx = ExecutionContext(_run(), history, _NullJournal())
    _, settled = await ctx.begin("step", "a")
    ctx.check_cancellation(settled)  # finished before the request: returns its result
    _, after = await ctx.begin("step", "cleanup")
    with pytest.raises(CancellationError) as info:
        ctx.check_cancellation(after)
    assert info.value.reason == "stop"
    ctx.shield_depth = 1
    ctx.check_cancellation(after)  # shielded: runs
    ctx.shield_depth = 0
    op, new = await ctx.begin("step", "next")
    assert op == 2
    assert new is None
    with pytest.raises(CancellationError):
        ctx.check_cancellation(new)


async def test_new_events_get_the_next_sequences():
    ctx = ExecutionContext(_run(), [_event(1, EventType.WORKFLOW_STARTED)], _NullJournal())
    a = await ctx.record(EventType.STEP_COMPLETED, {"op": 0, "name": "x"}, defer=True)
    b = await ctx.record(EventType.STEP_COMPLETED, {"op": 1, "name": "y"})
    assert (a.sequence, b.sequence) == (2, 3)
    assert ctx.next_seq == 4

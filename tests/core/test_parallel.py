"""parallel() / map() as plain functions (outside a workflow), their result object, and the
context's numbering of fan-out branches."""

import asyncio
import warnings
from datetime import UTC, datetime

import pytest

import pyworkflow
from pyworkflow import CompletionReason, FanOutError, FanOutResult, ItemStatus
from pyworkflow.core import context as _ctx
from pyworkflow.core.clock import ManualClock
from pyworkflow.core.context import Branch, ExecutionContext
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import WorkflowRun


async def double(x: int) -> int:
    await asyncio.sleep(0)
    if x < 0:
        raise ValueError(f"negative {x}")
    return 2 * x


async def test_map_outside_a_workflow_runs_plainly_in_input_order():
    res = await pyworkflow.map(double, [3, -1, 2])
    assert res.results == [6, None, 4]
    assert res.succeeded == {0: 6, 2: 4}
    assert list(res.failed) == [1] and isinstance(res.failed[1], ValueError)
    assert res.statuses == [ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.SUCCEEDED]
    assert res.completion_reason == CompletionReason.ALL_COMPLETED
    assert len(res) == 3 and not res.all_succeeded


async def test_raise_if_failed_chains_the_first_failure_and_returns_results():
    ok = await pyworkflow.parallel(double(1), double(2))
    assert ok.raise_if_failed() == [2, 4]
    bad = await pyworkflow.parallel(double(1), double(-5), double(-6))
    with pytest.raises(FanOutError, match=r"2 of 3 item\(s\) failed; first: item 1") as info:
        bad.raise_if_failed()
    assert isinstance(info.value.__cause__, ValueError)
    assert set(info.value.failed) == {1, 2}


async def test_min_successful_skips_the_rest_and_closes_unstarted_coroutines():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine never awaited would warn
        res = await pyworkflow.parallel(
            *(double(i) for i in range(6)), max_concurrency=1, min_successful=2
        )
    assert res.succeeded == {0: 0, 1: 2}
    assert res.skipped == [2, 3, 4, 5]
    assert res.completion_reason == CompletionReason.MIN_SUCCESSFUL_REACHED


async def test_unreachable_min_successful_stops_and_says_so():
    res = await pyworkflow.map(double, [-1, -2, 3, 4], max_concurrency=1, min_successful=3)
    assert res.completion_reason == CompletionReason.MIN_SUCCESSFUL_UNREACHABLE
    assert res.skipped == [2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"min_successful": 5}, "min_successful"),
        ({"tolerated_failures": -1}, "tolerated_failures"),
    ],
)
async def test_bad_options_are_refused_before_anything_runs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        await pyworkflow.map(double, [1, 2], **kwargs)


async def test_parallel_refuses_tasks():
    task = asyncio.ensure_future(double(1))
    with pytest.raises(TypeError, match="not tasks"):
        await pyworkflow.parallel(task)
    await task


async def test_a_cancelled_fan_out_cancels_its_branches():
    started, finished = [], []

    async def slow(i: int) -> None:
        started.append(i)
        await asyncio.sleep(10)
        finished.append(i)

    outer = asyncio.create_task(pyworkflow.map(slow, range(3)))
    for _ in range(5):
        await asyncio.sleep(0)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert started == [0, 1, 2] and finished == []


def test_result_object_defaults():
    res: FanOutResult[int] = FanOutResult([ItemStatus.SKIPPED])
    assert res.results == [None] and res.skipped == [0] and res.raise_if_failed() == [None]


class _Journal:
    clock = ManualClock()

    async def checkpoint(self) -> None:
        return None

    async def write(self, events):  # pragma: no cover - nothing is flushed here
        raise AssertionError


def _ctx_with(history: list[Event]) -> ExecutionContext:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    run = WorkflowRun(run_id="r", workflow_name="w", created_at=now, updated_at=now)
    return ExecutionContext(run, history, _Journal())  # type: ignore[arg-type]


def _event(seq: int, op: int, path: str, name: str) -> Event:
    return Event(
        event_id=f"e{seq}",
        run_id="r",
        type=EventType.STEP_COMPLETED,
        timestamp=datetime(2030, 1, 1, tzinfo=UTC),
        sequence=seq,
        data={"op": op, "path": path, "name": name, "result": seq},
    )


def test_branch_ops_take_their_recorded_numbers_and_new_ones_fill_the_gaps():
    # op 0 is the fan-out; the first execution recorded branch 1's op as #3 and branch 0's
    # first op as #1; #2 was in flight when it crashed.
    ctx = _ctx_with([_event(2, 3, "0.1.0", "b"), _event(3, 1, "0.0.0", "a")])
    op, rec = ctx.allocate("parallel", "p")
    assert (op, rec) == (0, None)
    block = ctx.open_block(op)
    got = {}
    for i, names in ((1, ["b", "b2"]), (0, ["a", "a2"])):
        token = _ctx.enter_branch(Branch(prefix=f"0.{i}", block=block))
        try:
            for name in names:
                got[name] = ctx.allocate("step", name)
        finally:
            _ctx._branch.reset(token)
    assert got["b"][0] == 3 and got["b"][1] is not None
    assert got["a"][0] == 1 and got["a"][1] is not None
    assert {got["b2"][0], got["a2"][0]} == {2, 4}  # new ops skip the recorded numbers
    ctx.close_block(block)
    assert ctx.allocate("step", "after")[0] == 5
    assert ctx.unconsumed_ops() == []


def test_a_top_level_call_during_a_fan_out_is_refused():
    ctx = _ctx_with([])
    op, _ = ctx.allocate("parallel", "p")
    ctx.open_block(op)
    with pytest.raises(RuntimeError, match="next to a running parallel"):
        ctx.allocate("step", "x")

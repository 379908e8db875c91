"""parallel() / map() and plain asyncio.gather inside workflows: recorded once per item, replayed
deterministically whatever order the branches finished in, on memory and SQLite."""

import asyncio

import pytest

import pyworkflow
from pyworkflow import (
    CancellationError,
    CompletionReason,
    EventType,
    FanOutError,
    FatalError,
    ItemStatus,
    RetryableError,
    RunStatus,
    cancel_workflow,
    get_workflow_events,
    get_workflow_run,
    resume,
    shield,
    sleep,
    start,
    step,
    workflow,
)
from tests.runtime.conftest import arrived, calls, gate, until


async def until_recorded(run_id: str, op: int, rounds: int = 2000) -> None:
    """Until the completion of step ``op`` is in the history (polled, not timed)."""
    for _ in range(rounds):
        events = await get_workflow_events(run_id)
        if any(e.type == EventType.STEP_COMPLETED and e.data["op"] == op for e in events):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"step {op} was never recorded")


@step
async def square(x: int) -> int:
    calls[f"square{x}"] += 1
    if x == 3:
        raise FatalError(f"no squares of {x}")
    return x * x


@step
async def gated(x: int) -> int:
    arrived(x).set()
    await gate(x).wait()
    calls[f"gated{x}"] += 1
    return x * 10


@step
async def note(tag: str) -> str:
    calls[tag] += 1
    return tag


@workflow
async def map_then_sleep(n: int) -> dict:
    res = await pyworkflow.map(square, range(n))
    await sleep("1m")
    return {
        "results": res.results,
        "failed": {i: str(e) for i, e in res.failed.items()},
        "reason": res.completion_reason.value,
    }


async def test_map_records_one_event_per_item_and_replays_without_running(storage, clock):
    run_id = await start(map_then_sleep, 6)
    clock.advance(60)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == {
        "results": [0, 1, 4, None, 16, 25],
        "failed": {"3": "no squares of 3"},
        "reason": "all_completed",
    }
    assert all(calls[f"square{i}"] == 1 for i in range(6))  # the replay ran nothing
    events = await get_workflow_events(run_id)
    items = [e for e in events if e.data.get("name") == "square"]
    assert len(items) == 6  # one event per item: nothing else recorded for the fan-out
    assert [e.type for e in events].count(EventType.STEP_FAILED) == 1
    assert sorted(e.data["path"] for e in items) == [f"0.{i}.0" for i in range(6)]


@workflow
async def raising_map() -> list:
    res = await pyworkflow.map(square, [1, 3, 2])
    return res.raise_if_failed()


async def test_raise_if_failed_names_the_failed_items(storage):
    with pytest.raises(FanOutError, match=r"1 of 3 item\(s\) failed; first: item 1"):
        await start(raising_map)


async def process(x: int) -> str:
    """A branch of several durable calls: step, durable sleep, step."""
    first = await gated(x)
    await sleep("1m")
    return await note(f"saved{first}")


@workflow
async def composite_branches() -> list:
    res = await pyworkflow.parallel(process(1), process(2), process(3))
    tail = await note("after")
    return [*res.raise_if_failed(), tail]


async def test_branches_of_several_calls_replay_whatever_order_they_finished_in(storage, clock):
    task = asyncio.create_task(start(composite_branches))
    for i in (3, 1, 2):  # finish the first steps in reverse-ish order
        await arrived(i).wait()
        gate(i).set()
        await until(lambda i=i: calls[f"gated{i}"] == 1)
    run_id = await task
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    clock.advance(60)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == ["saved10", "saved20", "saved30", "after"]
    assert all(calls[f"gated{i}"] == 1 for i in (1, 2, 3))
    assert all(calls[f"saved{i}0"] == 1 for i in (1, 2, 3))
    events = await get_workflow_events(run_id)
    paths = {e.data["path"]: e.data["name"] for e in events if "path" in e.data}
    assert paths["0.0.0"] == "gated" and paths["0.0.1"] == "sleep" and paths["0.0.2"] == "note"
    ops = [e.data["op"] for e in events if e.data.get("op") is not None]
    after = next(e.data["op"] for e in events if e.data.get("result") == "after")
    assert after == max(ops)  # the op after the fan-out follows its whole block
    # a third execution (from the complete history) still agrees
    report = await replay_recorded(run_id)
    assert report.ok, report


async def replay_recorded(run_id):
    from pyworkflow.runtime.replay import replay_history

    return await replay_history(
        await get_workflow_events(run_id), run=await get_workflow_run(run_id)
    )


@workflow
async def gathered_five() -> list:
    return list(await asyncio.gather(*(gated(i) for i in range(5))))


async def test_plain_gather_replays_after_a_crash_in_the_middle(storage):
    """Ops are numbered by call order, and gather starts its coroutines in order: a replay
    after a crash with some steps recorded (out of order) re-runs none of them."""
    task = asyncio.create_task(start(gathered_five))
    for i in range(5):
        await arrived(i).wait()
    run_id = (await storage.list_runs_page()).items[0].run_id
    for i in (3, 1):  # these finish (and are recorded) first; the others are in flight
        gate(i).set()
        await until(lambda i=i: calls[f"gated{i}"] == 1)
        # on a database server the record is a round trip after the step returned
        await until_recorded(run_id, i)
    task.cancel()  # the process dies mid-gather
    with pytest.raises(asyncio.CancelledError):
        await task
    recorded = {
        e.data["op"]: e.data["result"]
        for e in await get_workflow_events(run_id)
        if e.type == EventType.STEP_COMPLETED
    }
    assert recorded == {1: 10, 3: 30}
    for i in range(5):
        gate(i).set()
    assert await resume(run_id) == [0, 10, 20, 30, 40]
    assert [calls[f"gated{i}"] for i in range(5)] == [1, 1, 1, 1, 1]  # 1 and 3 did not re-run
    by_op = {
        e.data["op"]: e.data["result"]
        for e in await get_workflow_events(run_id)
        if e.type == EventType.STEP_COMPLETED
    }
    assert by_op == {i: i * 10 for i in range(5)}


@step
async def tracked(x: int) -> int:
    calls["now"] += 1
    calls["peak"] = max(calls["peak"], calls["now"])
    await asyncio.sleep(0.001)
    calls["now"] -= 1
    return x


@workflow
async def bounded(n: int, limit: int) -> list:
    return (await pyworkflow.map(tracked, range(n), max_concurrency=limit)).results


async def test_max_concurrency_bounds_the_items_in_flight(storage):
    run_id = await start(bounded, 12, 3)
    assert (await get_workflow_run(run_id)).get_result() == list(range(12))
    assert calls["peak"] == 3


@workflow
async def first_two_of_five() -> dict:
    res = await pyworkflow.map(gated, range(5), min_successful=2)
    await sleep("1m")
    await note("after")
    return {
        "ok": res.succeeded,
        "skipped": res.skipped,
        "reason": res.completion_reason.value,
        "statuses": [s.value for s in res.statuses],
    }


async def test_min_successful_stops_early_and_replays_the_same_outcome(storage, clock):
    task = asyncio.create_task(start(first_two_of_five))
    for i in range(5):
        await arrived(i).wait()
    for i in (4, 1):
        gate(i).set()
        await until(lambda i=i: calls[f"gated{i}"] == 1)
    run_id = await task
    events = await get_workflow_events(run_id)
    [stop] = [e for e in events if e.type == EventType.PARALLEL_COMPLETED]
    assert stop.data["finished"] == [1, 4]
    assert stop.data["reason"] == CompletionReason.MIN_SUCCESSFUL_REACHED
    for i in range(5):
        gate(i).set()  # a replay that started the skipped items would run them now
    clock.advance(60)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == {
        "ok": {"1": 10, "4": 40},
        "skipped": [0, 2, 3],
        "reason": "min_successful_reached",
        "statuses": ["skipped", "succeeded", "skipped", "skipped", "succeeded"],
    }
    assert [calls[f"gated{i}"] for i in range(5)] == [0, 1, 0, 0, 1]
    assert calls["after"] == 1
    assert (await replay_recorded(run_id)).ok


@step(max_retries=0)
async def flaky(x: int) -> int:
    calls[f"flaky{x}"] += 1
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@workflow
async def tolerant(n: int) -> dict:
    res = await pyworkflow.map(flaky, range(n), max_concurrency=1, tolerated_failures=1)
    return {
        "reason": res.completion_reason.value,
        "failed": sorted(res.failed),
        "skipped": res.skipped,
    }


async def test_tolerated_failures_exceeded_stops_starting_items(storage):
    run_id = await start(tolerant, 8)
    result = (await get_workflow_run(run_id)).get_result()
    assert result == {
        "reason": "failure_tolerance_exceeded",
        "failed": [1, 3],
        "skipped": [4, 5, 6, 7],
    }
    assert sum(calls.values()) == 4


@workflow
async def cancellable_map() -> str:
    try:
        await pyworkflow.map(gated, range(6), max_concurrency=2)
    except CancellationError:
        async with shield():
            await note("compensated")
        raise
    return "done"


async def test_cancellation_reaches_a_fan_out_in_progress(storage):
    task = asyncio.create_task(start(cancellable_map))
    await arrived(0).wait()
    await arrived(1).wait()
    gate(0).set()
    await until(lambda: calls["gated0"] == 1)
    await arrived(2).wait()  # item 2 took item 0's slot; 1 and 2 are in flight
    run_id = (await storage.list_runs_page()).items[0].run_id
    assert await cancel_workflow(run_id, reason="stop") is True
    gate(1).set()
    await task
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.CANCELLED
    assert calls["compensated"] == 1
    assert [calls[f"gated{i}"] for i in range(3, 6)] == [0, 0, 0]  # never started
    report = await replay_recorded(run_id)
    assert report.ok, (report, [(e.type.value, e.data) for e in await get_workflow_events(run_id)])


@step(max_retries=1, retry_delay=3600)
async def slow_retry(x: int) -> int:
    calls[f"retry{x}"] += 1
    if x == 2 and calls[f"retry{x}"] == 1:
        raise RetryableError("later")
    return x


@workflow
async def one_item_waits() -> list:
    return (await pyworkflow.map(slow_retry, range(4))).results


async def test_an_item_waiting_for_its_retry_parks_while_the_others_finish(storage, clock):
    run_id = await start(one_item_waits)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.SUSPENDED
    assert [calls[f"retry{i}"] for i in range(4)] == [1, 1, 1, 1]
    clock.advance(3600)
    assert await resume(run_id) == [0, 1, 2, 3]
    assert [calls[f"retry{i}"] for i in range(4)] == [1, 1, 2, 1]


@workflow
async def nested_fan_out() -> list:
    async def group(base: int) -> list:
        inner = await pyworkflow.map(square, [base, base + 1])
        await sleep("1m")
        return inner.results

    res = await pyworkflow.parallel(group(4), group(6))
    return [*res.results, await note("tail")]


async def test_a_fan_out_inside_a_branch(storage, clock):
    run_id = await start(nested_fan_out)
    clock.advance(60)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.get_result() == [[16, 25], [36, 49], "tail"], run.error
    assert all(calls[f"square{i}"] == 1 for i in (4, 5, 6, 7))
    assert (await replay_recorded(run_id)).ok


@workflow
async def step_beside_fan_out() -> None:
    await asyncio.gather(pyworkflow.map(square, [1, 2]), note("beside"))


async def test_a_durable_call_beside_a_running_fan_out_is_refused(storage):
    with pytest.raises(RuntimeError, match="next to a running parallel"):
        await start(step_beside_fan_out)


def test_item_status_values():
    assert [s.value for s in ItemStatus] == ["succeeded", "failed", "skipped"]

"""Completion policies, map's item index and serdes= inside workflows: recorded once, and a
replay (after a resume, after a crash, or by replay_history) gives the same outcome."""

import asyncio

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    RunStatus,
    get_workflow_events,
    get_workflow_run,
    resume,
    sleep,
    start,
    step,
    workflow,
)
from tests.runtime.conftest import arrived, calls, gate, until


async def until_event(run_id: str, found, rounds: int = 2000) -> None:
    """Until an event matching ``found`` is in the history (polled, not timed)."""
    for _ in range(rounds):
        if any(found(e) for e in await get_workflow_events(run_id)):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("event never recorded")


async def replay_recorded(run_id):
    from pyworkflow.runtime.replay import replay_history

    return await replay_history(
        await get_workflow_events(run_id), run=await get_workflow_run(run_id)
    )


def outcome(res: pyworkflow.FanOutResult) -> dict:
    return {
        "statuses": [s.value for s in res.statuses],
        "values": {str(i): v for i, v in res.values.items()},
        "reason": res.completion_reason.value,
    }


@step
async def gated(x: int) -> int:
    arrived(x).set()
    await gate(x).wait()
    calls[f"gated{x}"] += 1
    return x * 10


@step(max_retries=0)
async def checked(x: int) -> int:
    calls[f"checked{x}"] += 1
    if x < 0:
        raise ValueError(f"negative {x}")
    return x


@workflow
async def percentage(items: list) -> dict:
    res = await pyworkflow.map(checked, items, max_concurrency=1, tolerated_failure_percentage=20)
    await sleep("1m")
    return outcome(res)


async def test_tolerated_failure_percentage_stops_and_replays_the_same_outcome(storage, clock):
    run_id = await start(percentage, [1, -2, 3, -4, 5, 6, 7, 8, 9, 10])
    clock.advance(60)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    # the second failure is 20 % of 10 (not above), the third would be: 2 failures never stop it
    assert run.get_result()["reason"] == "all_completed"
    run_id = await start(percentage, [1, -2, 3, -4, -5, 6, 7, 8, 9, 10])
    clock.advance(60)
    await resume(run_id)
    result = (await get_workflow_run(run_id)).get_result()
    assert result["reason"] == "failure_tolerance_exceeded"
    assert result["statuses"][:5] == ["succeeded", "failed", "succeeded", "failed", "failed"]
    assert set(result["statuses"][5:]) == {"skipped"}
    assert calls["checked6"] == 1  # only from the first run: the second never started it
    assert (await replay_recorded(run_id)).ok


@workflow
async def first_of_five(mode: str) -> dict:
    res = await pyworkflow.map(
        gated, range(5), max_concurrency=3, min_successful=1, on_completion=mode
    )
    await gated(99)  # the process dies here in the crash tests
    return outcome(res)


async def _decide_on_item_1(mode: str) -> tuple[asyncio.Task, str]:
    """Items 0, 1 and 2 run; item 1 succeeds first: min_successful=1 is reached while 0 and 2
    still run and 3 and 4 have not started."""
    task = asyncio.create_task(start(first_of_five, mode))
    for i in range(3):
        await arrived(i).wait()
    gate(1).set()
    await until(lambda: calls["gated1"] == 1)
    run_id = ""
    while not run_id:
        page = await pyworkflow.get_storage().list_runs_page()
        run_id = page.items[0].run_id if page.items else ""
    await until_event(
        run_id, lambda e: e.type == EventType.STEP_COMPLETED and e.data["result"] == 10
    )
    return task, run_id


async def _crash(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for i in (*range(5), 99):
        gate(i).set()  # a replay that started items 3 and 4 would run them now


async def test_on_completion_wait_records_the_running_items_and_replays_after_a_crash(storage):
    task, run_id = await _decide_on_item_1("wait")
    gate(0).set()  # the items running at the decision finish and count
    gate(2).set()
    await arrived(99).wait()
    await until_event(run_id, lambda e: e.type == EventType.PARALLEL_COMPLETED)
    await _crash(task)  # the process dies after the fan-out, inside the next step
    [stop] = [
        e for e in await get_workflow_events(run_id) if e.type == EventType.PARALLEL_COMPLETED
    ]
    assert stop.data["finished"] == [0, 1, 2] and stop.data["on_completion"] == "wait"
    assert await resume(run_id) == {
        "statuses": ["succeeded", "succeeded", "succeeded", "skipped", "skipped"],
        "values": {"0": 0, "1": 10, "2": 20},
        "reason": "min_successful_reached",
    }
    assert [calls[f"gated{i}"] for i in range(5)] == [1, 1, 1, 0, 0]
    assert (await replay_recorded(run_id)).ok


async def test_on_completion_cancel_skips_the_running_items_and_replays_after_a_crash(storage):
    task, run_id = await _decide_on_item_1("cancel")
    await arrived(99).wait()
    await until_event(run_id, lambda e: e.type == EventType.PARALLEL_COMPLETED)
    await _crash(task)
    assert await resume(run_id) == {
        "statuses": ["skipped", "succeeded", "skipped", "skipped", "skipped"],
        "values": {"1": 10},
        "reason": "min_successful_reached",
    }
    assert [calls[f"gated{i}"] for i in range(5)] == [0, 1, 0, 0, 0]
    assert (await replay_recorded(run_id)).ok


async def test_a_crash_between_the_decision_and_the_end_decides_the_same_on_resume(storage):
    """wait: item 1 decided it while items 0 and 2 still ran; the process dies before they end
    (nothing of the decision written). The resumed run decides the same and runs 0 and 2."""
    task, run_id = await _decide_on_item_1("wait")
    await _crash(task)
    result = await resume(run_id)
    assert result["statuses"] == ["succeeded", "succeeded", "succeeded", "skipped", "skipped"]
    assert result["reason"] == "min_successful_reached"
    assert [calls[f"gated{i}"] for i in range(5)] == [1, 1, 1, 0, 0]
    assert (await replay_recorded(run_id)).ok


@step
async def quick(x: int) -> int:
    calls[f"quick{x}"] += 1
    return x


async def quick_or_slow(x: int) -> int:
    if x == 1:
        await sleep("1h")  # the item still running at the decision waits
    return await quick(x)


@workflow
async def decided_while_one_sleeps() -> dict:
    res = await pyworkflow.map(quick_or_slow, range(3), min_successful=1, on_completion="wait")
    return outcome(res)


async def test_on_completion_wait_keeps_the_decision_while_a_started_item_sleeps(storage, clock):
    run_id = await start(decided_while_one_sleeps)
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    [stop] = [
        e for e in await get_workflow_events(run_id) if e.type == EventType.PARALLEL_COMPLETED
    ]
    # written with the suspension: the end of the fan-out is not known yet
    assert stop.data["finished"] == [0, 1, 2] and stop.data["next_op"] is None
    clock.advance(3600)
    assert await resume(run_id) == {
        "statuses": ["succeeded", "succeeded", "succeeded"],
        "values": {"0": 0, "1": 1, "2": 2},
        "reason": "min_successful_reached",
    }
    assert [calls[f"quick{i}"] for i in range(3)] == [1, 1, 1]
    assert (await replay_recorded(run_id)).ok


@step
async def indexed(item: str, index: int) -> str:
    calls[f"indexed{index}"] += 1
    return f"{index}:{item}"


@workflow
async def with_indexes(items: list) -> list:
    res = await pyworkflow.map(indexed, items)
    await sleep("1m")
    return res.results


async def test_map_passes_the_item_index_and_replays_it(storage, clock):
    run_id = await start(with_indexes, ["a", "b", "c"])
    clock.advance(60)
    assert await resume(run_id) == ["0:a", "1:b", "2:c"]
    assert [calls[f"indexed{i}"] for i in range(3)] == [1, 1, 1]
    assert (await replay_recorded(run_id)).ok


class Money:
    """Not JSON: a serdes turns it into data and back."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents, self.currency = cents, currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (other.cents, other.currency) == (
            self.cents,
            self.currency,
        )

    def __hash__(self) -> int:
        return hash((self.cents, self.currency))


class MoneySerdes:
    def serialize(self, value: Money) -> dict:
        calls["serialize"] += 1
        return {"c": value.cents, "cur": value.currency}

    def deserialize(self, data: dict) -> Money:
        calls["deserialize"] += 1
        return Money(data["c"], data["cur"])


@step
async def price(sku: str) -> Money:
    calls[f"price-{sku}"] += 1
    return Money(100 * len(sku), "EUR")


@workflow
async def priced(skus: list) -> dict:
    res = await pyworkflow.map(price, skus, serdes=MoneySerdes())
    pair = await pyworkflow.parallel(
        price("zz"), serdes=(lambda m: [m.cents, m.currency], lambda d: Money(d[0], d[1]))
    )
    values = [*res.results, *pair.results]
    assert all(isinstance(v, Money) for v in values)  # the same type live and on replay
    await sleep("1m")
    return {"cents": [v.cents for v in values], "types": sorted({type(v).__name__ for v in values})}


async def test_serdes_records_each_item_result_once_and_replay_returns_the_same_values(
    storage, clock
):
    run_id = await start(priced, ["a", "bb"])
    clock.advance(60)
    assert await resume(run_id) == {"cents": [100, 200, 200], "types": ["Money"]}
    events = await get_workflow_events(run_id)
    results = [e.data["result"] for e in events if e.type == EventType.STEP_COMPLETED]
    # one step.completed per item, holding what serialize() made of it: no write of its own
    assert results == [{"c": 100, "cur": "EUR"}, {"c": 200, "cur": "EUR"}, [200, "EUR"]]
    assert [calls["price-a"], calls["price-bb"], calls["price-zz"]] == [1, 1, 1]
    assert calls["serialize"] == 2 and calls["deserialize"] >= 4  # live, then the replay
    assert (await replay_recorded(run_id)).ok


@workflow
async def nested_without_serdes() -> list:
    async def inner(sku: str) -> list:
        return (await pyworkflow.map(plain_price, [sku])).results

    res = await pyworkflow.parallel(inner("abc"), serdes=MoneySerdes())
    return res.results


@step
async def plain_price(sku: str) -> int:
    return len(sku)


async def test_a_nested_fan_out_does_not_use_the_outer_serdes(storage):
    run_id = await start(nested_without_serdes)
    assert (await get_workflow_run(run_id)).get_result() == [[3]]
    assert calls["serialize"] == 0


# --- @step(serdes=): one step's own result serialization (AWS's per-step SerDes) -----------------
@step(serdes=MoneySerdes())
async def own_price(sku: str) -> Money:
    calls[f"own-{sku}"] += 1
    return Money(7 * len(sku), "USD")


@workflow
async def priced_by_its_step(sku: str) -> list:
    first = await own_price(sku)
    assert isinstance(first, Money)  # deserialize()'s value live...
    await sleep("1m")
    # ...and after the resume, replayed from the history; inside a fan-out with a serdes of
    # its own, the step's serdes still records its result
    pair = await pyworkflow.parallel(own_price("xy"), serdes=(lambda m: "other", lambda d: d))
    return [first.cents, first.currency, pair.results[0].cents]


async def test_a_steps_own_serdes_records_its_result_and_replays_the_same_value(storage, clock):
    run_id = await start(priced_by_its_step, "abc")
    clock.advance(60)
    assert await resume(run_id) == [21, "USD", 14]
    events = await get_workflow_events(run_id)
    results = [e.data["result"] for e in events if e.type == EventType.STEP_COMPLETED]
    assert results == [{"c": 21, "cur": "USD"}, {"c": 14, "cur": "USD"}]
    assert [calls["own-abc"], calls["own-xy"]] == [1, 1]  # the replay ran neither again
    assert (await replay_recorded(run_id)).ok


def test_a_step_serdes_that_is_not_one_is_refused_at_decoration():
    with pytest.raises(ValueError, match="serialize"):
        step(serdes="json")(own_price.__wrapped__)

"""Steps, retries, replay and the recorded history, on memory and SQLite."""

import asyncio
from collections import Counter

import pytest
from pydantic import BaseModel

import pyworkflow
from pyworkflow import (
    EventType,
    FatalError,
    InvalidArgumentsError,
    RetryableError,
    RunStatus,
    get_workflow_events,
    get_workflow_run,
    resume,
    sleep,
    start,
    step,
    workflow,
)
from tests.runtime.conftest import calls, start_failing


class Receipt(BaseModel):
    order_id: str
    amount: float


@step
async def count(tag: str) -> str:
    calls[tag] += 1
    return f"{tag}:{calls[tag]}"


@step()
async def make_receipt(order_id: str) -> Receipt:
    calls["receipt"] += 1
    return Receipt(order_id=order_id, amount=9.5)


@workflow
async def twice_then_sleep() -> list[str]:
    a = await count("same")
    b = await count("same")
    await sleep("1h")
    c = await count("after")
    return [a, b, c]


async def test_same_arguments_run_each_time_and_replay_returns_recorded(storage, clock):
    run_id = await start(twice_then_sleep)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.SUSPENDED
    assert calls["same"] == 2  # called twice with the same args: both ran

    clock.advance(3600)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == ["same:1", "same:2", "after:1"]
    assert calls["same"] == 2  # replay returned the recorded results, nothing ran again


async def test_history_is_gap_free_and_one_event_per_step(storage, clock):
    run_id = await start(twice_then_sleep)
    clock.advance(3600)
    await resume(run_id)
    events = await get_workflow_events(run_id)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    types = [e.type for e in events]
    assert types == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_COMPLETED,
        EventType.STEP_COMPLETED,
        EventType.SLEEP_STARTED,
        EventType.SLEEP_COMPLETED,
        EventType.STEP_COMPLETED,
        EventType.WORKFLOW_COMPLETED,
    ]
    assert [e.data.get("op") for e in events if e.type == EventType.STEP_COMPLETED] == [0, 1, 3]


@workflow
async def receipt_flow(order_id: str) -> dict:
    receipt = await make_receipt(order_id)
    assert isinstance(receipt, Receipt)  # same type on first run and on replay
    await sleep(60)
    receipt_again = await make_receipt(order_id)
    return {"first": receipt, "same_type": type(receipt) is type(receipt_again)}


async def test_pydantic_results_decode_the_same_on_first_run_and_replay(storage, clock):
    run_id = await start(receipt_flow, "o-1")
    clock.advance(61)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == {"first": {"order_id": "o-1", "amount": 9.5}, "same_type": True}


attempts: Counter[str] = Counter()


@step(max_retries=3, retry_delay=0)
async def flaky(key: str, failures: int) -> str:
    attempts[key] += 1
    if attempts[key] <= failures:
        raise ConnectionError(f"attempt {attempts[key]} failed")
    return "ok"


@workflow
async def flaky_flow(key: str, failures: int) -> str:
    return await flaky(key, failures)


async def test_retries_until_success(storage):
    attempts.clear()
    run_id = await start(flaky_flow, "a", 2)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED
    assert attempts["a"] == 3
    retrying = [e for e in await get_workflow_events(run_id) if e.type == EventType.STEP_RETRYING]
    assert [e.data["attempt"] for e in retrying] == [1, 2]


async def test_retries_exhausted_fails_the_run_with_the_error(storage):
    attempts.clear()
    run = await start_failing(flaky_flow, "b", 10)
    assert run.status == RunStatus.FAILED
    assert attempts["b"] == 4  # first attempt + 3 retries
    assert "attempt 4 failed" in run.error
    assert run.error_type == "ConnectionError"


@step(max_retries=5)
async def fatal_step() -> None:
    calls["fatal"] += 1
    raise FatalError("card declined")


@workflow
async def fatal_flow() -> None:
    await fatal_step()


async def test_fatal_error_is_not_retried(storage):
    run = await start_failing(fatal_flow)
    assert run.status == RunStatus.FAILED
    assert calls["fatal"] == 1
    assert "card declined" in run.error


@step(max_retries=1)
async def rate_limited() -> str:
    calls["rl"] += 1
    if calls["rl"] == 1:
        raise RetryableError("slow down", retry_after="2h")
    return "done"


@workflow
async def rate_limited_flow() -> str:
    return await rate_limited()


async def test_long_retry_backoff_suspends_until_retry_at(storage, clock):
    run_id = await start(rate_limited_flow)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.SUSPENDED
    assert (run.wake_at - clock.now()).total_seconds() == pytest.approx(7200)
    await resume(run_id)  # woken early: still waits
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    assert calls["rl"] == 1
    clock.advance(7200)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED and run.get_result() == "done"


@step(timeout=0.05, max_retries=0)
async def too_slow() -> None:
    await asyncio.sleep(5)


@workflow
async def slow_flow() -> None:
    await too_slow()


async def test_step_timeout_is_enforced(storage):
    run = await start_failing(slow_flow)
    assert run.status == RunStatus.FAILED
    assert "timed out after 0.05s" in run.error


@workflow
async def typed_args(n: int, name: str = "x") -> str:
    return f"{name}{n}"


async def test_arguments_that_do_not_fit_fail_before_anything_is_written(storage):
    with pytest.raises(InvalidArgumentsError, match="typed_args"):
        await start(typed_args, 1, 2, 3)
    with pytest.raises(InvalidArgumentsError, match="'n'"):
        await start(typed_args, "not a number")
    page = await storage.list_runs_page()
    assert page.items == []


@workflow
async def returns_object() -> object:
    return object()


async def test_unserializable_result_fails_the_run_saying_so(storage):
    run = await start_failing(returns_object)
    assert run.status == RunStatus.FAILED
    assert "cannot be stored as JSON" in run.error


async def test_idempotency_key_returns_the_same_run(storage):
    first = await start(typed_args, 1, idempotency_key="k-1")
    second = await start(typed_args, 1, idempotency_key="k-1")
    assert first == second
    assert len((await storage.list_runs_page()).items) == 1


async def test_empty_in_memory_storage_works_as_storage():
    store = pyworkflow.InMemoryStorageBackend()
    pyworkflow.configure(storage=store)
    run_id = await start(typed_args, 3)
    assert (await store.get_run(run_id)).get_result() == "x3"


async def test_results_are_json_text_the_same_for_every_run(storage):
    a = await get_workflow_run(await start(typed_args, 1))
    b = await get_workflow_run(await start(typed_args, 2, name="y"))
    assert (a.result, b.result) == ('"x1"', '"y2"')


@workflow(durable=False)
async def transient_flow() -> str:
    await sleep(0.01)
    return await count("transient")


async def test_transient_workflow_runs_without_touching_storage(storage):
    run_id = await start(transient_flow)
    assert run_id
    assert (await storage.list_runs_page()).items == []
    assert calls["transient"] == 1


@workflow
async def gathered() -> list[str]:
    first = await asyncio.gather(count("g1"), count("g2"), count("g3"))
    await sleep("1m")
    return list(first)


async def test_steps_gathered_concurrently_are_each_recorded_and_replayed(storage, clock):
    run_id = await start(gathered)
    clock.advance(60)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.get_result() == ["g1:1", "g2:1", "g3:1"]
    assert (calls["g1"], calls["g2"], calls["g3"]) == (1, 1, 1)
    ops = [
        e.data["op"]
        for e in await get_workflow_events(run_id)
        if e.type == EventType.STEP_COMPLETED
    ]
    assert sorted(ops) == [0, 1, 2]


async def test_gathered_steps_keep_their_op_numbers_when_checkpoints_yield(
    storage, clock, monkeypatch
):
    from pyworkflow.runtime.executor import RunJournal

    original = RunJournal.checkpoint

    async def yielding_checkpoint(self):  # as a network round trip would (DynamoDB)
        await asyncio.sleep(0)
        await original(self)

    monkeypatch.setattr(RunJournal, "checkpoint", yielding_checkpoint)
    run_id = await start(gathered)
    clock.advance(60)
    await resume(run_id)  # replay returns each op's recorded result to the same call
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == ["g1:1", "g2:1", "g3:1"]
    by_op = {
        e.data["op"]: e.data["result"]
        for e in await get_workflow_events(run_id)
        if e.type == EventType.STEP_COMPLETED
    }
    assert by_op == {0: "g1:1", 1: "g2:1", 2: "g3:1"}

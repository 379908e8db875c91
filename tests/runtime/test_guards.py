"""Nondeterminism, event limits, max_duration and the step context."""

import warnings

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    RunStatus,
    StepContext,
    get_step_context,
    get_workflow_events,
    get_workflow_run,
    resume,
    set_step_context,
    sleep,
    start,
    step,
    workflow,
)
from tests.runtime.conftest import start_failing

version = {"v": 1}


@step
async def charge() -> str:
    return "charged"


@step
async def refund() -> str:
    return "refunded"


@workflow
async def evolving() -> str:
    first = await charge() if version["v"] == 1 else await refund()
    await sleep("1h")
    return first


async def test_replay_against_changed_code_fails_naming_both_operations(storage, clock):
    version["v"] = 1
    run_id = await start(evolving)
    version["v"] = 2
    clock.advance(3600)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    version["v"] = 1
    assert run.status == RunStatus.FAILED
    assert run.error_type == "NonDeterminismError"
    assert "'charge'" in run.error and "'refund'" in run.error


@workflow
async def shrinking() -> None:
    if version["v"] == 1:
        await charge()
        await sleep("1h")
    return None


async def test_removed_operations_are_reported_too(storage, clock):
    version["v"] = 1
    run_id = await start(shrinking)
    version["v"] = 2
    clock.advance(3600)
    await resume(run_id)
    version["v"] = 1
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED and run.error_type == "NonDeterminismError"


@workflow
async def chatty(n: int) -> int:
    for _ in range(n):
        await charge()
    return n


async def test_event_hard_limit_fails_the_run_recommending_continue_as_new(storage, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyworkflow.configure(event_soft_limit=5, event_hard_limit=10, event_warning_interval=1)
    run = await start_failing(chatty, 50)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "EventLimitExceededError"
    assert "continue_as_new" in run.error
    assert any("soft limit" in r.getMessage() for r in caplog.records)
    assert len(await get_workflow_events(run.run_id)) <= 11


def test_changing_limits_warns():
    with pytest.warns(UserWarning, match="not recommended"):
        pyworkflow.configure(event_hard_limit=100)


@workflow(max_duration="1h")
async def overdue() -> str:
    await sleep("3h")
    return "late"


async def test_max_duration_fails_a_run_that_outlives_it(storage, clock):
    run_id = await start(overdue)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.SUSPENDED
    assert run.wake_at == run.deadline_at  # woken at the deadline, not after the sleep
    clock.advance(3600)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED
    assert "max_duration" in run.error


class OrderContext(StepContext):
    tenant: str = ""
    attempt: int = 0


@step
async def read_context() -> str:
    ctx = get_step_context()
    return f"{ctx.tenant}/{ctx.attempt}"


@step(max_retries=0)
async def write_context() -> None:
    await set_step_context(OrderContext(tenant="evil"))


@workflow(context_class=OrderContext)
async def contextual(tenant: str) -> list[str]:
    await set_step_context(OrderContext(tenant=tenant, attempt=1))
    first = await read_context()
    await sleep("1m")
    await set_step_context(get_step_context().with_updates(attempt=2))
    second = await read_context()
    return [first, second]


async def test_step_context_is_recorded_and_restored_on_replay(storage, clock):
    run_id = await start(contextual, "acme")
    clock.advance(60)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.get_result() == ["acme/1", "acme/2"]
    updates = [e for e in await get_workflow_events(run_id) if e.type == EventType.CONTEXT_UPDATED]
    assert [u.data["context"]["attempt"] for u in updates] == [1, 2]


@workflow(context_class=OrderContext)
async def tampering() -> None:
    await set_step_context(OrderContext(tenant="t"))
    await write_context()


async def test_step_context_is_read_only_inside_steps(storage):
    run = await start_failing(tampering)
    assert run.status == RunStatus.FAILED
    assert "read-only" in run.error

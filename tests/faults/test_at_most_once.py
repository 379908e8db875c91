"""``@step(at_most_once=True)``: ``step.started`` is recorded before the step runs; an attempt
found started but unfinished after a crash is never run again. It counts as an attempt that
failed with ``StepInterruptedError`` (AWS's at-most-once-per-retry, conformance 1.17 and 1.18):
the step's retry policy starts a new attempt, unless it has none left or ``retry_interrupted=False``
(then the step fails with ``StepInterruptedError``)."""

from __future__ import annotations

from collections import Counter

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    RetryPolicy,
    RunStatus,
    get_workflow_events,
    get_workflow_run,
    step,
    workflow,
)
from pyworkflow.core.step import StepInterruptedError
from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.runtime.faults import Faults, FaultyStorage, InjectedCrash
from pyworkflow.runtime.local import LocalRuntime, get_runtime
from pyworkflow.runtime.worker import run_once
from pyworkflow.storage import SQLiteStorageBackend

RAN: Counter[str] = Counter()


@step(at_most_once=True, retry_interrupted=False)
async def pay(order: str) -> str:
    RAN[order] += 1
    return f"paid {order}"


@step(name="faults_pay_retried", at_most_once=True, max_retries=2, retry_delay=0)
async def pay_retried(order: str) -> str:
    RAN[order] += 1
    return f"paid {order} on attempt {RAN[order]}"


@step(name="faults_pay_one_attempt", at_most_once=True, retry=RetryPolicy.none())
async def pay_one_attempt(order: str) -> str:
    RAN[order] += 1
    return f"paid {order}"


@step(
    name="faults_pay_filtered",
    at_most_once=True,
    retry=RetryPolicy(max_attempts=5, initial_delay=0, retry_on=ConnectionError),
)
async def pay_filtered(order: str) -> str:
    RAN[order] += 1
    return f"paid {order}"


@workflow(name="faults_pay_retried")
async def pay_retried_flow(order: str) -> str:
    return await pay_retried(order)


@workflow(name="faults_pay_one_attempt")
async def pay_one_attempt_flow(order: str) -> str:
    return await pay_one_attempt(order)


@workflow(name="faults_pay_filtered")
async def pay_filtered_flow(order: str) -> str:
    return await pay_filtered(order)


@workflow(name="faults_pay_unhandled")
async def pay_unhandled(order: str) -> str:
    return await pay(order)


@workflow(name="faults_pay_handled")
async def pay_handled(order: str) -> str:
    try:
        return await pay(order)
    except StepInterruptedError as exc:
        return f"check by hand: {exc}"


async def crash_before_recording(tmp_path, workflow_fn, order: str) -> str:
    """Start ``workflow_fn`` and kill its process between running ``pay`` and recording it;
    then let a worker of a new process recover the run. Returns the run id."""
    store = SQLiteStorageBackend(tmp_path / "runs.db")
    pyworkflow.configure(storage=store)
    # points: create_run (1, 2), step.started (3, 4), then 5 = before step.completed (the
    # workflow's last step: its result is written with the ending, in one write)
    faulty = FaultyStorage(store, Faults(crash_at=5))
    with pytest.raises(InjectedCrash) as info:
        await pyworkflow.start(workflow_fn, order, storage=faulty)
    assert info.value.label.startswith("before append_events(step.completed")
    assert RAN[order] == 1
    LIVE_OWNERS.discard(get_runtime(faulty).executor.owner)  # that process is dead
    await run_once(LocalRuntime(SQLiteStorageBackend(tmp_path / "runs.db")))
    page = await store.list_runs_page(workflow_name=workflow_fn.__workflow_name__)
    return page.items[0].run_id


async def test_an_interrupted_at_most_once_step_is_not_run_again(tmp_path) -> None:
    run_id = await crash_before_recording(tmp_path, pay_unhandled, "o1")
    assert RAN["o1"] == 1  # never twice
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "StepInterruptedError"
    assert "'pay'" in run.error and "at_most_once" in run.error
    types = [e.type for e in await get_workflow_events(run_id)]
    assert types == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_STARTED,
        EventType.STEP_FAILED,
        EventType.WORKFLOW_FAILED,
    ]


async def test_the_workflow_may_handle_the_interruption(tmp_path) -> None:
    run_id = await crash_before_recording(tmp_path, pay_handled, "o2")
    assert RAN["o2"] == 1
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result().startswith("check by hand: Step 'pay'")


async def test_a_finished_at_most_once_step_replays_its_result(tmp_path) -> None:
    pyworkflow.configure(storage=SQLiteStorageBackend(tmp_path / "runs.db"))
    run_id = await pyworkflow.start(pay_handled, "o3")
    assert (await get_workflow_run(run_id)).get_result() == "paid o3"
    types = [e.type for e in await get_workflow_events(run_id)]
    assert types == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_STARTED,
        EventType.STEP_COMPLETED,
        EventType.WORKFLOW_COMPLETED,
    ]
    assert RAN["o3"] == 1


async def test_an_interrupted_attempt_is_a_failed_attempt_and_is_retried(tmp_path) -> None:
    """Conformance 1.18: the crashed attempt is not run again; a new attempt is, once."""
    run_id = await crash_before_recording(tmp_path, pay_retried_flow, "o4")
    assert RAN["o4"] == 2  # the crashed attempt, then one retry: never the same attempt twice
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == "paid o4 on attempt 2"
    events = await get_workflow_events(run_id)
    assert [e.type for e in events] == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_STARTED,
        EventType.STEP_RETRYING,
        EventType.STEP_STARTED,
        EventType.STEP_COMPLETED,
        EventType.WORKFLOW_COMPLETED,
    ]
    retrying = events[2]
    assert retrying.data["attempt"] == 1
    assert retrying.data["error_type"] == "StepInterruptedError"
    assert "interrupted" in retrying.data["error"]
    assert [e.data["attempt"] for e in events if e.type == EventType.STEP_STARTED] == [1, 2]
    assert events[4].data["attempt"] == 2


async def test_an_interrupted_attempt_with_no_attempts_left_fails_the_step(tmp_path) -> None:
    """Conformance 1.17: no retry configured, so the interruption fails the step."""
    run_id = await crash_before_recording(tmp_path, pay_one_attempt_flow, "o5")
    assert RAN["o5"] == 1
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "StepInterruptedError"
    types = [e.type for e in await get_workflow_events(run_id)]
    assert EventType.STEP_RETRYING not in types


async def test_an_interruption_is_retried_only_if_the_policy_retries_it(tmp_path) -> None:
    """retry_on=ConnectionError: a StepInterruptedError is not among the retried errors."""
    run_id = await crash_before_recording(tmp_path, pay_filtered_flow, "o6")
    assert RAN["o6"] == 1
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "StepInterruptedError"


async def test_plain_steps_record_no_start() -> None:
    assert pay.__step_at_most_once__ is True
    plain = step(name="faults_plain")(pay.__wrapped__)
    assert plain.__step_at_most_once__ is False

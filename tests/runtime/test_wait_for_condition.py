"""``wait_for_condition``: each check a recorded step, a durable sleep between checks with the
strategy's backoff, a stop when the condition holds or a typed error after the last allowed
check; a replay returns the same states and waits without calling anything."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import BaseModel

from pyworkflow import (
    ConditionNotMetError,
    EventType,
    RetryPolicy,
    RunStatus,
    WaitStrategy,
    get_workflow_events,
    get_workflow_run,
    resume,
    start,
    wait_for_condition,
    workflow,
)
from tests.runtime.conftest import calls, start_failing


async def drive(run_id: str, clock) -> None:
    """Resume a run at each wake-up it asks for until it ends."""
    run = await get_workflow_run(run_id)
    while run.status == RunStatus.SUSPENDED:
        clock.advance((run.wake_at - clock.now()).total_seconds())
        await resume(run_id)
        run = await get_workflow_run(run_id)


async def increment(state: int) -> int:
    calls["increment"] += 1
    return state + 1


def seconds_slept(events) -> list[float]:
    started = [e for e in events if e.type == EventType.SLEEP_STARTED]
    return [
        (datetime.fromisoformat(e.data["resume_at"]) - e.timestamp).total_seconds() for e in started
    ]


@workflow(name="condition_count")
async def count_to(target: int) -> int:
    return await wait_for_condition(
        increment,
        initial_state=0,
        wait_strategy=WaitStrategy(
            until=lambda n: n >= target, initial_delay=2, backoff_rate=2, max_delay=5, jitter="none"
        ),
        name="count",
    )


async def test_checks_until_the_condition_holds_waiting_with_backoff(storage, clock) -> None:
    run_id = await start(count_to, 4)
    await drive(run_id, clock)
    run = await get_workflow_run(run_id)
    assert run.get_result() == 4
    assert calls["increment"] == 4  # once per check: the replays called nothing
    events = await get_workflow_events(run_id)
    checks = [e for e in events if e.type == EventType.STEP_COMPLETED]
    assert [e.data["name"] for e in checks] == ["count"] * 4
    assert [e.data["result"] for e in checks] == [
        {"state": 1, "wait": 2.0},
        {"state": 2, "wait": 4.0},
        {"state": 3, "wait": 5.0},
        {"state": 4, "wait": None},
    ]
    assert seconds_slept(events) == [2.0, 4.0, 5.0]
    names = [e.data["sleep_name"] for e in events if e.type == EventType.SLEEP_STARTED]
    assert names == [f"count: wait after check {n}" for n in (1, 2, 3)]


@workflow(name="condition_jitter")
async def jittered() -> int:
    return await wait_for_condition(
        increment, initial_state=0, until=lambda n: n >= 3, name="jittered"
    )


async def test_jittered_waits_are_the_recorded_ones(storage, clock) -> None:
    """The AWS defaults (5 s growing by 1.5, full jitter): each wait is what the check
    recorded, and the resumed executions (replays) never decide again."""
    run_id = await start(jittered)
    await drive(run_id, clock)
    assert (await get_workflow_run(run_id)).get_result() == 3
    events = await get_workflow_events(run_id)
    waits = [e.data["result"]["wait"] for e in events if e.type == EventType.STEP_COMPLETED]
    assert waits[-1] is None
    assert 0 <= waits[0] <= 5 and 0 <= waits[1] <= 7.5
    assert seconds_slept(events) == pytest.approx(waits[:-1])
    assert calls["increment"] == 3


@workflow(name="condition_gives_up")
async def gives_up(handle: bool) -> str:
    try:
        await wait_for_condition(
            increment,
            initial_state=10,
            wait_strategy=lambda state, attempt: "30s",  # never holds
            max_attempts=3,
        )
    except ConditionNotMetError as exc:
        if not handle:
            raise
        return f"gave up at {exc.state} after {exc.attempts}"
    return "held"


async def test_the_last_allowed_check_raises_condition_not_met(storage, clock) -> None:
    run_id = await start(gives_up, True)
    await drive(run_id, clock)
    assert (await get_workflow_run(run_id)).get_result() == "gave up at 13 after 3"
    events = await get_workflow_events(run_id)
    assert seconds_slept(events) == [30.0, 30.0]  # none after the last check
    assert calls["increment"] == 3


async def test_an_unhandled_condition_not_met_fails_the_run(storage, clock) -> None:
    run_id = await start(gives_up, False)
    await drive(run_id, clock)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ConditionNotMetError"
    assert "'increment'" in run.error and "after 3 check(s)" in run.error


class Job(BaseModel):
    job_id: str
    polls: int = 0
    done: bool = False


def poll_job(job: Job) -> Job:  # a plain def: runs in a thread, like a def step
    calls[job.job_id] += 1
    return Job(job_id=job.job_id, polls=job.polls + 1, done=job.polls + 1 >= 2)


@workflow(name="condition_model")
async def wait_for_job(job_id: str) -> dict:
    job = await wait_for_condition(
        poll_job, initial_state=Job(job_id=job_id), until=lambda j: j.done, name="poll job"
    )
    return {"type": type(job).__name__, "polls": job.polls}


async def test_the_state_is_decoded_by_the_checks_return_type(storage, clock) -> None:
    run_id = await start(wait_for_job, "j-1")
    await drive(run_id, clock)
    assert (await get_workflow_run(run_id)).get_result() == {"type": "Job", "polls": 2}
    assert calls["j-1"] == 2


async def flaky_check(state: int) -> int:
    calls["flaky"] += 1
    if calls["flaky"] == 1:
        raise ConnectionError("service unavailable")
    return state + 1


@workflow(name="condition_retry")
async def with_retry(retried: bool) -> int:
    return await wait_for_condition(
        flaky_check,
        initial_state=0,
        until=lambda n: n >= 1,
        retry=RetryPolicy(max_attempts=2, initial_delay=0) if retried else None,
    )


async def test_a_failing_check_is_retried_by_its_retry_policy(storage, clock) -> None:
    run_id = await start(with_retry, True)
    await drive(run_id, clock)
    assert (await get_workflow_run(run_id)).get_result() == 1
    types = [e.type for e in await get_workflow_events(run_id)]
    assert types.count(EventType.STEP_RETRYING) == 1


async def test_a_failing_check_without_retry_fails_with_its_error(storage, clock) -> None:
    run = await start_failing(with_retry, False)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ConnectionError" and "service unavailable" in run.error
    assert calls["flaky"] == 1


async def test_outside_a_workflow_it_polls_in_process() -> None:
    result = await wait_for_condition(
        increment, initial_state=0, wait_strategy=lambda n, attempt: None if n >= 2 else 0
    )
    assert result == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({}, TypeError, "until= or wait_strategy="),
        ({"until": bool, "wait_strategy": lambda s, a: None}, TypeError, "one of them"),
        ({"until": bool, "max_attempts": 0}, ValueError, "at least 1"),
        ({"wait_strategy": 5}, TypeError, "WaitStrategy or a function"),
        ({"until": bool, "retry": 3}, TypeError, "RetryPolicy"),
    ],
)
async def test_bad_arguments_fail_before_any_check(kwargs, error, words) -> None:
    with pytest.raises(error, match=words):
        await wait_for_condition(increment, initial_state=0, **kwargs)
    assert calls["increment"] == 0


def test_a_wait_strategy_checks_its_values_when_made() -> None:
    with pytest.raises(ValueError, match="backoff_rate"):
        WaitStrategy(until=bool, backoff_rate=0)
    with pytest.raises(TypeError, match="function of the state"):
        WaitStrategy(until=3)  # type: ignore[arg-type]

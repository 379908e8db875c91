"""Steps with a ``RetryPolicy``: the errors it names are retried, others fail at once; the delays
it chose are recorded and replayed, never recomputed; errors keep their type name and message
through the history (conformance step 1.10-1.13)."""

import pytest

from pyworkflow import (
    EventType,
    FatalError,
    RetryPolicy,
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


class PaymentDeclinedError(Exception):
    """A user's own exception type: outside the types a history may raise again."""


@step(retry=RetryPolicy(max_attempts=5, initial_delay=0, retry_on=ConnectionError))
async def only_connection_errors(kind: str) -> str:
    calls[kind] += 1
    if calls[kind] < 3:
        raise ConnectionError("reset") if kind == "conn" else ValueError("bad input")
    return f"{kind} ok"


@workflow(name="policy_filter")
async def filter_flow(kind: str) -> str:
    return await only_connection_errors(kind)


async def test_the_errors_retry_on_names_are_retried(storage) -> None:
    run_id = await start(filter_flow, "conn")
    assert (await get_workflow_run(run_id)).get_result() == "conn ok"
    assert calls["conn"] == 3


async def test_errors_retry_on_does_not_name_fail_at_once(storage) -> None:
    run = await start_failing(filter_flow, "value")
    assert calls["value"] == 1
    assert run.error_type == "ValueError" and "bad input" in run.error
    types = [e.type for e in await get_workflow_events(run.run_id)]
    assert EventType.STEP_RETRYING not in types


@step(
    retry=RetryPolicy(
        max_attempts=9, initial_delay=0, retry_on=lambda e: "throttl" in str(e).lower()
    )
)
async def throttled(kind: str) -> str:
    calls[kind] += 1
    if calls[kind] == 1:
        raise RuntimeError("Throttling" if kind == "throttle" else "Access denied")
    return "ok"


@workflow(name="policy_predicate")
async def predicate_flow(kind: str) -> str:
    return await throttled(kind)


async def test_a_predicate_chooses_the_errors_that_are_retried(storage) -> None:
    assert (await get_workflow_run(await start(predicate_flow, "throttle"))).get_result() == "ok"
    run = await start_failing(predicate_flow, "denied")
    assert calls["denied"] == 1 and run.error_type == "RuntimeError"


@step(retry=RetryPolicy(max_attempts=4, initial_delay=1, backoff_rate=1))
async def always_fails() -> None:
    calls["always"] += 1
    raise ConnectionError(f"attempt {calls['always']} failed")


@workflow(name="policy_exhausted")
async def exhausted_flow() -> None:
    await always_fails()


async def drive(run_id: str, clock) -> None:
    """Resume a run at each wake-up it asks for until it ends."""
    run = await get_workflow_run(run_id)
    while run.status == RunStatus.SUSPENDED:
        clock.advance((run.wake_at - clock.now()).total_seconds())
        await resume(run_id)
        run = await get_workflow_run(run_id)


async def test_retries_stop_after_max_attempts(storage, clock) -> None:
    """Conformance 1.12: 4 attempts, a retry recorded after each of the first 3."""
    run_id = await start(exhausted_flow)
    await drive(run_id, clock)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED and run.error_type == "ConnectionError"
    assert calls["always"] == 4
    events = await get_workflow_events(run.run_id)
    retrying = [e for e in events if e.type == EventType.STEP_RETRYING]
    assert [(e.data["attempt"], e.data["delay_seconds"]) for e in retrying] == [
        (1, 1.0),
        (2, 1.0),
        (3, 1.0),
    ]
    failed = next(e for e in events if e.type == EventType.STEP_FAILED)
    assert failed.data["attempt"] == 4
    assert failed.data["error"] == "attempt 4 failed"


@step(retry=RetryPolicy(max_attempts=3, initial_delay="1h", jitter="full"))
async def slow_retry() -> str:
    calls["slow"] += 1
    if calls["slow"] == 1:
        raise ConnectionError("down")
    return f"up after {calls['slow']} attempts"


@workflow(name="policy_jitter")
async def jitter_flow() -> str:
    return await slow_retry()


async def test_a_jittered_delay_is_recorded_and_the_run_waits_exactly_that(storage, clock) -> None:
    run_id = await start(jitter_flow)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.SUSPENDED
    retrying = next(
        e for e in await get_workflow_events(run_id) if e.type == EventType.STEP_RETRYING
    )
    delay = retrying.data["delay_seconds"]
    assert 0 <= delay <= 3600
    assert (run.wake_at - clock.now()).total_seconds() == pytest.approx(delay)
    clock.advance(delay)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED and run.get_result() == "up after 2 attempts"


@step(retry=RetryPolicy.none())
async def declined(order: str) -> None:
    calls[order] += 1
    raise PaymentDeclinedError(f"card for {order} declined")


@workflow(name="policy_error_kept")
async def error_kept_flow(order: str) -> dict[str, str]:
    try:
        await declined(order)
    except FatalError as exc:
        caught = {
            "type": exc.error_type,
            "message": exc.error_message,
            "raised": type(exc).__name__,
        }
    await sleep("1m")
    return caught


async def test_a_failure_keeps_its_type_name_and_message_through_the_history(storage, clock):
    """Conformance 1.10: the failed step raises the same error on replay without running."""
    run_id = await start(error_kept_flow, "o-1")
    clock.advance(60)
    await resume(run_id)  # a replay: the step's failure comes from the history
    run = await get_workflow_run(run_id)
    assert run.get_result() == {
        "type": "PaymentDeclinedError",
        "message": "card for o-1 declined",
        "raised": "FatalError",
    }
    assert calls["o-1"] == 1
    failed = next(e for e in await get_workflow_events(run_id) if e.type == EventType.STEP_FAILED)
    assert failed.data["error_type"] == "PaymentDeclinedError"
    assert failed.data["error"] == "card for o-1 declined"


def test_a_policy_and_max_retries_are_not_combined() -> None:
    with pytest.raises(ValueError, match="not both"):
        step(retry=RetryPolicy(), max_retries=2)
    with pytest.raises(TypeError, match="RetryPolicy"):
        step(retry=3)  # type: ignore[arg-type]

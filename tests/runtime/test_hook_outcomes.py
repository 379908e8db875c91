"""Hooks that fail and heartbeat, and the recorded submitter (issue 17, items 1 and 2).

Each test follows a requirement of AWS's durable-functions conformance suite for callbacks
(``create_callback`` / ``wait_for_callback``): a failed callback raises the sender's error type
and message, recorded and replayed identically; a missed heartbeat is a timeout distinct from
the overall one; the submitter is a step with its own retries that never runs again once it
succeeded.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pyworkflow import (
    HookAlreadyReceivedError,
    HookExpiredError,
    HookFailedError,
    HookHeartbeatTimeoutError,
    RunStatus,
    fail_hook,
    get_workflow_events,
    get_workflow_run,
    heartbeat_hook,
    hook,
    resume,
    resume_hook,
    start,
    workflow,
)
from pyworkflow.api import fail_hook_by_name
from pyworkflow.core.events import EventType
from pyworkflow.runtime.replay import replay_history
from tests.runtime.conftest import start_failing

TOKENS: dict[str, str] = {}


def keep(key: str):
    return lambda token: TOKENS.__setitem__(key, token)


@workflow
async def failing_flow(key: str) -> dict:
    try:
        await hook("payment", on_created=keep(key))
    except HookFailedError as error:
        return {"type": error.error_type, "message": error.error_message}
    return {"type": None}


async def test_a_failed_hook_raises_the_senders_error_type_and_message(storage) -> None:
    run_id = await start(failing_flow, "f1")
    await fail_hook(TOKENS["f1"], "PaymentDeclined", "card expired")
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == {"type": "PaymentDeclined", "message": "card expired"}
    failed = [e for e in await get_workflow_events(run_id) if e.type == EventType.HOOK_FAILED]
    assert [(e.data["error_type"], e.data["error"]) for e in failed] == [
        ("PaymentDeclined", "card expired")
    ]


async def test_a_hook_failure_replays_identically_from_the_history(storage) -> None:
    run_id = await start(failing_flow, "f2")
    await fail_hook(TOKENS["f2"], ValueError("bad signature"))
    history = await get_workflow_events(run_id)
    assert history[-1].data["result"] == {"type": "ValueError", "message": "bad signature"}
    report = await replay_history(history)
    assert (report.ok, report.ending.value) == (True, "returned"), report.detail


@workflow
async def uncaught_failure_flow() -> None:
    await hook("payment", on_created=keep("uncaught"))


async def test_an_uncaught_hook_failure_fails_the_run_with_hook_failed_error(storage) -> None:
    run_id = await start(uncaught_failure_flow)
    await fail_hook(TOKENS["uncaught"], {"error_type": "Rejected", "message": "no"})
    run = await get_workflow_run(run_id)
    assert (run.status, run.error_type, run.error) == (
        RunStatus.FAILED,
        "HookFailedError",
        "Rejected: no",
    )


async def test_a_hook_is_failed_by_name(storage) -> None:
    run_id = await start(failing_flow, "f3")
    await fail_hook_by_name(run_id, "payment", "Timeout", "upstream gave up")
    assert (await get_workflow_run(run_id)).get_result() == {
        "type": "Timeout",
        "message": "upstream gave up",
    }


async def test_a_settled_hook_cannot_be_failed_or_resumed_again(storage) -> None:
    await start(failing_flow, "f4")
    await fail_hook(TOKENS["f4"], "Rejected")
    with pytest.raises(HookAlreadyReceivedError):
        await fail_hook(TOKENS["f4"], "Rejected")
    with pytest.raises(HookAlreadyReceivedError):
        await resume_hook(TOKENS["f4"], {"late": True})


@workflow
async def heartbeat_flow(key: str) -> str:
    try:
        payload = await hook("job", timeout="1h", heartbeat_timeout="5m", on_created=keep(key))
    except HookHeartbeatTimeoutError:
        return "no heartbeat"
    except HookExpiredError:
        return "overall timeout"
    return str(payload)


async def test_a_hook_waits_until_its_heartbeat_deadline(storage, clock) -> None:
    run_id = await start(heartbeat_flow, "h1")
    run = await get_workflow_run(run_id)
    assert run.wake_at == clock.now() + timedelta(minutes=5)


async def test_a_missed_heartbeat_raises_the_heartbeat_timeout(storage, clock) -> None:
    run_id = await start(heartbeat_flow, "h2")
    clock.advance(300)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.get_result() == "no heartbeat"
    expired = [e for e in await get_workflow_events(run_id) if e.type == EventType.HOOK_EXPIRED]
    assert [e.data["reason"] for e in expired] == ["heartbeat"]
    with pytest.raises(HookHeartbeatTimeoutError):
        await heartbeat_hook(TOKENS["h2"])


async def test_heartbeats_keep_the_hook_alive_past_the_heartbeat_timeout(storage, clock) -> None:
    run_id = await start(heartbeat_flow, "h3")
    for _ in range(3):
        clock.advance(240)
        await heartbeat_hook(TOKENS["h3"])
        await resume(run_id)  # woken at the old deadline: it waits on
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.SUSPENDED
    assert run.wake_at == clock.now() + timedelta(minutes=5)
    await resume_hook(TOKENS["h3"], "done")
    assert (await get_workflow_run(run_id)).get_result() == "done"


async def test_the_overall_timeout_is_distinct_from_the_heartbeat_timeout(storage, clock) -> None:
    run_id = await start(heartbeat_flow, "h4")
    for _ in range(14):  # heartbeats every 4 minutes, for 56 minutes
        clock.advance(240)
        await heartbeat_hook(TOKENS["h4"])
        await resume(run_id)
    clock.advance(240)  # the hour is up before the heartbeat deadline
    with pytest.raises(HookExpiredError) as late:
        await heartbeat_hook(TOKENS["h4"])
    assert type(late.value) is HookExpiredError
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.get_result() == "overall timeout"
    expired = [e for e in await get_workflow_events(run_id) if e.type == EventType.HOOK_EXPIRED]
    assert [e.data["reason"] for e in expired] == ["timeout"]


async def test_a_heartbeat_timeout_replays_identically(storage, clock) -> None:
    run_id = await start(heartbeat_flow, "h5")
    clock.advance(301)
    await resume(run_id)
    history = await get_workflow_events(run_id)
    assert history[-1].data["result"] == "no heartbeat"
    report = await replay_history(history)
    assert (report.ok, report.ending.value) == (True, "returned"), report.detail


# --- the recorded submitter ------------------------------------------------------------------
SUBMITTED: list[str] = []
FAILURES: list[int] = []


def submit_ticket(token: str) -> None:
    if FAILURES:
        FAILURES.pop()
        raise ConnectionError("ticket system down")
    SUBMITTED.append(token)


@workflow
async def submitter_flow() -> object:
    return await hook("ticket", submit=submit_ticket, submit_retries=3, submit_retry_delay=0)


@pytest.fixture(autouse=True)
def _clear() -> None:
    SUBMITTED.clear()
    FAILURES.clear()


async def test_the_submitter_runs_once_as_a_recorded_step(storage) -> None:
    run_id = await start(submitter_flow)
    assert len(SUBMITTED) == 1
    completed = [e for e in await get_workflow_events(run_id) if e.type == EventType.STEP_COMPLETED]
    assert [e.data["step_name"] for e in completed] == ["ticket.submit"]
    await resume_hook(SUBMITTED[0], {"ok": 1})
    run = await get_workflow_run(run_id)
    assert run.get_result() == {"ok": 1}
    assert len(SUBMITTED) == 1  # the replay that took the payload did not send again


async def test_a_failing_submitter_is_retried_with_its_own_policy(storage) -> None:
    FAILURES.extend([1, 1])
    run_id = await start(submitter_flow)
    assert len(SUBMITTED) == 1
    retrying = [e for e in await get_workflow_events(run_id) if e.type == EventType.STEP_RETRYING]
    assert [e.data["error_type"] for e in retrying] == ["ConnectionError", "ConnectionError"]
    await resume_hook(SUBMITTED[0], "ok")
    assert (await get_workflow_run(run_id)).get_result() == "ok"


@workflow
async def exhausted_flow() -> object:
    return await hook(submit=submit_ticket, submit_retries=1, submit_retry_delay=0)


async def test_a_submitter_out_of_retries_fails_the_hook_and_disposes_it(storage) -> None:
    FAILURES.extend([1, 1])
    run = await start_failing(exhausted_flow)
    assert run.error_type == "ConnectionError"
    hooks = await storage.list_hooks(run_id=run.run_id)
    assert [h.status.value for h in hooks] == ["disposed"]


@workflow
async def unnamed_flow() -> object:
    return await hook(on_created=keep("unnamed"))


async def test_a_hook_without_a_name_is_allowed(storage) -> None:
    run_id = await start(unnamed_flow)
    await resume_hook(TOKENS["unnamed"], 7)
    assert (await get_workflow_run(run_id)).get_result() == 7


CALLS: list[str] = []


def flaky_submit(token: str) -> None:
    CALLS.append(token)
    if len(CALLS) == 1:
        raise ConnectionError("queue down")


@workflow
async def slow_retry_flow() -> object:
    return await hook("slow", submit=flaky_submit, submit_retries=2, submit_retry_delay=600)


async def test_a_submitter_retried_in_a_later_execution_hands_out_a_fresh_token(
    storage, clock
) -> None:
    CALLS.clear()
    run_id = await start(slow_retry_flow)
    assert len(CALLS) == 1 and (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    clock.advance(600)
    await resume(run_id)  # the retry: only the hash of the first token was kept
    assert len(CALLS) == 2 and CALLS[0] != CALLS[1]
    with pytest.raises(HookExpiredError):  # the first token was revoked
        await resume_hook(CALLS[0], "stale")
    await resume_hook(CALLS[1], "fresh")
    assert (await get_workflow_run(run_id)).get_result() == "fresh"
    assert len(CALLS) == 2

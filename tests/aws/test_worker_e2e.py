"""End to end on the AWS runtime: runs started through SQS, driven by
``pyworkflow/handlers/worker.py`` via the pump, timers through SQS DelaySeconds or EventBridge
Scheduler (moto)."""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pyworkflow.core.clock import new_id
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.dev.pumps import FakeLambdaContext, invoke, receive_batch, settle
from pyworkflow.transport.scheduler import schedule_name
from tests.aws import workflows as wf
from tests.aws.conftest import MAX_RECEIVES, Aws, context_running_out

REPO = Path(__file__).resolve().parents[2]


def assert_gap_free(events: list[Event]) -> None:
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


def step_results(events: list[Event]) -> list[int]:
    return [e.data["op"] for e in events if e.type == EventType.STEP_COMPLETED]


def worker_requests(worker: Any) -> dict[str, int]:
    return dict(worker._runtime.dispatcher.requests) if worker._runtime else {}


async def test_ten_step_workflow_completes(aws: Aws, worker: Any) -> None:
    key = new_id("k")
    run_id = await aws.client.start(wf.ten_steps, key)
    result = await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == sum(range(10))
    events = await aws.storage.get_events(run_id)
    assert_gap_free(events)
    assert len(step_results(events)) == 10
    assert all(wf.CALLS[f"add:{key}:{i}"] == 1 for i in range(10))
    assert result.invocations == 1
    # One SendMessage (the start) and nothing else: no timers, no Scheduler.
    assert dict(aws.client.dispatcher.requests) == {"sqs.SendMessage": 1}
    assert worker_requests(worker) == {}
    assert await aws.queue_depth(aws.stack.queue_url) == 0


async def test_retries_across_invocations(aws: Aws, worker: Any) -> None:
    key = new_id("k")
    run_id = await aws.client.start(wf.retrying, key, 2)
    result = await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == "ok"
    assert wf.CALLS[f"flaky:{key}"] == 3
    assert result.invocations == 3  # each backoff suspends; a delayed message resumes it
    types = [e.type for e in await aws.storage.get_events(run_id)]
    assert types.count(EventType.STEP_RETRYING) == 2
    # two delayed wake-ups and no DeleteSchedule at the end: each wait was woken by its own
    # (SQS) timer, so the ending has no pending timer to delete
    assert worker_requests(worker) == {"sqs.SendMessage": 2}


async def test_short_sleep_uses_sqs_delay(aws: Aws, worker: Any) -> None:
    key = new_id("k")
    started = datetime.now(UTC)
    run_id = await aws.client.start(wf.sleeper, key, 2)
    await aws.pump(idle_polls=1, wait_seconds=0)
    run = await aws.run(run_id)
    assert run.status == RunStatus.SUSPENDED
    assert await aws.schedules() == []
    assert worker_requests(worker) == {"sqs.SendMessage": 1}
    # The delayed message is not visible yet.
    assert await receive_batch(aws.sqs, aws.stack.queue_url, wait_seconds=0) == []
    await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.completed_at is not None and run.completed_at - started >= timedelta(seconds=2)
    # the sleep's own timer woke the run: its ending deletes no schedule (none exists)
    assert worker_requests(worker) == {"sqs.SendMessage": 1}


async def test_long_sleep_creates_one_schedule(
    aws: Aws, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", "0")  # every sleep via Scheduler
    key = new_id("k")
    run_id = await aws.client.start(wf.sleeper, key, 2)
    await aws.pump(idle_polls=1, wait_seconds=0)
    run = await aws.run(run_id)
    assert run.status == RunStatus.SUSPENDED and run.wake_at and run.wake_key
    assert await aws.schedules() == [schedule_name(run.wake_key)]
    schedule = await aws.scheduler.get_schedule(
        Name=schedule_name(run.wake_key), GroupName=aws.stack.scheduler_group
    )
    assert schedule["ScheduleExpression"].startswith("at(")
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == aws.stack.queue_arn
    # A retried suspension (same key) meets ConflictException: still exactly one timer.
    aws.client.dispatcher.sqs_delay_max = 0
    await aws.client.dispatcher.wake_at(run_id, run.wake_at, key=run.wake_key)
    assert await aws.schedules() == [schedule_name(run.wake_key)]
    # Not due yet: nothing fires.
    assert await aws.fire(datetime.now(UTC)) == []
    await asyncio.sleep(max(0.0, (run.wake_at - datetime.now(UTC)).total_seconds()) + 1.0)
    assert await aws.fire(datetime.now(UTC)) == [schedule_name(run.wake_key)]
    assert await aws.schedules() == []
    await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == 3
    # the schedule fired and deleted itself: the ending does not delete it again
    assert worker_requests(worker) == {"scheduler.CreateSchedule": 1}


async def test_hook_resumed_through_sqs(aws: Aws) -> None:
    run_id = await aws.client.start(wf.waiter)
    await aws.pump(idle_polls=1, wait_seconds=0)
    assert (await aws.run(run_id)).status == RunStatus.SUSPENDED
    result = await aws.client.resume_hook(wf.TOKENS[run_id], {"ok": True})
    assert result.run_id == run_id
    await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == {"approved": True}


async def test_a_hook_heartbeat_deadline_wakes_the_run_through_sqs(aws: Aws) -> None:
    run_id = await aws.client.start(wf.heartbeat_waiter, 2)
    await aws.pump(idle_polls=1, wait_seconds=0)
    run = await aws.run(run_id)
    (stored,) = await aws.storage.list_hooks(run_id=run_id)
    assert run.status == RunStatus.SUSPENDED and run.wake_at == stored.heartbeat_deadline
    beat = await aws.client.heartbeat_hook(wf.TOKENS[run_id])
    assert beat.status == "alive"
    (stored,) = await aws.storage.list_hooks(run_id=run_id)
    assert stored.heartbeat_deadline is not None and stored.heartbeat_deadline > run.wake_at
    # woken at the first deadline (a delayed message), it waits on to the new one, then ends
    await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == "silent"
    expired = [e for e in await aws.storage.get_events(run_id) if e.type == EventType.HOOK_EXPIRED]
    assert [e.data["reason"] for e in expired] == ["heartbeat"]


async def test_child_workflow(aws: Aws) -> None:
    run_id = await aws.client.start(wf.parent, 5)
    result = await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == 106
    children = await aws.storage.get_children(run_id)
    assert [c.status for c in children] == [RunStatus.COMPLETED]
    assert result.invocations >= 2


async def test_cancel_deletes_pending_schedule(aws: Aws, worker: Any) -> None:
    run_id = await aws.client.start(wf.sleeper, new_id("k"), 3600)
    await aws.pump(idle_polls=1, wait_seconds=0)
    run = await aws.run(run_id)
    assert run.status == RunStatus.SUSPENDED and run.wake_key
    assert await aws.schedules() == [schedule_name(run.wake_key)]
    assert await aws.client.cancel(run_id, "no longer needed")
    await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.CANCELLED
    assert await aws.schedules() == []


async def test_continue_as_new_chain_through_sqs(aws: Aws) -> None:
    first = await aws.client.start(wf.chain, 0)
    result = await aws.pump(idle_polls=2, wait_seconds=0)
    chain = await aws.storage.get_workflow_chain(first)
    assert [r.status for r in chain] == [
        RunStatus.CONTINUED_AS_NEW,
        RunStatus.CONTINUED_AS_NEW,
        RunStatus.COMPLETED,
    ]
    assert chain[-1].get_result() == 2
    assert chain[1].continued_from_run_id == chain[0].run_id
    assert result.invocations == 3  # each run of the chain started by its own message
    for run in chain:
        assert_gap_free(await aws.storage.get_events(run.run_id))


def load_container(name: str) -> Any:
    """A second copy of pyworkflow/handlers/worker.py: another "container" with its own loop,
    runtime (lease owner) and clients, in this process."""
    spec = importlib.util.spec_from_file_location(
        name, REPO / "pyworkflow" / "handlers" / "worker.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_same_message_twice_concurrently_one_history(aws: Aws) -> None:
    key = new_id("k")
    run_id = await aws.client.start(wf.ten_steps, key)
    messages = await receive_batch(aws.sqs, aws.stack.queue_url, wait_seconds=1)
    assert len(messages) == 1
    a, b = load_container("worker_a"), load_container("worker_b")
    try:
        responses = await asyncio.gather(
            *(
                invoke(
                    c.handler,
                    messages,
                    FakeLambdaContext(),
                    queue_arn=aws.stack.queue_arn,
                    region="us-east-1",
                )
                for c in (a, b)
            )
        )
        assert all(r == {"batchItemFailures": []} for r in responses)
        await settle(aws.sqs, aws.stack.queue_url, messages, responses[0])
    finally:
        for container in (a, b):
            await asyncio.to_thread(container.reset)
            container._loop.close()
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    events = await aws.storage.get_events(run_id)
    assert_gap_free(events)
    assert sorted(step_results(events)) == list(range(10))  # each step recorded once
    assert all(wf.CALLS[f"add:{key}:{i}"] == 1 for i in range(10))  # and run once


async def test_poison_message_fails_run_and_goes_to_dlq(aws: Aws) -> None:
    now = datetime.now(UTC)
    run_id = new_id("run")
    await aws.storage.create_run(
        WorkflowRun(run_id=run_id, workflow_name="nowhere.defined", created_at=now, updated_at=now),
        [
            Event(
                event_id=new_id("evt"),
                run_id=run_id,
                type=EventType.WORKFLOW_STARTED,
                timestamp=now,
                sequence=1,
                data={"workflow_name": "nowhere.defined", "args": [], "kwargs": {}},
            )
        ],
    )
    await aws.client.dispatcher.wake(run_id, reason="start")
    await aws.client.dispatcher.wake("run_unknown0000000", reason="start")
    await aws.sqs.send_message(QueueUrl=aws.stack.queue_url, MessageBody="not json at all")
    result = await aws.pump(idle_polls=1, wait_seconds=0)
    run = await aws.run(run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "PoisonMessageError"
    assert f"gave up after {MAX_RECEIVES} deliveries" in (run.error or "")
    assert "not defined in this process" in (run.error or "")
    events = await aws.storage.get_events(run_id)
    assert_gap_free(events)
    assert events[-1].type == EventType.WORKFLOW_FAILED
    # Both poison messages in the dead-letter queue; the malformed one was dropped at once.
    assert await aws.queue_depth(aws.stack.queue_url) == 0
    dead = await receive_batch(aws.sqs, aws.stack.dlq_url, wait_seconds=0)
    assert sorted(m["Body"] for m in dead) == sorted(
        [
            aws.client.dispatcher.body(run_id, "start"),
            aws.client.dispatcher.body("run_unknown0000000", "start"),
        ]
    )
    assert result.failed >= 2 * MAX_RECEIVES


async def test_time_running_out_reenqueues(aws: Aws, worker: Any) -> None:
    key = new_id("k")
    run_id = await aws.client.start(wf.ten_steps, key)
    result = await aws.pump_until_done(run_id, context_factory=context_running_out(4))
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert result.invocations == 2
    events = await aws.storage.get_events(run_id)
    assert_gap_free(events)
    assert sorted(step_results(events)) == list(range(10))
    assert all(wf.CALLS[f"add:{key}:{i}"] == 1 for i in range(10))
    # the yield re-enqueued the run with one immediate SendMessage (no delay, no schedule)
    assert worker_requests(worker) == {"sqs.SendMessage": 1}


async def test_sweep_wakes_a_due_run_whose_timer_was_lost(
    aws: Aws, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", "0")
    run_id = await aws.client.start(wf.sleeper, new_id("k"), 2)
    await aws.pump(idle_polls=1, wait_seconds=0)
    run = await aws.run(run_id)
    assert run.status == RunStatus.SUSPENDED and run.wake_key
    # The worker died after recording the wait and before its timer existed:
    await aws.scheduler.delete_schedule(
        Name=schedule_name(run.wake_key), GroupName=aws.stack.scheduler_group
    )
    sweep = {"pyworkflow": "sweep"}
    # Not due yet: the sweep leaves it alone.
    assert await asyncio.to_thread(worker.handler, sweep, FakeLambdaContext()) == {"woken": []}
    await asyncio.sleep(max(0.0, (run.wake_at - datetime.now(UTC)).total_seconds()) + 0.5)
    assert await asyncio.to_thread(worker.handler, sweep, FakeLambdaContext()) == {
        "woken": [run_id]
    }
    await aws.pump_until_done(run_id)
    assert (await aws.run(run_id)).status == RunStatus.COMPLETED


async def test_a_retried_start_resends_the_message_its_first_caller_lost(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller died between creating the run and sending its message: its retry with the
    same idempotency key finds the run still pending and sends the message again."""
    real_wake = aws.client.dispatcher.wake

    async def dies_before_sending(run_id: str, *, reason: str = "wake") -> None:
        raise ConnectionError("the caller's process died here")

    monkeypatch.setattr(aws.client.dispatcher, "wake", dies_before_sending)
    key = new_id("idem")
    with pytest.raises(ConnectionError):
        await aws.client.start(wf.ten_steps, new_id("k"), idempotency_key=key)
    monkeypatch.setattr(aws.client.dispatcher, "wake", real_wake)

    run_id = await aws.client.start(wf.ten_steps, new_id("k"), idempotency_key=key)
    await aws.pump_until_done(run_id)
    run = await aws.run(run_id)
    assert run.status == RunStatus.COMPLETED and run.idempotency_key == key

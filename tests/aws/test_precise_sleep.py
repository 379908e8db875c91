"""Precise long sleeps on the local stack (moto's Scheduler and SQS; DynamoDB Local and SQLite),
with the Scheduler path forced (``PYWORKFLOW_SQS_DELAY_MAX_SECONDS=0``): the wait's schedule
fires ahead of its time, the worker it wakes records nothing, runs no step and re-arms the run
with an SQS delay for the rest; the run is then driven less than a second after its time.

The stack's clock is a ``ManualClock`` moved to where Scheduler and SQS would deliver: what is
checked are the times the system records and the delays it asks for, never how long the test
took."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pyworkflow.core.clock import ManualClock, new_id
from pyworkflow.core.events import EventType
from pyworkflow.core.models import RunStatus
from pyworkflow.core.registry import get_workflow
from pyworkflow.dev.pumps import fire_due_schedules, parse_at
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.transport.aws import AwsDispatcher
from pyworkflow.transport.messages import WakeMessage, parse_message
from pyworkflow.transport.scheduler import schedule_name
from pyworkflow.transport.storm import DEFAULT_LEAD_SECONDS, SCHEDULER_PRECISION_SECONDS
from tests.aws import workflows as wf
from tests.aws.conftest import Aws
from tests.aws.test_transport import Sent


async def stack_runtime(aws: Aws, clock: ManualClock) -> tuple[AwsRuntime, Sent]:
    dispatcher = AwsDispatcher.from_env(clock=clock)
    runtime = AwsRuntime(aws.storage, dispatcher, clock=clock)
    return runtime, Sent(await dispatcher.clients.get("sqs"))


def move_to(clock: ManualClock, when: datetime) -> None:
    """Where Scheduler or SQS would deliver: the stack's clock moves there."""
    clock.advance((when - clock.now()).total_seconds())


async def receive_one(aws: Aws) -> str:
    response = await aws.sqs.receive_message(
        QueueUrl=aws.stack.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=2
    )
    (message,) = response["Messages"]
    await aws.sqs.delete_message(
        QueueUrl=aws.stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
    )
    return str(message["Body"])


# Where in its minute Scheduler fires the hop: at once, mid-way, at the minute's last second.
@pytest.mark.parametrize("scheduler_late", [0.0, 31.5, SCHEDULER_PRECISION_SECONDS - 0.001])
async def test_a_long_sleep_wakes_less_than_a_second_late_and_never_early(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, scheduler_late: float
) -> None:
    monkeypatch.setenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", "0")  # the first hop: Scheduler
    clock = ManualClock(datetime.now(UTC))
    runtime, sent = await stack_runtime(aws, clock)
    try:
        key = new_id("k")
        defn = get_workflow("aws_sleeper")
        assert defn is not None
        run, _ = await runtime.create_run(defn, (key, 2 * 3600 + 0.4), {})
        await runtime.drive_message({"run_id": run.run_id, "reason": "start"})
        suspended = await aws.run(run.run_id)
        assert suspended.status == RunStatus.SUSPENDED and suspended.wake_at
        wake_at, wake_key = suspended.wake_at, suspended.wake_key
        assert wake_key is not None
        assert [c for c in sent.calls if c.get("DelaySeconds")] == []  # no SQS delay yet

        # One schedule, early: a whole minute at least the lead before the wake time.
        name = schedule_name(wake_key)
        assert await aws.schedules() == [name]
        schedule = await aws.scheduler.get_schedule(Name=name, GroupName=aws.stack.scheduler_group)
        fire = parse_at(schedule["ScheduleExpression"], "UTC")
        assert fire is not None and fire.second == 0
        assert fire <= wake_at - timedelta(seconds=DEFAULT_LEAD_SECONDS)
        assert parse_message(schedule["Target"]["Input"]) == WakeMessage(
            run_id=run.run_id, reason="timer", key=wake_key
        )

        # Scheduler fires it somewhere in its minute; the worker gets the wake-up early.
        move_to(clock, fire.astimezone(UTC) + timedelta(seconds=scheduler_late))
        assert await fire_due_schedules(
            aws.scheduler, aws.sqs, clock.now(), group=aws.stack.scheduler_group
        ) == [name]
        events_before = await aws.storage.get_events(run.run_id)
        sent.calls.clear()
        woken_early_at = clock.now()
        await runtime.drive_message(await receive_one(aws))

        # Nothing recorded, no step run, the record untouched ...
        assert await aws.storage.get_events(run.run_id) == events_before
        assert (await aws.run(run.run_id)).version == suspended.version
        assert wf.CALLS[f"add:{key}:2"] == 0
        # ... and one SQS message delayed by the rest, rounded up to the second.
        (rearm,) = sent.calls
        assert json.loads(rearm["MessageBody"]) == {
            "run_id": run.run_id,
            "reason": "timer",
            "key": wake_key,
        }
        arrival = woken_early_at + timedelta(seconds=rearm["DelaySeconds"])
        assert timedelta(0) <= arrival - wake_at < timedelta(seconds=1)

        # SQS delivers it at that time: the sleep ends, recorded on the stack's clock.
        move_to(clock, arrival)
        await runtime.drive_message(rearm["MessageBody"])
        done = await aws.run(run.run_id)
        assert done.status == RunStatus.COMPLETED, done.error
        events = await aws.storage.get_events(run.run_id)
        started = next(e for e in events if e.type == EventType.SLEEP_STARTED)
        completed = next(e for e in events if e.type == EventType.SLEEP_COMPLETED)
        resume_at = datetime.fromisoformat(started.data["resume_at"])
        assert timedelta(0) <= completed.timestamp - resume_at < timedelta(seconds=1)
        assert wf.CALLS[f"add:{key}:2"] == 1
        assert runtime.dispatcher.requests["scheduler.CreateSchedule"] == 1
    finally:
        await runtime.dispatcher.close()


async def test_a_stale_early_timer_is_not_rearmed(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hop naming a wait the run has left (it was resumed meanwhile) arms nothing."""
    monkeypatch.setenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", "0")
    clock = ManualClock(datetime.now(UTC))
    runtime, sent = await stack_runtime(aws, clock)
    try:
        defn = get_workflow("aws_sleeper")
        assert defn is not None
        run, _ = await runtime.create_run(defn, (new_id("k"), 3 * 3600), {})
        await runtime.drive_message({"run_id": run.run_id, "reason": "start"})
        sent.calls.clear()
        body = WakeMessage(run_id=run.run_id, reason="timer", key="not-this-wait")
        await runtime.drive_message(body.model_dump_json())
        assert sent.calls == []
        assert runtime.dispatcher.requests["scheduler.CreateSchedule"] == 1
    finally:
        await runtime.dispatcher.close()

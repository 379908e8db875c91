"""Cron and interval schedules on AWS: each is a recurring EventBridge Scheduler schedule whose tick
goes through the work queue to ``pyworkflow/handlers/worker.py``, which starts the run (overlap
policy, exactly once per fire time) and wakes it; pause/resume/delete map to the schedule's
state."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from pyworkflow import OverlapPolicy, RunStatus, ScheduleSpec, ScheduleStatus
from pyworkflow.core.models import CalendarSpec
from pyworkflow.dev.pumps import FakeLambdaContext
from pyworkflow.exceptions import ScheduleError
from pyworkflow.runtime.aws_schedules import (
    aws_cron,
    calendar_cron,
    eventbridge_names,
    rate_expression,
)
from pyworkflow.transport.messages import SCHEDULED_TIME

from . import workflows as wf
from .conftest import Aws


async def eventbridge(aws: Aws, schedule_id: str) -> dict:
    return await aws.scheduler.get_schedule(
        Name=eventbridge_names(schedule_id, 1)[0], GroupName=aws.stack.scheduler_group
    )


async def tick(aws: Aws, schedule_id: str, fire_time: str) -> None:
    """What Scheduler sends when the schedule fires: its Input, the time filled in."""
    target = (await eventbridge(aws, schedule_id))["Target"]
    body = target["Input"].replace(SCHEDULED_TIME, fire_time)
    await aws.sqs.send_message(QueueUrl=aws.stack.queue_url, MessageBody=body)


async def runs_of(aws: Aws, schedule_id: str) -> list:
    page = await aws.storage.list_runs_page(limit=50)
    return [r for r in page.items if r.schedule_id == schedule_id]


def test_expressions_map_to_eventbridge() -> None:
    assert aws_cron("*/5 9-17 * * *") == "cron(*/5 9-17 * * ? *)"
    assert aws_cron("0 8 * * 1-5") == "cron(0 8 ? * 2-6 *)"  # cron Mon-Fri = AWS 2-6
    assert aws_cron("30 6 1 * *") == "cron(30 6 1 * ? *)"
    assert aws_cron("0 0 * * SUN") == "cron(0 0 ? * SUN *)"
    assert rate_expression("1m") == "rate(1 minute)"
    assert rate_expression("90m") == "rate(90 minutes)"
    assert rate_expression("2h") == "rate(2 hours)" and rate_expression("1d") == "rate(1 day)"
    assert calendar_cron(CalendarSpec(hour=9, minute=30, day_of_week=0)) == "cron(30 9 ? * MON *)"
    for bad in ("0 0 1 * 1", "0 0 0 * * *"):
        with pytest.raises(ScheduleError, match="Cron"):
            aws_cron(bad)
    with pytest.raises(ScheduleError, match="whole minutes"):
        rate_expression("30s")


async def test_cron_schedule_ticks_start_one_run_per_fire_time(aws: Aws) -> None:
    schedule = await aws.client.schedules.create(
        wf.ten_steps, ScheduleSpec(cron="*/5 * * * *", timezone="Europe/Paris"), "sched"
    )
    made = await eventbridge(aws, schedule.schedule_id)
    assert made["ScheduleExpression"] == "cron(*/5 * * * ? *)"
    assert made["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert made["State"] == "ENABLED" and made["Target"]["Arn"] == aws.stack.queue_arn
    assert json.loads(made["Target"]["Input"]) == {
        "schedule_id": schedule.schedule_id,
        "fire_time": SCHEDULED_TIME,
        "reason": "schedule",
    }

    assert schedule.next_run_time is not None
    fire_time = schedule.next_run_time.isoformat()
    await tick(aws, schedule.schedule_id, fire_time)
    await tick(aws, schedule.schedule_id, fire_time)  # Scheduler delivers at least once
    await aws.pump(idle_polls=2, wait_seconds=0)

    runs = await runs_of(aws, schedule.schedule_id)
    assert len(runs) == 1, runs
    assert runs[0].status == RunStatus.COMPLETED and runs[0].get_result() == sum(range(10))
    stored = await aws.storage.get_schedule(schedule.schedule_id)
    assert stored is not None and stored.total_runs == 1
    assert stored.next_run_time == schedule.next_run_time + timedelta(minutes=5)


async def test_overlap_policy_skip_is_enforced_by_the_worker(aws: Aws) -> None:
    schedule = await aws.client.schedules.create(
        wf.waiter, ScheduleSpec(interval="1m"), overlap_policy=OverlapPolicy.SKIP
    )
    assert (await eventbridge(aws, schedule.schedule_id))["ScheduleExpression"] == "rate(1 minute)"
    first = schedule.next_run_time
    assert first is not None
    await tick(aws, schedule.schedule_id, first.isoformat())
    await aws.pump(idle_polls=1, wait_seconds=0)
    [waiting] = await runs_of(aws, schedule.schedule_id)
    assert waiting.status == RunStatus.SUSPENDED  # waits on its hook

    await tick(aws, schedule.schedule_id, (first + timedelta(minutes=1)).isoformat())
    await aws.pump(idle_polls=1, wait_seconds=0)
    assert len(await runs_of(aws, schedule.schedule_id)) == 1
    stored = await aws.storage.get_schedule(schedule.schedule_id)
    assert stored is not None and stored.skipped_runs == 1


async def test_pause_resume_delete_map_to_the_eventbridge_schedule(aws: Aws) -> None:
    schedule = await aws.client.schedules.create(wf.ten_steps, ScheduleSpec(cron="0 * * * *"), "p")
    sid = schedule.schedule_id
    assert (await aws.client.schedules.pause(sid)).status == ScheduleStatus.PAUSED
    assert (await eventbridge(aws, sid))["State"] == "DISABLED"
    assert (await aws.client.schedules.resume(sid)).status == ScheduleStatus.ACTIVE
    assert (await eventbridge(aws, sid))["State"] == "ENABLED"
    await aws.client.schedules.update(sid, spec=ScheduleSpec(cron="15 * * * *"))
    assert (await eventbridge(aws, sid))["ScheduleExpression"] == "cron(15 * * * ? *)"
    await aws.client.schedules.delete(sid)
    assert eventbridge_names(sid, 1)[0] not in await aws.schedules()
    # what EventBridge cannot express is refused before anything is stored
    with pytest.raises(ScheduleError, match="whole minutes"):
        await aws.client.schedules.create(
            wf.ten_steps, ScheduleSpec(interval="10s"), "x", schedule_id="too-fast"
        )
    assert await aws.storage.get_schedule("too-fast") is None


async def test_trigger_and_backfill_start_runs_through_the_queue(aws: Aws) -> None:
    schedule = await aws.client.schedules.create(
        wf.ten_steps, ScheduleSpec(cron="0 * * * *"), "bf", overlap_policy=OverlapPolicy.ALLOW_ALL
    )
    sid = schedule.schedule_id
    triggered = await aws.client.schedules.trigger(sid)
    start = schedule.created_at - timedelta(hours=3)
    backfilled = await aws.client.schedules.backfill(sid, start, schedule.created_at)
    assert len(backfilled) == 3
    assert await aws.client.schedules.backfill(sid, start, schedule.created_at) == []  # again
    await aws.pump(idle_polls=2, wait_seconds=0)
    runs = {r.run_id: r for r in await runs_of(aws, sid)}
    assert set(runs) == {triggered, *backfilled}
    assert all(r.status == RunStatus.COMPLETED for r in runs.values())


async def test_sweep_fires_a_due_schedule_whose_tick_was_lost(aws: Aws, worker) -> None:
    schedule = await aws.client.schedules.create(wf.ten_steps, ScheduleSpec(interval="1m"), "lost")
    # an interval schedule is due at once; no tick is sent: the sweep must notice
    result = await asyncio.to_thread(worker.handler, {"pyworkflow": "sweep"}, FakeLambdaContext())
    [started] = result["woken"]
    await aws.pump(idle_polls=2, wait_seconds=0)
    run = await aws.run(started)
    assert run.schedule_id == schedule.schedule_id and run.status == RunStatus.COMPLETED

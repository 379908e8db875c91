"""A wake storm on the local stack (moto's Scheduler and SQS; DynamoDB Local and SQLite), scaled
down: ``STORM_RUNS`` runs sleep until one instant with ``PYWORKFLOW_TIMERS=bucket``. Their waits
make one Scheduler schedule (the instant's bucket), whose one firing wakes them all with
SendMessageBatch, each delayed to the instant; every run is then driven less than a second after
it. ``bench/wake_storm.py --runs 20000`` runs the same at scale and prints the times.

The stack's clock is a ``ManualClock`` moved to where Scheduler and SQS would deliver."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pyworkflow.core.clock import ManualClock
from pyworkflow.core.events import EventType
from pyworkflow.core.models import RunStatus
from pyworkflow.core.registry import get_workflow
from pyworkflow.dev.pumps import fire_due_schedules
from pyworkflow.runtime import aws as aws_runtime
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.transport.aws import AwsDispatcher
from pyworkflow.transport.sqs import SendBatchError, Wake
from pyworkflow.transport.storm import DEFAULT_LEAD_SECONDS, bucket_name, bucket_start, floor_to
from tests.aws import workflows as wf  # noqa: F401 - defines aws_sleep_until
from tests.aws.conftest import Aws

STORM_RUNS = 2_000
CONCURRENCY = 32


class Batches:
    """The SendMessageBatch calls of an SQS client, as made; ``fail`` makes entries fail."""

    def __init__(self, client: Any) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail: list[tuple[int, bool]] = []  # (entries to fail, sender's fault) per call
        self._send = client.send_message_batch
        client.send_message_batch = self

    async def __call__(self, **kwargs: Any) -> Any:
        if self.fail:
            count, sender = self.fail.pop(0)
            failed = [
                {"Id": e["Id"], "SenderFault": sender, "Code": "ThrottlingException"}
                for e in kwargs["Entries"][:count]
            ]
            kwargs = {**kwargs, "Entries": kwargs["Entries"][count:]}
            self.entries.extend(kwargs["Entries"])
            response = await self._send(**kwargs) if kwargs["Entries"] else {}
            return {**response, "Failed": failed}
        self.entries.extend(kwargs["Entries"])
        return await self._send(**kwargs)


async def bucket_runtime(aws: Aws, clock: ManualClock) -> tuple[AwsRuntime, Batches]:
    dispatcher = AwsDispatcher.from_env(clock=clock)
    assert dispatcher.timer_mode == "bucket"
    return AwsRuntime(aws.storage, dispatcher, clock=clock), Batches(
        await dispatcher.clients.get("sqs")
    )


def move_to(clock: ManualClock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())


async def each(items: list[Any], call: Any) -> None:
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(item: Any) -> None:
        async with slots:
            await call(item)

    await asyncio.gather(*(one(i) for i in items))


async def receive_all(aws: Aws) -> list[str]:
    """Every message visible on the work queue now (deleted as received)."""
    bodies: list[str] = []
    while True:
        response = await aws.sqs.receive_message(
            QueueUrl=aws.stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            await aws.sqs.delete_message(
                QueueUrl=aws.stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


async def sleep_many(runtime: AwsRuntime, instant: datetime, count: int) -> list[str]:
    """``count`` runs started and driven until they sleep until ``instant``."""
    defn = get_workflow("aws_sleep_until")
    assert defn is not None
    ids: list[str] = []

    async def start(_: int) -> None:
        run, _events = await runtime.create_run(defn, (instant.isoformat(),), {})
        await runtime.drive_message({"run_id": run.run_id, "reason": "start"})
        ids.append(run.run_id)

    await each(list(range(count)), start)
    return ids


async def test_runs_due_at_one_instant_are_all_woken_by_one_bucket_schedule(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYWORKFLOW_TIMERS", "bucket")
    clock = ManualClock(datetime.now(UTC))
    instant = floor_to(clock.now() + timedelta(hours=2), 60)
    runtime, batches = await bucket_runtime(aws, clock)
    try:
        ids = await sleep_many(runtime, instant, STORM_RUNS)
        # Every wait made the same one schedule: one CreateSchedule from this container.
        bucket = bucket_name(bucket_start(instant, DEFAULT_LEAD_SECONDS))
        assert await aws.schedules() == [bucket]
        assert runtime.dispatcher.requests["scheduler.CreateSchedule"] == 1
        assert runtime.dispatcher.requests["sqs.SendMessage"] == 0

        # Scheduler fires it (20 s into its minute): one message, whose sweep wakes them all.
        move_to(clock, bucket_start(instant, DEFAULT_LEAD_SECONDS) + timedelta(seconds=20))
        assert await fire_due_schedules(
            aws.scheduler, aws.sqs, clock.now(), group=aws.stack.scheduler_group
        ) == [bucket]
        (tick,) = await receive_all(aws)
        swept_at = clock.now()
        outcome = await runtime.drive_message(tick)
        assert outcome.woken == STORM_RUNS
        assert runtime.dispatcher.requests["sqs.SendMessageBatch"] == math.ceil(STORM_RUNS / 10)
        assert sorted(json.loads(e["MessageBody"])["run_id"] for e in batches.entries) == sorted(
            ids
        )
        for entry in batches.entries:  # each delayed to the instant: never early, < 1 s late
            arrival = swept_at + timedelta(seconds=entry["DelaySeconds"])
            assert timedelta(0) <= arrival - instant < timedelta(seconds=1)

        # SQS delivers them at the instant: every run wakes, none early, none twice.
        move_to(clock, swept_at + timedelta(seconds=batches.entries[0]["DelaySeconds"]))
        await each([e["MessageBody"] for e in batches.entries], runtime.drive_message)
        for run_id in ids:
            run = await aws.run(run_id)
            assert run.status == RunStatus.COMPLETED, run.error
            events = await aws.storage.get_events(run_id)
            (completed,) = [e for e in events if e.type == EventType.SLEEP_COMPLETED]
            assert timedelta(0) <= completed.timestamp - instant < timedelta(seconds=1)
        # One Scheduler request for the whole storm: the endings delete no per-run schedule.
        assert {k: v for k, v in runtime.dispatcher.requests.items() if "scheduler" in k} == {
            "scheduler.CreateSchedule": 1
        }
    finally:
        await runtime.dispatcher.close()


async def test_a_bucket_sweep_short_of_time_hands_the_rest_on(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYWORKFLOW_TIMERS", "bucket")
    monkeypatch.setattr(aws_runtime, "BUCKET_PAGE", 40)
    clock = ManualClock(datetime.now(UTC))
    instant = floor_to(clock.now() + timedelta(hours=2), 60)
    runtime, batches = await bucket_runtime(aws, clock)
    try:
        ids = await sleep_many(runtime, instant, 100)
        move_to(clock, bucket_start(instant, DEFAULT_LEAD_SECONDS))
        await fire_due_schedules(
            aws.scheduler, aws.sqs, clock.now(), group=aws.stack.scheduler_group
        )
        woken: list[int] = []
        for _ in range(10):  # each invocation has a page's time: it hands the rest on
            bodies = await receive_all(aws)
            if not bodies:
                break
            (body,) = bodies
            tick = aws_runtime.parse_message(body)
            assert isinstance(tick, aws_runtime.BucketTick)
            woken.append(await runtime.wake_bucket(tick, time_left=lambda: 1.0))
        assert woken == [40, 40, 20]
        sent = sorted(json.loads(e["MessageBody"])["run_id"] for e in batches.entries)
        assert sent == sorted(ids)  # every run once
    finally:
        await runtime.dispatcher.close()


async def test_throttled_batch_entries_are_sent_again(aws: Aws) -> None:
    dispatcher = AwsDispatcher.from_env()
    batches = Batches(await dispatcher.clients.get("sqs"))
    waits: list[int] = []

    async def no_wait(attempt: int) -> None:
        waits.append(attempt)

    dispatcher.queue.backoff = no_wait
    try:
        batches.fail = [(4, False), (2, False)]  # SQS fails some entries twice, then takes them
        await dispatcher.wake_many([Wake(f"run_{i}", "timer", delay=5) for i in range(10)])
        assert sorted(json.loads(e["MessageBody"])["run_id"] for e in batches.entries) == sorted(
            f"run_{i}" for i in range(10)
        )
        assert waits == [0, 1]
        assert dispatcher.requests["sqs.SendMessageBatch"] == 3
        batches.fail = [(1, True)]  # the sender's fault: retrying cannot help
        with pytest.raises(SendBatchError):
            await dispatcher.wake_many([Wake("run_x", "timer")])
    finally:
        await dispatcher.close()


async def test_the_transports_clients_retry_throttling_with_backoff(aws: Aws) -> None:
    dispatcher = AwsDispatcher.from_env()
    try:
        for service in ("sqs", "scheduler"):
            client = await dispatcher.clients.get(service)
            retries = client.meta.config.retries
            assert retries["mode"] == "standard"
            assert retries.get("total_max_attempts", retries.get("max_attempts", 0)) >= 10
    finally:
        await dispatcher.close()


async def test_a_wait_whose_bucket_fires_too_soon_gets_its_own_delayed_message(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its bucket may fire before the run's record reaches the due index: no bucket then."""
    monkeypatch.setenv("PYWORKFLOW_TIMERS", "bucket")
    monkeypatch.setenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", "0")
    clock = ManualClock(floor_to(datetime.now(UTC), 60) + timedelta(seconds=30))
    dispatcher = AwsDispatcher.from_env(clock=clock)
    sqs = await dispatcher.clients.get("sqs")
    sent: list[dict[str, Any]] = []
    send = sqs.send_message

    async def record(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return await send(**kwargs)

    sqs.send_message = record
    try:
        when = clock.now() + timedelta(seconds=DEFAULT_LEAD_SECONDS + 5.5)
        await dispatcher.wake_at("run_a", when, key="run_a-3")
        assert await aws.schedules() == []
        (message,) = sent
        assert json.loads(message["MessageBody"])["key"] == "run_a-3"
        arrival = clock.now() + timedelta(seconds=message["DelaySeconds"])
        assert timedelta(0) <= arrival - when < timedelta(seconds=1)
        # A wait far enough out joins its bucket.
        await dispatcher.wake_at("run_b", when + timedelta(hours=1), key="run_b-3")
        assert await aws.schedules() == [
            bucket_name(bucket_start(when + timedelta(hours=1), DEFAULT_LEAD_SECONDS))
        ]
    finally:
        await dispatcher.close()

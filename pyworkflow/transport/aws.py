"""Wake-up delivery on AWS: SQS for wake-ups and short waits, EventBridge Scheduler for long ones.
Every wake-up of a run is one SQS message ``{"run_id", "reason"}`` on the work queue; the worker
Lambda (``pyworkflow/handlers/worker.py``) drives the run named in it. A wait longer than
``PYWORKFLOW_SQS_DELAY_MAX_SECONDS`` (default 900, SQS's limit) becomes a one-time Scheduler
schedule ``at(...)`` that sends that same message to the queue; shorter waits ride on the message's
``DelaySeconds``. Schedule names derive from the wait's key (run and sequence), so a retried
suspension meets ``ConflictException`` instead of creating a second timer.

Precise long sleeps: a schedule fires ``PYWORKFLOW_SCHEDULER_LEAD_SECONDS`` (default 120) early,
on a whole minute, because Scheduler fires anywhere in the minute it is given; the worker it
wakes finds the wait not over and calls ``rearm``, one SQS message delayed by the rest, rounded
up to the second. ``PYWORKFLOW_TIMERS=bucket`` makes the Scheduler hop one schedule per minute
for every wait ending in it (``transport/storm.py`` says when that is needed, and why).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from pyworkflow.core.clock import Clock, SystemClock
from pyworkflow.core.models import WorkflowRun
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.settings import (
    ENV_QUEUE_ARN,
    ENV_QUEUE_URL,
    ENV_SCHEDULER_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    get_settings,
)
from pyworkflow.transport.clients import AwsClients
from pyworkflow.transport.messages import wake_body
from pyworkflow.transport.scheduler import SchedulerTimers, schedule_name
from pyworkflow.transport.sqs import SqsQueue, Wake
from pyworkflow.transport.storm import (
    BUCKET_SECONDS,
    DEFAULT_LEAD_SECONDS,
    SQS_MAX_DELAY_SECONDS,
    TIMER_MODES,
    TimerMode,
    bucket_name,
    bucket_start,
    bucket_until,
    rearm_delay,
    scheduler_fire_time,
)

#: a wait whose bucket fires sooner than this is sent its own delayed message
BUCKET_SLACK = timedelta(seconds=10)


class AwsDispatcher:
    """``Dispatcher`` over SQS (``queue``) and EventBridge Scheduler (``timers``). One client of
    each per instance, created on first use and kept: a Lambda container reuses its
    connections."""

    def __init__(
        self,
        queue_url: str,
        *,
        scheduler_group: str,
        scheduler_role_arn: str,
        queue_arn: str,
        sqs_delay_max_seconds: float | None = None,
        scheduler_lead_seconds: float | None = None,
        timers: str | None = None,
        bucket_seconds: int = BUCKET_SECONDS,
        session: Any = None,
        endpoint_url: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clients = AwsClients(session=session, endpoint_url=endpoint_url)
        self.queue = SqsQueue(queue_url, self.clients)
        self.timers = SchedulerTimers(
            group=scheduler_group,
            role_arn=scheduler_role_arn,
            target_arn=queue_arn,
            clients=self.clients,
        )
        if sqs_delay_max_seconds is None:
            configured = get_settings().sqs_delay_max_seconds
            sqs_delay_max_seconds = SQS_MAX_DELAY_SECONDS if configured is None else configured
        #: waits up to this many seconds ride on a delayed message; longer ones get a schedule
        self.sqs_delay_max = min(max(0.0, sqs_delay_max_seconds), SQS_MAX_DELAY_SECONDS)
        if scheduler_lead_seconds is None:
            configured = get_settings().scheduler_lead_seconds
            scheduler_lead_seconds = DEFAULT_LEAD_SECONDS if configured is None else configured
        #: a Scheduler hop fires this long before the wait ends (the rest rides on SQS)
        self.lead = min(max(0.0, scheduler_lead_seconds), float(SQS_MAX_DELAY_SECONDS))
        mode = (timers or get_settings().timers or "run").strip().lower()
        if mode not in TIMER_MODES:
            raise ConfigurationError(f"PYWORKFLOW_TIMERS must be one of {TIMER_MODES}: {mode!r}")
        #: "run": a schedule per wait; "bucket": one per minute of waits (transport/storm.py)
        self.timer_mode: TimerMode = "bucket" if mode == "bucket" else "run"
        self.bucket_seconds = max(1, int(bucket_seconds))
        # buckets this container made or found: each is created once per container
        self._buckets: set[str] = set()
        self._bucket_lock: asyncio.Lock | None = None
        self.clock = clock or SystemClock()
        #: AWS requests made, by "service.Operation" (read by tests and bench/)
        self.requests: Counter[str] = self.clients.requests

    @classmethod
    def from_env(cls, *, clock: Clock | None = None, session: Any = None) -> AwsDispatcher:
        """Built from ``PYWORKFLOW_QUEUE_URL`` and friends (see ``pyworkflow.settings``)."""
        settings = get_settings()
        missing = [
            n
            for n, value in (
                (ENV_QUEUE_URL, settings.queue_url),
                (ENV_QUEUE_ARN, settings.queue_arn),
                (ENV_SCHEDULER_GROUP, settings.scheduler_group),
                (ENV_SCHEDULER_ROLE_ARN, settings.scheduler_role_arn),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(f"The AWS runtime needs {', '.join(missing)} set")
        return cls(
            settings.queue_url or "",
            queue_arn=settings.queue_arn or "",
            scheduler_group=settings.scheduler_group or "",
            scheduler_role_arn=settings.scheduler_role_arn or "",
            clock=clock,
            session=session,
        )

    @property
    def queue_url(self) -> str:
        return self.queue.url

    @property
    def queue_arn(self) -> str:
        return self.timers.target_arn

    @property
    def scheduler_group(self) -> str:
        return self.timers.group

    @property
    def scheduler_role_arn(self) -> str:
        return self.timers.role_arn

    async def close(self) -> None:
        """Close the clients (they are recreated if used again)."""
        await self.clients.close()

    # --- Dispatcher ------------------------------------------------------------------------
    @staticmethod
    def body(run_id: str, reason: str, key: str | None = None) -> str:
        return wake_body(run_id, reason, key)

    async def wake(self, run_id: str, *, reason: str = "wake") -> None:
        """One SendMessage: the run is driven by whichever worker receives it."""
        await self.queue.send(run_id, reason)

    async def wake_at(self, run_id: str, when: datetime, *, key: str) -> None:
        """A delayed message for waits up to the threshold, else a Scheduler hop: the wait's
        one-time schedule, or its minute's bucket (``bucket`` timers), firing ``lead`` early
        when the wait is long enough for that."""
        now = self.clock.now()
        delay = (when - now).total_seconds()
        if delay <= 0:
            await self.queue.send(run_id, "timer", key=key)
        elif delay <= self.sqs_delay_max:
            await self.queue.send(
                run_id, "timer", delay=min(SQS_MAX_DELAY_SECONDS, math.ceil(delay)), key=key
            )
        elif self.timer_mode == "bucket":
            await self.ensure_bucket(run_id, when, now, key)
        else:
            fire_at = scheduler_fire_time(when, now, self.lead)
            await self.timers.create_timer(run_id, when, key, fire_at=fire_at)

    async def ensure_bucket(self, run_id: str, when: datetime, now: datetime, key: str) -> None:
        """The due bucket of a wait ending at ``when`` exists: one CreateSchedule per bucket per
        container (ConflictException: another made it). A wait whose bucket fires within
        ``BUCKET_SLACK`` or has fired gets its own delayed message instead: it ends within
        ``lead`` plus a bucket and the slack, less than SQS's limit."""
        start = bucket_start(when, self.lead, self.bucket_seconds)
        # Some slack: a bucket fired the moment this run's record reached the index (GSIs lag
        # by a fraction of a second) could miss it.
        if start <= now + BUCKET_SLACK:
            await self.rearm(run_id, when, key=key)
            return
        name = bucket_name(start)
        if name in self._buckets:
            return
        if self._bucket_lock is None:
            self._bucket_lock = asyncio.Lock()
        async with self._bucket_lock:  # concurrent suspensions of one minute: one request
            if name in self._buckets:
                return
            until = bucket_until(start, self.lead, self.bucket_seconds)
            await self.timers.ensure_bucket(start, until)
            self._buckets.add(name)
        while len(self._buckets) > 10_000:  # a long-lived container: forget the oldest
            self._buckets.discard(min(self._buckets))

    async def rearm(self, run_id: str, when: datetime, *, key: str) -> None:
        """A timer of wait ``key`` woke its run before ``when`` (its Scheduler hop fires early
        on purpose): one SQS message delayed by the rest, rounded up to the second. Only a hop
        that fired more than SQS's 15 minutes early (a clock far off) schedules again, under a
        name of its own (the fired schedule may not be deleted yet)."""
        now = self.clock.now()
        if (when - now).total_seconds() <= SQS_MAX_DELAY_SECONDS:
            await self.queue.send(run_id, "timer", delay=rearm_delay(when, now), key=key)
            return
        fire_at = scheduler_fire_time(when, now, self.lead)
        name = schedule_name(f"{key}.{now:%Y%m%dT%H%M%S}")
        await self.timers.create_timer(run_id, when, key, fire_at=fire_at, name=name)

    async def wake_many(self, wakes: list[Wake]) -> None:
        """Send many wake-ups at once (a due bucket's sweep): SendMessageBatch, 10 a request."""
        await self.queue.send_batch(wakes)

    async def start_child(self, run_id: str, *, wait: bool) -> None:
        """A child is just another run to wake; its parent suspends until it reports back."""
        await self.queue.send(run_id, "child")

    async def forget(self, run: WorkflowRun) -> None:
        """Delete the run's pending schedule, if it has one (a fired one deleted itself). With
        ``bucket`` timers a run has none of its own (its minute's bucket serves others, and a
        wake-up it sends an ended run is a no-op): no DeleteSchedule per ending, which in a
        storm would be a million Scheduler requests."""
        if self.timer_mode == "bucket":
            return
        if run.wake_key:
            await self.delete_schedule(run.wake_key)

    async def delete_schedule(self, key: str) -> bool:
        """Delete the schedule of wait ``key``; False if there was none."""
        return await self.timers.delete_timer(key)

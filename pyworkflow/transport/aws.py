"""Wake-up delivery on AWS: SQS for wake-ups and short waits, EventBridge Scheduler for long ones.
Every wake-up of a run is one SQS message ``{"run_id", "reason"}`` on the work queue; the worker
Lambda (``pyworkflow/handlers/worker.py``) drives the run named in it. A wait longer than
``PYWORKFLOW_SQS_DELAY_MAX_SECONDS`` (default 900, SQS's limit) becomes a one-time Scheduler
schedule ``at(...)`` that sends that same message to the queue; shorter waits ride on the message's
``DelaySeconds``. Schedule names derive from the wait's key (run and sequence), so a retried
suspension meets ``ConflictException`` instead of creating a second timer.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
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
from pyworkflow.transport.scheduler import SchedulerTimers
from pyworkflow.transport.sqs import SQS_MAX_DELAY_SECONDS, SqsQueue


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
        """A delayed message for waits up to the threshold, else a one-time schedule."""
        delay = (when - self.clock.now()).total_seconds()
        if delay <= 0:
            await self.queue.send(run_id, "timer", key=key)
        elif delay <= self.sqs_delay_max:
            await self.queue.send(
                run_id, "timer", delay=min(SQS_MAX_DELAY_SECONDS, math.ceil(delay)), key=key
            )
        else:
            await self.timers.create_timer(run_id, when, key)

    async def start_child(self, run_id: str, *, wait: bool) -> None:
        """A child is just another run to wake; its parent suspends until it reports back."""
        await self.queue.send(run_id, "child")

    async def forget(self, run: WorkflowRun) -> None:
        """Delete the run's pending schedule, if it has one (a fired one deleted itself)."""
        if run.wake_key:
            await self.delete_schedule(run.wake_key)

    async def delete_schedule(self, key: str) -> bool:
        """Delete the schedule of wait ``key``; False if there was none."""
        return await self.timers.delete_timer(key)

"""Timers as EventBridge Scheduler schedules: a wait too long for an SQS delay becomes a
one-time schedule ``at(...)`` that sends the run's wake-up to the work queue and deletes itself.

Schedule names derive from the wait's key (run and sequence), so a retried suspension meets
``ConflictException`` instead of creating a second timer. A long wait's schedule fires a little
early (``fire_at``, see ``transport/storm.py``) and carries the wait's key, so the worker it wakes
re-arms the run on SQS for the rest. In ``bucket`` mode a wait's schedule is instead the one
schedule of its minute (``ensure_bucket``), whose tick makes a worker wake the bucket's runs.
The recurring schedules of pyworkflow
schedules live in the same group: ``put`` and ``delete`` serve ``runtime/aws_schedules.py``,
which maps a schedule to its expressions.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pyworkflow.transport.clients import AwsClients, is_error
from pyworkflow.transport.messages import bucket_body, wake_body
from pyworkflow.transport.storm import bucket_name

#: Scheduler's names: [0-9a-zA-Z-_.]+, 1..64 characters.
SCHEDULE_NAME_MAX = 64
_NAME_BAD = re.compile(r"[^0-9A-Za-z_.-]")


def schedule_name(key: str) -> str:
    """A Scheduler name for the wait ``key``: the same key always gives the same name, so a
    retried suspension finds the timer it already made. Invalid characters become ``_``; a name
    too long keeps its start and ends with a hash of the whole key, so it stays unique."""
    name = _NAME_BAD.sub("_", key) or "wake"
    if len(name) <= SCHEDULE_NAME_MAX and name == key:
        return name
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    if len(name) + 1 + len(digest) <= SCHEDULE_NAME_MAX:
        return f"{name}-{digest}"  # sanitised: the hash keeps "a/b" and "a_b" apart
    return f"{name[: SCHEDULE_NAME_MAX - 1 - len(digest)]}-{digest}"


def at_expression(when: datetime) -> str:
    """``at(YYYY-MM-DDThh:mm:ss)`` in UTC, rounded *up* to the second: a timer may fire late,
    never early (an early wake would find the wait not yet due and suspend again)."""
    when = when.astimezone(UTC)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return f"at({when:%Y-%m-%dT%H:%M:%S})"


class SchedulerTimers:
    """Schedules in ``group`` whose target is the work queue (``target_arn``), sent by Scheduler
    under ``role_arn``."""

    def __init__(self, *, group: str, role_arn: str, target_arn: str, clients: AwsClients) -> None:
        self.group = group
        self.role_arn = role_arn
        self.target_arn = target_arn
        self.clients = clients

    def target(self, message: str) -> dict[str, str]:
        """A schedule's Target: send ``message`` to the work queue."""
        return {"Arn": self.target_arn, "RoleArn": self.role_arn, "Input": message}

    # --- timers of waits ---------------------------------------------------------------------
    async def create_timer(
        self,
        run_id: str,
        when: datetime,
        key: str,
        *,
        fire_at: datetime | None = None,
        name: str | None = None,
    ) -> None:
        """Wake ``run_id`` at ``fire_at`` (default ``when``; rounded up to the second) with a
        message naming wait ``key``, so a wake before ``when`` re-arms instead of driving; a
        no-op if the timer (``name``, default the key's) exists already."""
        # False (it exists): made by an earlier attempt of this same suspension, which stands.
        await self._create_at(
            name or schedule_name(key), fire_at or when, wake_body(run_id, "timer", key)
        )

    async def ensure_bucket(self, start: datetime, until: datetime) -> bool:
        """The due bucket ``start``'s one-time schedule, firing at ``start`` to wake the runs
        due before ``until``: False if it existed already (another container made it)."""
        return await self._create_at(bucket_name(start), start, bucket_body(start, until))

    async def _create_at(self, name: str, fire_at: datetime, message: str) -> bool:
        """A one-time schedule ``name`` sending ``message`` at ``fire_at`` and deleting itself;
        False if one of that name exists (``ConflictException``)."""
        scheduler = await self.clients.get("scheduler")
        self.clients.requests["scheduler.CreateSchedule"] += 1
        try:
            await scheduler.create_schedule(
                Name=name,
                GroupName=self.group,
                ScheduleExpression=at_expression(fire_at),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target=self.target(message),
            )
        except Exception as exc:
            if not is_error(exc, "ConflictException"):
                raise
            return False
        return True

    async def delete_timer(self, key: str) -> bool:
        """Delete the timer of wait ``key``; False if there was none."""
        return await self.delete(schedule_name(key))

    # --- any schedule of the group -----------------------------------------------------------
    async def put(self, definition: dict[str, Any]) -> None:
        """Create the schedule ``definition["Name"]`` in the group, or update it if it exists."""
        scheduler = await self.clients.get("scheduler")
        try:
            self.clients.requests["scheduler.CreateSchedule"] += 1
            await scheduler.create_schedule(GroupName=self.group, **definition)
        except Exception as exc:
            if not is_error(exc, "ConflictException"):
                raise
            self.clients.requests["scheduler.UpdateSchedule"] += 1
            await scheduler.update_schedule(GroupName=self.group, **definition)

    async def delete(self, name: str) -> bool:
        """Delete the schedule ``name`` of the group; False if there was none."""
        scheduler = await self.clients.get("scheduler")
        self.clients.requests["scheduler.DeleteSchedule"] += 1
        try:
            await scheduler.delete_schedule(Name=name, GroupName=self.group)
        except Exception as exc:
            if is_error(exc, "ResourceNotFoundException"):
                return False
            raise
        return True

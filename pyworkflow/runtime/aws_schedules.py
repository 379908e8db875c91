"""Schedules on AWS: each active pyworkflow schedule is a recurring EventBridge Scheduler schedule
that sends a *tick* ``{"schedule_id", "fire_time"}`` to the work queue.

The tick only says "this schedule may be due at ``fire_time``"; the worker decides what to do with
the same code as the embedded scheduler (``schedules.fire_schedule``): refresh the schedule's runs,
apply its overlap policy (skip, buffer_one, buffer_all, cancel_other, allow_all), claim the fire
time by compare-and-set and create the run under an id derived from the fire time. So a duplicate
tick, or two workers handling one, start one run; a tick that finds nothing due does nothing.
Runs are created unleased and started by a wake-up message, like every run on AWS.

Mapping (one EventBridge schedule per pyworkflow schedule, or one per calendar entry):
- cron ``m h dom mon dow`` -> ``cron(m h dom mon dow *)``, with AWS's ``?`` in the day field that
  is ``*`` and days of week renumbered (cron 0-6 = Sun-Sat, AWS 1-7 = Sun-Sat);
- interval -> ``rate(N minutes|hours|days)`` (a whole number of minutes: AWS's smallest rate);
- calendar entries -> one ``cron(...)`` each (seconds must be 0);
- timezone -> ``ScheduleExpressionTimezone``; ``start_at``/``end_at`` -> ``StartDate``/``EndDate``;
  jitter of a minute or more -> a flexible time window;
- active -> ENABLED, paused -> DISABLED, deleted -> the EventBridge schedules are deleted.
What AWS cannot express is refused with ``ScheduleError`` before anything is stored.

The worker's sweep also fires every due schedule, so a tick lost to an outage (or a schedule
whose EventBridge side failed to be created) is made up within a sweep period.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pyworkflow.core.duration import parse_duration
from pyworkflow.core.models import CalendarSpec, Schedule, ScheduleSpec, ScheduleStatus
from pyworkflow.core.schedule_math import interval_of, is_due, validate_spec
from pyworkflow.exceptions import ScheduleError, WorkflowError
from pyworkflow.runtime import schedules
from pyworkflow.transport.messages import ScheduleTick, tick_input
from pyworkflow.transport.scheduler import schedule_name

if TYPE_CHECKING:
    from pyworkflow.runtime.aws import AwsRuntime

logger = logging.getLogger("pyworkflow")

#: EventBridge schedule names of pyworkflow schedules start with this (timers use run ids)
NAME_PREFIX = "pws-"
_DOW_NAMES = re.compile(r"^[A-Za-z,\-]+$")
_AWS_CALENDAR_DOW = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]  # CalendarSpec: 0 = Monday


# --- expressions -------------------------------------------------------------------------------
def _aws_dow(field: str) -> str:
    """A cron day-of-week field in AWS's numbering (1-7 = Sun-Sat; names pass through)."""
    if field in ("*", "?") or _DOW_NAMES.match(field):
        return field

    def renumber(match: re.Match[str]) -> str:
        return str(int(match.group()) % 7 + 1)

    if re.search(r"(^|[,-])7($|[,-])", field) and "-" in field:
        raise ScheduleError(f"Day-of-week {field!r}: write ranges ending on Sunday as 0 or SUN")
    if "/" in field:
        raise ScheduleError(f"Day-of-week {field!r}: steps are not supported by EventBridge")
    return re.sub(r"\d+", renumber, field)


def aws_cron(expr: str) -> str:
    """``cron(...)`` for a five-field cron expression (``ScheduleError`` if AWS can't say it)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"Cron {expr!r}: EventBridge Scheduler takes five-field cron expressions "
            "(minute hour day-of-month month day-of-week)"
        )
    minute, hour, dom, month, dow = fields
    if dom != "*" and dow != "*":
        raise ScheduleError(
            f"Cron {expr!r}: EventBridge cannot fire on a day of the month OR a day of the week; "
            "set one of the two to *"
        )
    if dow == "*":
        dow = "?"
    else:
        dom, dow = "?", _aws_dow(dow)
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


def rate_expression(interval: str) -> str:
    seconds = int(parse_duration(interval))
    if seconds < 60 or seconds % 60:
        raise ScheduleError(
            f"Interval {interval!r}: EventBridge Scheduler's rate() counts whole minutes "
            "(at least 1 minute)"
        )
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"rate({count} {unit[:-1] if count == 1 else unit})"
    raise AssertionError("unreachable: minutes always divide")


def calendar_cron(entry: CalendarSpec) -> str:
    if entry.second:
        raise ScheduleError("Calendar entries on AWS fire on whole minutes: set second=0")
    dom = (
        "?"
        if entry.day_of_week is not None
        else (str(entry.day_of_month) if entry.day_of_month is not None else "*")
    )
    dow = _AWS_CALENDAR_DOW[entry.day_of_week] if entry.day_of_week is not None else "?"
    month = str(entry.month) if entry.month is not None else "*"
    if entry.day_of_week is not None and entry.day_of_month is not None:
        raise ScheduleError(
            "Calendar entries on AWS take a day of the month or of the week, not both"
        )
    return f"cron({entry.minute} {entry.hour} {dom} {month} {dow} *)"


def expressions(spec: ScheduleSpec) -> list[str]:
    """The EventBridge expressions that tick ``spec``'s fire times (validated first)."""
    validate_spec(spec)
    if spec.cron:
        return [aws_cron(spec.cron)]
    if spec.interval:
        interval_of(spec)
        return [rate_expression(spec.interval)]
    return [calendar_cron(entry) for entry in spec.calendar or []]


def eventbridge_names(schedule_id: str, count: int) -> list[str]:
    base = f"{NAME_PREFIX}{schedule_id}"
    return [schedule_name(base if count == 1 else f"{base}-{i}") for i in range(count)]


# --- the runtime's side ------------------------------------------------------------------------
class AwsSchedules:
    """What an ``AwsRuntime`` adds to schedules: the EventBridge schedules that tick each record
    (``sync``, called by the service after every change) and the handling of their ticks."""

    def __init__(self, rt: AwsRuntime) -> None:
        self.rt = rt

    # --- ticks ---------------------------------------------------------------------------------
    async def fire(self, tick: ScheduleTick) -> list[str]:
        """Handle a tick: start what is due on the schedule (nothing if a duplicate)."""
        now = self.rt.clock.now()
        if tick.fire_time:
            try:  # Scheduler's clock said it is time: trust it over a lagging local clock
                now = max(now, datetime.fromisoformat(tick.fire_time.replace("Z", "+00:00")))
            except ValueError:
                logger.warning("schedule tick with an unreadable fire_time %r", tick.fire_time)
        return await schedules.fire_schedule(self.rt, tick.schedule_id, now)

    async def fire_due(self) -> list[str]:
        """The sweep's part: fire every active schedule that is due (one Query of schedules)."""
        now = self.rt.clock.now()
        started: list[str] = []
        for schedule in await self.rt.storage.list_schedules(status=ScheduleStatus.ACTIVE):
            if is_due(schedule, now) or schedule.buffered_count or schedule.running_run_ids:
                try:
                    started += await schedules.fire_schedule(self.rt, schedule.schedule_id, now)
                except WorkflowError as exc:
                    logger.error("schedule %s: %s", schedule.schedule_id, exc)
        return started

    # --- EventBridge ---------------------------------------------------------------------------
    async def sync(self, schedule: Schedule) -> Schedule:
        """Make the EventBridge side match the record: ENABLED when active, DISABLED when
        paused, gone when deleted. Idempotent (create, or update on ConflictException)."""
        timers = self.rt.dispatcher.timers  # the Scheduler group the timers of waits live in
        spec = schedule.spec
        try:
            exprs = expressions(spec)
        except ScheduleError:
            exprs = []  # stored before this check existed: the sweep fires it
        names = eventbridge_names(schedule.schedule_id, max(1, len(exprs)))
        if schedule.status == ScheduleStatus.DELETED or not exprs:
            for name in names:
                await timers.delete(name)
            return schedule
        window: dict[str, Any] = {"Mode": "OFF"}
        if spec.jitter and parse_duration(spec.jitter) >= 60:
            window = {
                "Mode": "FLEXIBLE",
                "MaximumWindowInMinutes": max(1, int(parse_duration(spec.jitter) // 60)),
            }
        for name, expression in zip(names, exprs, strict=True):
            definition: dict[str, Any] = {
                "Name": name,
                "ScheduleExpression": expression,
                "ScheduleExpressionTimezone": spec.timezone or "UTC",
                "FlexibleTimeWindow": window,
                "State": "ENABLED" if schedule.status == ScheduleStatus.ACTIVE else "DISABLED",
                "Target": timers.target(tick_input(schedule.schedule_id)),
                "Description": f"pyworkflow schedule {schedule.schedule_id} "
                f"({schedule.workflow_name})",
            }
            if spec.start_at:
                definition["StartDate"] = spec.start_at.astimezone(UTC)
            if spec.end_at:
                definition["EndDate"] = spec.end_at.astimezone(UTC)
            await timers.put(definition)  # create, or update on ConflictException
        return schedule

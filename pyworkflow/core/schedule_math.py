"""When schedules fire, and what a fire does: spec validation, fire-time arithmetic and the
overlap decision, with no I/O and no clock.

Every function takes the current time as a parameter, so ``pyworkflow.runtime.schedules`` (which
does the storage side) can be tested with a manual clock, and two workers deciding from the same
schedule record always agree on fire times and on the ids of the runs they start.

The accepted forms are pyworkflow-engine 0.1.9's:

- ``cron``: anything ``croniter`` accepts (5, 6 or 7 fields, ``@daily``...), evaluated in
  ``spec.timezone``;
- ``interval``: a duration string ("30s", "5m", "1h30m"), fired at ``anchor + k * interval``;
- ``calendar``: a list of ``CalendarSpec`` (fixed wall-clock time, optionally restricted to a
  month, a day of the month and/or a day of the week, 0 = Monday), in ``spec.timezone``.

If a spec sets several of them, the first of cron, interval, calendar wins, as in 0.1.9.
Naive ``start_at``/``end_at`` are read in ``spec.timezone`` (0.1.9 does the same). All times
returned are timezone-aware UTC.
"""

from __future__ import annotations

import calendar as _calendar
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from pyworkflow.core.duration import parse_duration
from pyworkflow.core.models import CalendarSpec, OverlapPolicy, Schedule, ScheduleSpec
from pyworkflow.exceptions import ScheduleError

#: A calendar spec such as "Feb 29 that is a Monday" recurs only every 28 years: search that far.
CALENDAR_SEARCH_YEARS = 28
#: ``fire_times_between`` never returns more than this many times unless asked to.
DEFAULT_FIRE_TIME_LIMIT = 10_000
_TICK = timedelta(microseconds=1)


class ScheduleKind(StrEnum):
    """Which of the spec's forms decides the fire times."""

    CRON = "cron"
    INTERVAL = "interval"
    CALENDAR = "calendar"


def schedule_kind(spec: ScheduleSpec) -> ScheduleKind:
    """The form in effect (cron over interval over calendar, as 0.1.9 does)."""
    if spec.cron:
        return ScheduleKind.CRON
    if spec.interval:
        return ScheduleKind.INTERVAL
    if spec.calendar:
        return ScheduleKind.CALENDAR
    raise ScheduleError(
        "Schedule spec must have cron, interval, or calendar: e.g. ScheduleSpec(cron='0 9 * * *')"
        " or ScheduleSpec(interval='5m')"
    )


# --- validation --------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA timezone ``name``; ``ScheduleError`` if the system does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        detail = exc.args[0] if exc.args else "unknown zone"
        raise ScheduleError(
            f"Invalid timezone {name!r}: {detail}. Use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def validate_cron_expression(cron_expr: str) -> bool:
    """Whether ``croniter`` accepts ``cron_expr`` (0.1.9's helper of the same name)."""
    try:
        croniter(cron_expr)
    except (CroniterError, ValueError, KeyError, TypeError):
        return False
    return True


def _check_cron(expr: str, tz: ZoneInfo) -> None:
    try:
        it = croniter(expr, datetime(2000, 1, 1, tzinfo=tz))
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise ScheduleError(f"Invalid cron expression {expr!r}: {exc}") from None
    try:
        it.get_next(datetime)  # "0 0 31 2 *" parses but never fires
    except CroniterError as exc:
        raise ScheduleError(f"Invalid cron expression {expr!r}: it never fires ({exc})") from None


def interval_of(spec: ScheduleSpec) -> timedelta:
    """The spec's interval as a timedelta; ``ScheduleError`` unless it is a positive duration."""
    try:
        seconds = parse_duration(spec.interval or "")
    except ValueError as exc:
        raise ScheduleError(f"Invalid interval {spec.interval!r}: {exc}") from None
    if seconds <= 0:
        raise ScheduleError(f"Invalid interval {spec.interval!r}: must be longer than zero")
    return timedelta(seconds=seconds)


def _check_calendar(entries: list[CalendarSpec]) -> None:
    ranges = {
        "second": (0, 59),
        "minute": (0, 59),
        "hour": (0, 23),
        "day_of_month": (1, 31),
        "month": (1, 12),
        "day_of_week": (0, 6),
    }
    for i, entry in enumerate(entries):
        for part, (low, high) in ranges.items():
            value = getattr(entry, part)
            if value is not None and not low <= value <= high:
                raise ScheduleError(
                    f"Invalid calendar entry #{i}: {part}={value} is outside {low}..{high}"
                    + (" (0 = Monday)" if part == "day_of_week" else "")
                )
        if entry.month is not None and entry.day_of_month is not None:
            longest = 29 if entry.month == 2 else _calendar.monthrange(2001, entry.month)[1]
            if entry.day_of_month > longest:
                raise ScheduleError(
                    f"Invalid calendar entry #{i}: month {entry.month} never has day "
                    f"{entry.day_of_month}"
                )


def validate_spec(spec: ScheduleSpec) -> None:
    """Raise ``ScheduleError`` naming what is wrong with ``spec``; return None if it can fire.

    Everything is checked, not only the form in effect, so a typo in an unused field is still
    reported instead of surfacing after someone removes the field that shadowed it.
    """
    schedule_kind(spec)
    tz = zone(spec.timezone)
    if spec.cron:
        _check_cron(spec.cron, tz)
    if spec.interval:
        interval_of(spec)
    if spec.calendar:
        _check_calendar(spec.calendar)
    if spec.jitter:
        try:
            parse_duration(spec.jitter)
        except ValueError as exc:
            raise ScheduleError(f"Invalid jitter {spec.jitter!r}: {exc}") from None


# --- fire times --------------------------------------------------------------------------------
def as_aware(value: datetime, tz: tzinfo) -> datetime:
    """``value`` with ``tz`` attached if naive (0.1.9 reads naive times in the spec's zone)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _next_cron(expr: str, after: datetime, tz: ZoneInfo) -> datetime | None:
    """First cron match strictly after ``after``. A wall-clock time that a DST fall-back repeats
    fires once (at its first occurrence) unless the hour field is ``*``."""
    try:
        it = croniter(expr, after.astimezone(tz))
        hourly = expr.split()[1:2] == ["*"] or expr.strip().lower() == "@hourly"
        for _ in range(4):
            candidate: datetime = it.get_next(datetime)
            if hourly or not _second_occurrence(candidate):
                return candidate
    except CroniterError:
        return None
    return None


def _second_occurrence(moment: datetime) -> bool:
    """Whether ``moment`` is the repeat of a wall-clock time during a DST fall-back."""
    wall = moment.replace(tzinfo=None)
    first = wall.replace(tzinfo=moment.tzinfo, fold=0).utcoffset()
    second = wall.replace(tzinfo=moment.tzinfo, fold=1).utcoffset()
    return first != second and moment.utcoffset() == second


def _next_interval(every: timedelta, after: datetime, anchor: datetime | None) -> datetime:
    """Smallest ``anchor + k * every`` (k >= 0) strictly after ``after``; with no anchor,
    ``after`` is taken as the previous fire time."""
    if anchor is None:
        return after + every
    if after < anchor:
        return anchor
    return anchor + every * ((after - anchor) // every + 1)


def _next_calendar_date(entry: CalendarSpec, day: date, last: date) -> date | None:
    """The first date from ``day`` to ``last`` matching ``entry``'s date fields, jumping whole
    months or weeks where it can; None if there is none."""
    while day <= last:
        if entry.month is not None and day.month != entry.month:
            day = _first_of_next_month(day)
        elif entry.day_of_month is not None and day.day != entry.day_of_month:
            if day.day < entry.day_of_month <= _calendar.monthrange(day.year, day.month)[1]:
                day = day.replace(day=entry.day_of_month)
            else:
                day = _first_of_next_month(day)
        elif entry.day_of_week is not None and day.weekday() != entry.day_of_week:
            day += timedelta(days=(entry.day_of_week - day.weekday()) % 7)
        else:
            return day
    return None


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _next_calendar(entries: list[CalendarSpec], after: datetime, tz: ZoneInfo) -> datetime | None:
    """The earliest wall-clock match of any entry strictly after ``after``."""
    first = after.astimezone(tz).date() - timedelta(days=1)  # an offset can move the wall date
    last = first + timedelta(days=366 * CALENDAR_SEARCH_YEARS)
    best: datetime | None = None
    for entry in entries:
        day: date | None = first
        while day is not None:
            day = _next_calendar_date(entry, day, last)
            if day is None:
                break
            moment = datetime(
                day.year, day.month, day.day, entry.hour, entry.minute, entry.second, tzinfo=tz
            )
            if moment > after:
                if best is None or moment < best:
                    best = moment
                break
            day += timedelta(days=1)
    return best


def jitter_offset(spec: ScheduleSpec, seed: str) -> timedelta:
    """A delay in ``[0, spec.jitter]`` derived from ``seed``: deterministic, so every worker
    computes the same due time for the same schedule and fire time."""
    if not spec.jitter:
        return timedelta(0)
    span = parse_duration(spec.jitter)
    fraction = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") / 2**64
    return timedelta(seconds=round(span * fraction, 3))


def due_time(spec: ScheduleSpec, fire_time: datetime, seed: str) -> datetime:
    """When a run for the nominal ``fire_time`` may start: ``fire_time`` plus the deterministic
    jitter for (``seed``, ``fire_time``). Without ``spec.jitter`` this is ``fire_time``."""
    if not spec.jitter:
        return fire_time
    return fire_time + jitter_offset(spec, f"{seed}:{fire_time.astimezone(UTC).isoformat()}")


def next_fire_time(
    spec: ScheduleSpec,
    after: datetime,
    *,
    anchor: datetime | None = None,
    jitter_seed: str | None = None,
) -> datetime | None:
    """The first fire time strictly after ``after``, or None once the schedule has ended.

    ``start_at`` is inclusive (a fire time equal to it fires), ``end_at`` exclusive. Interval
    fire times are ``anchor + k * interval`` where the anchor is ``spec.start_at`` if set, else
    ``anchor`` (the runtime passes the schedule's creation time), so restarts and other workers
    compute the same times. With ``jitter_seed`` and ``spec.jitter``, a deterministic delay is
    added (a jittered time at or past ``end_at`` is dropped, as in 0.1.9).
    """
    tz = zone(spec.timezone)
    after = as_aware(after, UTC)
    start_at = as_aware(spec.start_at, tz) if spec.start_at else None
    end_at = as_aware(spec.end_at, tz) if spec.end_at else None
    if end_at is not None and after >= end_at:
        return None
    if start_at is not None and after < start_at:
        after = start_at - _TICK
    kind = schedule_kind(spec)
    found: datetime | None
    if kind is ScheduleKind.CRON:
        found = _next_cron(spec.cron or "", after, tz)
    elif kind is ScheduleKind.INTERVAL:
        found = _next_interval(interval_of(spec), after, start_at or anchor)
    else:
        found = _next_calendar(spec.calendar or [], after, tz)
    if found is None:
        return None
    if jitter_seed is not None:
        found = due_time(spec, found, jitter_seed)
    if end_at is not None and found >= end_at:
        return None
    return found.astimezone(UTC)


def first_fire_time(
    spec: ScheduleSpec,
    now: datetime,
    *,
    anchor: datetime | None = None,
    jitter_seed: str | None = None,
) -> datetime | None:
    """The first fire time at or after ``now`` (a new or resumed schedule fires at ``now`` if
    ``now`` is a fire time; an interval schedule anchored at ``now`` fires right away, as in
    0.1.9)."""
    return next_fire_time(spec, as_aware(now, UTC) - _TICK, anchor=anchor, jitter_seed=jitter_seed)


def fire_times_between(
    spec: ScheduleSpec,
    start: datetime,
    end: datetime,
    limit: int = DEFAULT_FIRE_TIME_LIMIT,
    *,
    anchor: datetime | None = None,
) -> list[datetime]:
    """Nominal fire times in ``[start, end)``, oldest first, at most ``limit`` of them (no
    jitter, as 0.1.9's backfill). Without ``spec.start_at`` or ``anchor``, an interval is
    anchored at ``start``."""
    tz = zone(spec.timezone)
    start, end = as_aware(start, tz), as_aware(end, tz)
    if schedule_kind(spec) is ScheduleKind.INTERVAL and anchor is None and not spec.start_at:
        anchor = start
    times: list[datetime] = []
    cursor = start - _TICK
    while len(times) < limit:
        found = next_fire_time(spec, cursor, anchor=anchor)
        if found is None or found >= end:
            break
        times.append(found)
        cursor = found
    return times


# --- naming runs and handling overlap -----------------------------------------------------------
def fire_key(schedule_id: str, fire_time: datetime) -> str:
    """Idempotency key of the run for one nominal fire time of a schedule."""
    return f"sched:{schedule_id}:{fire_time.astimezone(UTC).isoformat()}"


def scheduled_run_id(key: str) -> str:
    """The id of the run a schedule claim starts: derived from the claim's key, so every worker
    (and a later backfill) names the run for the same fire time identically."""
    return "run_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def parse_overlap_policy(value: OverlapPolicy | str) -> OverlapPolicy:
    """``value`` as an ``OverlapPolicy`` (its string value is accepted too)."""
    try:
        return OverlapPolicy(value)
    except ValueError:
        choices = ", ".join(p.value for p in OverlapPolicy)
        raise ScheduleError(f"Invalid overlap policy {value!r}: use one of {choices}") from None


class FireAction(StrEnum):
    """What a due fire does."""

    START = "start"
    CANCEL_OTHERS_AND_START = "cancel_others_and_start"
    BUFFER = "buffer"
    SKIP = "skip"


def overlap_action(
    policy: OverlapPolicy, *, running: bool, buffered: int
) -> tuple[FireAction, int]:
    """The action for a due fire under ``policy`` while runs of the schedule are (or are not)
    still going, and the new number of buffered fires. ``buffer_one`` keeps one waiting fire and
    drops the others; ``buffer_all`` keeps them all."""
    if not running or policy == OverlapPolicy.ALLOW_ALL:
        return FireAction.START, buffered
    if policy == OverlapPolicy.CANCEL_OTHER:
        return FireAction.CANCEL_OTHERS_AND_START, buffered
    if policy == OverlapPolicy.BUFFER_ALL:
        return FireAction.BUFFER, buffered + 1
    if policy == OverlapPolicy.BUFFER_ONE and buffered < 1:
        return FireAction.BUFFER, 1
    return FireAction.SKIP, buffered


# --- one firing decision ----------------------------------------------------------------------
@dataclass
class FirePlan:
    """What one claim of a schedule decided. ``record_updates`` turns it into the fields of the
    schedule record written by compare-and-set; the runtime carries out ``starts`` (create and
    drive) and ``cancel`` only once that write has landed, so a plan that lost the race to
    another worker's is simply dropped."""

    running: list[str]  # runs of the schedule still going, after the refresh
    changed: bool = False  # the refresh changed the running ids or the counters
    successful: int = 0
    failed: int = 0
    skipped: int = 0
    buffered: int | None = None  # the new buffered_count, if it changes
    advance: bool = False  # consume the due fire time: next_run_time becomes ...
    next_run_time: datetime | None = None
    starts: list[tuple[str, str]] = field(default_factory=list)  # (run id, idempotency key)
    last: str | None = None
    cancel: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # claimed runs created by the refresh

    def claim(self, key: str, *, record_as_last: bool = True) -> str:
        """Start a run named after ``key``; it counts as running from this write on."""
        run_id = scheduled_run_id(key)
        self.starts.append((run_id, key))
        self.running.append(run_id)
        if record_as_last:
            self.last = run_id
        return run_id

    @property
    def writes(self) -> bool:
        return bool(self.changed or self.starts or self.advance or self.buffered is not None)

    def record_updates(self, current: Schedule, now: datetime) -> dict[str, Any]:
        updates: dict[str, Any] = {
            "running_run_ids": list(self.running),
            "successful_runs": current.successful_runs + self.successful,
            "failed_runs": current.failed_runs + self.failed,
            "skipped_runs": current.skipped_runs + self.skipped,
            "total_runs": current.total_runs + len(self.starts),
            "updated_at": now,
        }
        if self.buffered is not None:
            updates["buffered_count"] = self.buffered
        if self.advance:
            updates["next_run_time"] = self.next_run_time
        if self.last is not None:
            updates.update(last_run_id=self.last, last_run_at=now)
        return updates


def due_fire_time(schedule: Schedule, now: datetime) -> datetime | None:
    """The schedule's next fire time if it (plus its jitter) has come, else None."""
    fire_time = schedule.next_run_time
    if fire_time is None or due_time(schedule.spec, fire_time, schedule.schedule_id) > now:
        return None
    return fire_time


def is_due(schedule: Schedule, now: datetime) -> bool:
    """Whether the schedule's next fire time (plus its jitter) has come."""
    return due_fire_time(schedule, now) is not None


def consume_fire_time(schedule: Schedule, plan: FirePlan, now: datetime) -> None:
    """Move past the due fire time. Fire times missed while no worker ran are not made up (as in
    0.1.9): the next one is the first after ``now``."""
    if schedule.next_run_time is None:
        raise ScheduleError(f"Schedule {schedule.schedule_id!r} has no fire time to move past")
    plan.advance = True
    plan.next_run_time = next_fire_time(
        schedule.spec, max(now, schedule.next_run_time), anchor=schedule.created_at
    )


def decide_fire(schedule: Schedule, plan: FirePlan, now: datetime) -> None:
    """Start a buffered fire if nothing runs any more, then apply the overlap policy to the due
    fire, if any. Mutates ``plan``; the run ids it claims depend only on the schedule record
    (its version or the fire time), so every worker deciding from one record agrees."""
    buffered = schedule.buffered_count
    if buffered > 0 and not plan.running:
        plan.claim(f"sched:{schedule.schedule_id}:buffered:{schedule.version}")
        buffered -= 1
    fire_time = due_fire_time(schedule, now)
    if fire_time is not None:
        action, buffered = overlap_action(
            schedule.overlap_policy, running=bool(plan.running), buffered=buffered
        )
        if action == FireAction.SKIP:
            plan.skipped += 1
        elif action != FireAction.BUFFER:
            if action == FireAction.CANCEL_OTHERS_AND_START:
                plan.cancel = list(plan.running)
            plan.claim(fire_key(schedule.schedule_id, fire_time))
        consume_fire_time(schedule, plan, now)
    if buffered != schedule.buffered_count:
        plan.buffered = buffered


def describe_schedule(spec: ScheduleSpec) -> str:
    """A one-line human description, e.g. ``Cron: 0 9 * * * (UTC)`` (same wording as 0.1.9)."""
    tz_note = f" ({spec.timezone})"
    if spec.cron:
        return f"Cron: {spec.cron}{tz_note}"
    if spec.interval:
        return f"Every {spec.interval}{tz_note}"
    if spec.calendar:
        days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        parts = []
        for entry in spec.calendar:
            part = f"{entry.hour:02d}:{entry.minute:02d}:{entry.second:02d}"
            if entry.day_of_week is not None:
                part = f"{days[entry.day_of_week]} at {part}"
            elif entry.day_of_month is not None:
                part = f"Day {entry.day_of_month} at {part}"
            parts.append(part)
        return f"Calendar: {', '.join(parts)}{tz_note}"
    return "No schedule defined"

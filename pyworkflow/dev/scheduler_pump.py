"""EventBridge Scheduler (and EventBridge rules) firing, done by hand for the local stack:
moto stores schedules but never fires them.

``SchedulerPump.tick(now)`` looks at every schedule of every group and fires those due into
their targets: one-time ``at(...)`` once, recurring ``rate(...)`` / ``cron(...)`` at each
occurrence, with its own next-fire bookkeeping (moto keeps no "last fired"). It honours
``State`` (a DISABLED schedule never fires; re-enabled, it continues from then),
``StartDate`` / ``EndDate``, ``ScheduleExpressionTimezone`` and ``ActionAfterCompletion``
(DELETE removes a schedule once it has no invocation left), and fills in the Input's context
keywords (``<aws.scheduler.scheduled-time>``...). FlexibleTimeWindow is ignored: every
occurrence fires at its exact time. An occurrence the pump missed
(the machine slept) fires once, not once per missed occurrence, then it goes on from now.

``RuleTimer`` does the same for a template's ``Schedule`` events: the function is invoked
directly with the event's ``Input``.

Expressions follow AWS: ``rate(5 minutes)``; ``cron(min hour day-of-month month day-of-week
year)`` with ``?``, day-of-week 1-7 = SUN-SAT or names, ``L`` and ``#``;
``at(yyyy-mm-ddThh:mm:ss)``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from pyworkflow.dev.pumps import parse_at, queue_url_of
from pyworkflow.dev.template import ScheduleEventSpec

logger = logging.getLogger("pyworkflow.dev")

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_DOW_NUMBER = re.compile(r"\d+")

LambdaInvoker = Callable[[str, Any], Awaitable[Any]]


class ExpressionError(ValueError):
    """A schedule expression the local scheduler cannot read."""


def rate_period(expression: str) -> timedelta | None:
    """The period of ``rate(n unit)``; None for other expressions."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    amount, unit = int(match.group(1)), match.group(2).rstrip("s")
    if amount < 1 or (amount == 1) != (match.group(2) == unit):
        raise ExpressionError(f"{expression}: AWS wants 'rate(1 {unit})' or 'rate(n {unit}s)'")
    return timedelta(seconds=amount * _UNITS[unit])


def _dow_field(value: str) -> str:
    """AWS numbers days 1-7 from Sunday, croniter 0-6: shift the numbers (not ``#n``)."""
    if value in ("?", "*"):
        return "*"
    if value.endswith("L") and value[:-1].isdigit():
        raise ExpressionError("cron day-of-week 'nL' (last weekday of month) is not supported")
    day, hash_, nth = value.partition("#")
    shifted = _DOW_NUMBER.sub(lambda m: str(int(m.group()) - 1), day)
    return shifted + hash_ + nth


def aws_cron(expression: str) -> tuple[str, str]:
    """``cron(...)`` → (five-field croniter expression, year field)."""
    match = _CRON.match(expression.strip())
    if match is None:
        raise ExpressionError(f"not a cron() expression: {expression}")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise ExpressionError(
            f"{expression}: AWS cron has 6 fields "
            "(minutes hours day-of-month month day-of-week year)"
        )
    minute, hour, dom, month, dow, year = fields
    if "W" in dom:
        raise ExpressionError(f"{expression}: day-of-month 'W' is not supported locally")
    dom = "*" if dom == "?" else dom
    return f"{minute} {hour} {dom} {month} {_dow_field(dow)}", year


def _year_ok(year_field: str, year: int) -> bool:
    if year_field in ("*", "?"):
        return True
    for part in year_field.split(","):
        base, _, step = part.partition("/")
        low, _, high = base.partition("-")
        lo = int(low) if low not in ("*", "") else 1970
        hi = int(high) if high else (9999 if step or low == "*" else lo)
        if lo <= year <= hi and (year - lo) % int(step or 1) == 0:
            return True
    return False


def next_fire(
    expression: str, after: datetime, *, timezone: str = "UTC", anchor: datetime | None = None
) -> datetime | None:
    """The first occurrence strictly after ``after`` (aware, UTC), or None if there is none.
    ``anchor`` is where a ``rate()`` counts its periods from (its creation or StartDate)."""
    expression = expression.strip()
    at = parse_at(expression, timezone or "UTC")
    if at is not None:
        at = at.astimezone(UTC)
        return at if at > after else None
    period = rate_period(expression)
    if period is not None:
        start = anchor or after
        if start > after:
            return start + period
        elapsed = (after - start) // period + 1
        return start + elapsed * period
    five, year = aws_cron(expression)
    tz = ZoneInfo(timezone or "UTC")
    try:
        it = croniter(five, after.astimezone(tz))
        for _ in range(10_000):
            candidate: datetime = it.get_next(datetime)
            if candidate.year > 9999:
                break
            if _year_ok(year, candidate.year):
                return candidate.astimezone(UTC)
    except (CroniterError, ValueError) as exc:
        raise ExpressionError(f"{expression}: {exc}") from None
    return None


def _as_datetime(value: Any) -> datetime | None:
    """moto returns dates as epoch seconds or datetimes depending on the client."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def context_attributes(schedule: dict[str, Any], due: datetime) -> dict[str, str]:
    """What Scheduler puts in place of its context keywords in a target's Input."""
    return {
        "<aws.scheduler.schedule-arn>": str(schedule.get("Arn", "")),
        "<aws.scheduler.scheduled-time>": due.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": uuid.uuid4().hex[:16],
        "<aws.scheduler.attempt-number>": "1",
    }


@dataclass
class _Plan:
    fingerprint: tuple[Any, ...]
    due: datetime | None


@dataclass
class Fired:
    group: str
    name: str
    at: datetime
    target: str


@dataclass
class SchedulerPump:
    """Fires due Scheduler schedules. ``scheduler`` and ``sqs`` are aioboto3 clients; a target
    that is a Lambda function ARN goes to ``invoke_lambda(arn, event)`` when given."""

    scheduler: Any
    sqs: Any
    invoke_lambda: LambdaInvoker | None = None
    groups: Sequence[str] | None = None  # None: every group
    # role ARN -> the SQS client signing as that role: a schedule is delivered with the role its
    # target names, as Scheduler does (None: with ``sqs``, no IAM)
    senders: Mapping[str, Any] | None = None
    _plans: dict[tuple[str, str], _Plan] = field(default_factory=dict, repr=False)
    _urls: dict[str, str] = field(default_factory=dict, repr=False)

    async def _summaries(self) -> list[dict[str, Any]]:
        groups: list[str | None] = list(self.groups) if self.groups is not None else [None]
        found = []
        for group in groups:
            kwargs: dict[str, Any] = {"GroupName": group} if group else {}
            while True:
                page = await self.scheduler.list_schedules(**kwargs)
                found.extend(page.get("Schedules", []))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return found

    async def tick(self, now: datetime) -> list[Fired]:
        """Fire everything due at ``now``; returns what fired."""
        fired: list[Fired] = []
        seen: set[tuple[str, str]] = set()
        for summary in await self._summaries():
            group = summary.get("GroupName") or "default"
            key = (group, summary["Name"])
            seen.add(key)
            if summary.get("State", "ENABLED") != "ENABLED":
                self._plans.pop(key, None)  # re-enabled later: it continues from then
                continue
            try:
                schedule = await self.scheduler.get_schedule(Name=key[1], GroupName=group)
            except Exception as exc:  # noqa: BLE001 - deleted meanwhile
                logger.debug("schedule %s/%s vanished: %s", group, key[1], exc)
                continue
            try:
                outcome = await self._consider(key, schedule, now)
            except ExpressionError as exc:
                logger.warning("schedule %s/%s cannot fire locally: %s", group, key[1], exc)
                continue
            if outcome is not None:
                fired.append(outcome)
        for key in set(self._plans) - seen:
            del self._plans[key]
        return fired

    async def _consider(
        self, key: tuple[str, str], schedule: dict[str, Any], now: datetime
    ) -> Fired | None:
        expression = schedule["ScheduleExpression"]
        tz = schedule.get("ScheduleExpressionTimezone") or "UTC"
        start = _as_datetime(schedule.get("StartDate"))
        end = _as_datetime(schedule.get("EndDate"))
        created = _as_datetime(schedule.get("CreationDate")) or now
        modified = _as_datetime(schedule.get("LastModificationDate")) or created
        fingerprint = (expression, tz, start, end, modified)
        plan = self._plans.get(key)
        if plan is None or plan.fingerprint != fingerprint:
            # New, or changed (an update, a re-enable): occurrences count from that moment (or
            # from StartDate); a one-time at() fires even if its time passed before we looked.
            if parse_at(expression, tz) is not None:
                base = datetime.min.replace(tzinfo=UTC)
            elif start is not None and start > modified:
                base = start - timedelta(microseconds=1)
            else:
                base = modified
            plan = _Plan(
                fingerprint, next_fire(expression, base, timezone=tz, anchor=start or modified)
            )
            self._plans[key] = plan
        if plan.due is not None and end is not None and plan.due > end:
            plan.due = None
        if plan.due is None or plan.due > now:
            if plan.due is None:
                await self._complete(key, schedule)
            return None
        due = plan.due
        await self._deliver(schedule["Target"], context_attributes(schedule, due))
        plan.due = next_fire(expression, now, timezone=tz, anchor=start or modified)
        if plan.due is not None and end is not None and plan.due > end:
            plan.due = None
        if plan.due is None:
            await self._complete(key, schedule)
        return Fired(group=key[0], name=key[1], at=due, target=schedule["Target"]["Arn"])

    async def _complete(self, key: tuple[str, str], schedule: dict[str, Any]) -> None:
        """A schedule with no invocation left: deleted if its ActionAfterCompletion says so."""
        if schedule.get("ActionAfterCompletion") != "DELETE":
            return
        try:
            await self.scheduler.delete_schedule(Name=key[1], GroupName=key[0])
        except Exception as exc:  # noqa: BLE001 - already gone
            logger.debug("delete %s/%s: %s", key[0], key[1], exc)
        self._plans.pop(key, None)

    async def _deliver(self, target: dict[str, Any], attributes: dict[str, str]) -> None:
        arn = target["Arn"]
        payload = target.get("Input", "")
        for keyword, value in attributes.items():
            payload = payload.replace(keyword, value)
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        if service == "sqs":
            if arn not in self._urls:
                name, account = queue_url_of(arn)
                self._urls[arn] = (
                    await self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
                )["QueueUrl"]
            kwargs: dict[str, Any] = {"QueueUrl": self._urls[arn], "MessageBody": payload}
            group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
            if group_id:
                kwargs["MessageGroupId"] = group_id
            sender = (
                self.sqs if self.senders is None else self.senders.get(target.get("RoleArn", ""))
            )
            if sender is None:
                raise ExpressionError(f"no role {target.get('RoleArn')} to deliver to {arn} with")
            await sender.send_message(**kwargs)
        elif service == "lambda" and self.invoke_lambda is not None:
            await self.invoke_lambda(arn, json.loads(payload) if payload else {})
        else:
            logger.warning(
                "schedule target %s is not supported locally (SQS or a local function only)", arn
            )


@dataclass
class RuleTimer:
    """A template's ``Schedule`` event: invoke ``function`` with its input at each occurrence,
    counting ``rate()`` periods from the stack's start."""

    function: str
    event: ScheduleEventSpec
    started: datetime
    due: datetime | None = None

    def __post_init__(self) -> None:
        self.due = (
            next_fire(
                self.event.expression,
                self.started,
                timezone=self.event.timezone,
                anchor=self.started,
            )
            if self.event.enabled
            else None
        )

    def take(self, now: datetime) -> bool:
        """Whether it is due at ``now``; if so the next occurrence is planned."""
        if self.due is None or self.due > now:
            return False
        self.due = next_fire(
            self.event.expression, now, timezone=self.event.timezone, anchor=self.started
        )
        return True

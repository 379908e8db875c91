"""``sleep``: a durable wait. The absolute wake time is recorded, so a replay or a restart never
stretches it; the run suspends and the runtime wakes it then (a timer locally, EventBridge
Scheduler or SQS on AWS)."""

from __future__ import annotations

from datetime import datetime

from pyworkflow.core import context as _ctx
from pyworkflow.core.duration import Duration, parse_duration, resolve_wake_time
from pyworkflow.core.events import EventType
from pyworkflow.exceptions import SuspensionSignal

_NAME = "sleep() duration"


async def sleep(duration: Duration, name: str | None = None) -> None:
    """Wait for ``duration``: "30s", "5m", "2h", "1d", seconds, a timedelta, or until a datetime
    (a naive one is local time, as ``datetime.now()`` gives it). ``name`` labels the sleep in
    its events (``sleep_name``) for timelines and debugging; it is not part of the operation's
    identity, so renaming a sleep does not break the replay of runs already waiting in it.

    Inside a durable workflow the run suspends and costs nothing while it waits; outside a
    workflow this is ``asyncio.sleep``; inside a step it is an error (``PrimitiveInStepError``:
    a step waits with ``asyncio.sleep``).
    """
    if not isinstance(duration, datetime):
        parse_duration(duration, name=_NAME)  # a bad value fails here, before anything is recorded
    if name is not None and not isinstance(name, str):
        raise TypeError(f"sleep() name must be a string, got {type(name).__name__}")
    ctx = _ctx.current()
    installed = _ctx.override()
    if ctx is None and installed is not None:
        # A context of the user's (set_context: a MockContext in a test) does the waiting,
        # given seconds as pyworkflow-engine gives it.
        from pyworkflow.core.clock import SystemClock

        now = SystemClock().now()
        seconds = (resolve_wake_time(duration, now, name=_NAME) - now).total_seconds()
        if installed.is_step_worker:
            await SystemClock().sleep(seconds)
        else:
            await installed.sleep(int(seconds) if float(seconds).is_integer() else seconds)
        return
    if ctx is None:
        # Not recorded: a plain wait outside a workflow.
        from pyworkflow.core.clock import SystemClock

        clock = SystemClock()
        now = clock.now()
        await clock.sleep((resolve_wake_time(duration, now, name=_NAME) - now).total_seconds())
        return
    _ctx.refuse_in_step("sleep()")

    op, rec = await ctx.begin("sleep", "sleep")
    ctx.check_cancellation(rec)
    if rec is not None and rec.terminal is not None:
        return
    if rec is None:
        wake_at = resolve_wake_time(duration, ctx.now(), name=_NAME)
        data = {
            "op": op,
            "name": "sleep",
            "resume_at": wake_at.isoformat(),
            "duration": str(duration),
        }
        if name is not None:
            data["sleep_name"] = name
        await ctx.record(EventType.SLEEP_STARTED, data, defer=True)
    else:
        started = ctx.opening(rec, EventType.SLEEP_STARTED)
        wake_at = datetime.fromisoformat(started.data["resume_at"])

    remaining = (wake_at - ctx.now()).total_seconds()
    if remaining > 0 and (not ctx.is_durable or remaining <= ctx.inline_sleep_max):
        await ctx.clock.sleep(remaining)
        remaining = 0
    if remaining <= 0:
        await ctx.record(EventType.SLEEP_COMPLETED, {"op": op, "name": "sleep"}, defer=True)
        return
    raise await ctx.suspension(SuspensionSignal("sleep", wake_at=wake_at, op=op))

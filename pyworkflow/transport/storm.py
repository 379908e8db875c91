"""When timers fire, and how long a storm of runs due at one instant takes to wake: arithmetic
only (no I/O, no clock), so the transport, the worker and ``bench/capacity.py`` share one copy.

Precise long sleeps. EventBridge Scheduler fires an ``at()`` schedule anywhere in the minute it
names (``SCHEDULER_PRECISION_SECONDS``), so a wait's Scheduler hop is set ``lead`` seconds
*early*, rounded down to the minute (``scheduler_fire_time``): it wakes the run before its time,
and the worker, finding the wait not yet over, re-arms it as an SQS message delayed by the
remainder (``rearm_delay``, whole seconds rounded up, at most ``SQS_MAX_DELAY_SECONDS``). The run
is then driven less than a second after its time, plus SQS's delivery; never before it.

Wake storms. Scheduler invokes targets at 1,000/s by default: a million per-run schedules due at
midnight would take 1,000 s to deliver. With ``PYWORKFLOW_TIMERS=bucket`` a wait's Scheduler hop
is instead the one schedule of its minute (``bucket_start``): the worker that receives it sweeps
the due index for the bucket's window and sends the wake-ups with SendMessageBatch, each delayed
to its run's own time. ``plan_wake`` computes either mode's figures for N runs due at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

#: Scheduler invokes an at() schedule within the minute it names (AWS: "60 second precision")
SCHEDULER_PRECISION_SECONDS = 60
#: how early a wait's Scheduler hop fires by default: the precision, plus a minute of slack
DEFAULT_LEAD_SECONDS = 120.0
#: the width of a due bucket (one schedule per bucket in ``bucket`` mode)
BUCKET_SECONDS = 60
#: SQS refuses a longer DelaySeconds
SQS_MAX_DELAY_SECONDS = 900
#: the wake-up time pyworkflow promises: every run due at one instant woken within this
STORM_TARGET_SECONDS = 600.0

TimerMode = Literal["run", "bucket"]
TIMER_MODES: tuple[TimerMode, ...] = ("run", "bucket")


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def floor_to(when: datetime, seconds: int) -> datetime:
    """``when`` (UTC) rounded down to a multiple of ``seconds`` since the epoch."""
    when = _utc(when)
    epoch = math.floor(when.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def scheduler_fire_time(when: datetime, now: datetime, lead: float) -> datetime | None:
    """The at() time of a wait's early Scheduler hop: ``lead`` seconds before ``when``, rounded
    down to the minute. None when that is not after ``now`` (a wait too short to hop early:
    its schedule fires at ``when`` itself) or ``lead`` is 0."""
    if lead <= 0:
        return None
    fire = floor_to(_utc(when) - timedelta(seconds=lead), SCHEDULER_PRECISION_SECONDS)
    return fire if fire > _utc(now) else None


def rearm_delay(when: datetime, now: datetime) -> int:
    """The DelaySeconds that brings a run woken early at ``now`` back at ``when``: rounded up
    (never early; less than a second late), at most SQS's limit."""
    remaining = (_utc(when) - _utc(now)).total_seconds()
    return min(SQS_MAX_DELAY_SECONDS, max(0, math.ceil(remaining)))


# --- due buckets -----------------------------------------------------------------------------
def bucket_start(when: datetime, lead: float, width: int = BUCKET_SECONDS) -> datetime:
    """The bucket of a wait ending at ``when``: its early hop's time, rounded down to ``width``."""
    return floor_to(_utc(when) - timedelta(seconds=lead), width)


def bucket_until(start: datetime, lead: float, width: int = BUCKET_SECONDS) -> datetime:
    """The bucket's window ends here: its sweep wakes every run due before this time (its own
    waits, and any due earlier whose wake-up was lost)."""
    return _utc(start) + timedelta(seconds=width + lead)


def bucket_name(start: datetime) -> str:
    """The Scheduler name of a bucket: one per minute, so creating it twice is a conflict."""
    return f"due-{_utc(start):%Y%m%dT%H%M%S}"


# --- the storm model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Quotas:
    """AWS's default quotas and behaviour that bound a wake storm (per region and account)."""

    scheduler_invocations_per_s: float = 1_000.0  # Scheduler: target invocations (throttled)
    create_schedule_per_s: float = 1_000.0  # Scheduler: CreateSchedule requests
    sqs_batch_entries: int = 10  # SendMessageBatch: messages per request
    lambda_concurrency: int = 1_000  # the account's concurrent executions
    lambda_sqs_max: int = 1_250  # concurrency an SQS event source scales to
    lambda_sqs_initial: int = 5  # ... starting from this many batches at once
    lambda_sqs_scale_per_minute: float = 300.0  # ... adding this many a minute


@dataclass(frozen=True)
class Workload:
    """How fast pyworkflow's own parts go (``bench/wake_storm.py`` measures them locally)."""

    drive_seconds: float = 0.05  # one woken run's drive on the worker
    fanout_runs_per_s: float = 5_000.0  # one bucket sweep: due-index pages + SendMessageBatch
    lead_seconds: float = DEFAULT_LEAD_SECONDS
    containers: int = 100  # worker containers that may each create a bucket's schedule once


@dataclass(frozen=True)
class WakePlan:
    """What waking ``runs`` runs due at one instant costs and takes, in one timer mode."""

    mode: TimerMode
    runs: int
    create_schedule_requests: int  # made while the runs suspended (before the instant)
    scheduler_invocations: int
    sqs_send_requests: int  # requests carrying the wake-ups to the queue
    delivery_seconds: float  # from the first hop until every wake-up is on the queue
    peak_wakes_per_s: float  # the highest rate at which runs are driven
    seconds: float  # from the instant until every run has been driven

    @property
    def within_target(self) -> bool:
        return self.seconds <= STORM_TARGET_SECONDS


def _drain_seconds(
    runs: int, delivered: float, head_start: float, quotas: Quotas, workload: Workload
) -> tuple[float, float]:
    """Seconds from the instant until Lambda has driven ``runs``, whose wake-ups reach the
    queue at ``delivered`` runs/s from ``head_start`` seconds before it (none drivable before the
    instant: each is delayed to its time); and the peak drive rate. One-second steps."""
    cap = min(quotas.lambda_concurrency, quotas.lambda_sqs_max)
    per_instance = 1.0 / workload.drive_seconds
    done = 0.0
    peak = 0.0
    t = 0
    while done < runs:
        arrived = min(float(runs), delivered * (t + 1 + head_start))
        concurrency = min(
            cap, quotas.lambda_sqs_initial + quotas.lambda_sqs_scale_per_minute * t / 60.0
        )
        step = min(concurrency * per_instance, arrived - done)
        peak = max(peak, step)
        done += step
        t += 1
        if t > 10_000_000:  # pragma: no cover - only with absurd inputs
            break
    return float(t), peak


def plan_wake(
    runs: int,
    mode: TimerMode,
    *,
    quotas: Quotas | None = None,
    workload: Workload | None = None,
) -> WakePlan:
    """Requests and time to wake ``runs`` runs whose sleeps all end at one instant.

    ``run``: one at() schedule per wait (``runs`` CreateSchedule as they suspend), each fired by
    Scheduler at its invocation quota, each one SendMessage. ``bucket``: one schedule per bucket
    per worker container, one invocation, whose sweep sends the wake-ups 10 a request at the
    measured fan-out rate. Both hops fire ``lead`` seconds early (less Scheduler's minute of
    precision); Lambda's SQS scaling bounds how fast the woken runs are driven."""
    quotas = quotas or Quotas()
    workload = workload or Workload()
    lead = workload.lead_seconds
    if mode == "run":
        creates, invocations, sends = runs, runs, runs
        rate = quotas.scheduler_invocations_per_s
    else:
        creates = min(runs, max(1, workload.containers))
        invocations = 1 if runs else 0
        sends = math.ceil(runs / quotas.sqs_batch_entries)
        rate = workload.fanout_runs_per_s
    # The hop fires somewhere in the minute it names: count on lead - precision of head start.
    head_start = max(0.0, lead - SCHEDULER_PRECISION_SECONDS)
    seconds, peak = _drain_seconds(runs, rate, head_start, quotas, workload)
    return WakePlan(
        mode=mode,
        runs=runs,
        create_schedule_requests=creates,
        scheduler_invocations=invocations,
        sqs_send_requests=sends,
        delivery_seconds=runs / rate if runs else 0.0,
        peak_wakes_per_s=peak,
        seconds=seconds,
    )


def choose_timers(
    runs_due_at_once: int, *, quotas: Quotas | None = None, workload: Workload | None = None
) -> TimerMode:
    """The timer mode for a deployment whose busiest instant has ``runs_due_at_once`` runs
    due: per-run schedules while they meet ``STORM_TARGET_SECONDS``, else buckets."""
    plan = plan_wake(runs_due_at_once, "run", quotas=quotas, workload=workload)
    return "run" if plan.within_target else "bucket"


__all__ = [
    "BUCKET_SECONDS",
    "DEFAULT_LEAD_SECONDS",
    "SCHEDULER_PRECISION_SECONDS",
    "SQS_MAX_DELAY_SECONDS",
    "STORM_TARGET_SECONDS",
    "TIMER_MODES",
    "Quotas",
    "TimerMode",
    "WakePlan",
    "Workload",
    "bucket_name",
    "bucket_start",
    "bucket_until",
    "choose_timers",
    "floor_to",
    "plan_wake",
    "rearm_delay",
    "scheduler_fire_time",
]

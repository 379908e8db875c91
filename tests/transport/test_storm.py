"""``pyworkflow.transport.storm``: when a wait's Scheduler hop fires, the SQS delay that re-arms
a run woken early, due buckets, and the wake-storm model (per-run schedules vs buckets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pyworkflow.transport.storm import (
    SCHEDULER_PRECISION_SECONDS,
    SQS_MAX_DELAY_SECONDS,
    STORM_TARGET_SECONDS,
    Quotas,
    Workload,
    bucket_name,
    bucket_start,
    bucket_until,
    choose_timers,
    floor_to,
    plan_wake,
    rearm_delay,
    scheduler_fire_time,
)

NOW = datetime(2030, 1, 1, 12, 0, 7, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    "wait,lead",
    [
        (w, lead)
        for w in (900.5, 3600.0, 7 * 86400 + 0.75, 200.0)
        for lead in (60.0, 120.0, 600.0)
        if w > lead + SCHEDULER_PRECISION_SECONDS
    ],
)
def test_a_long_waits_hop_fires_before_its_time_even_at_the_end_of_schedulers_minute(
    wait: float, lead: float
) -> None:
    when = NOW + timedelta(seconds=wait)
    fire = scheduler_fire_time(when, NOW, lead)
    assert fire is not None
    assert fire.second == 0 and fire.microsecond == 0  # a whole minute
    assert fire > NOW
    latest = fire + timedelta(seconds=SCHEDULER_PRECISION_SECONDS - 1)
    assert latest < when  # never wakes the run late, wherever in its minute Scheduler fires
    # ... and early by at most lead + a minute: within SQS's delay for the rest
    assert (when - fire).total_seconds() <= lead + SCHEDULER_PRECISION_SECONDS
    assert (when - fire).total_seconds() <= SQS_MAX_DELAY_SECONDS + SCHEDULER_PRECISION_SECONDS


def test_a_wait_too_short_for_an_early_hop_gets_none() -> None:
    assert scheduler_fire_time(NOW + timedelta(seconds=30), NOW, 120) is None
    assert scheduler_fire_time(NOW + timedelta(hours=2), NOW, 0) is None


@pytest.mark.parametrize("remaining", [0.0, 0.001, 0.5, 1.0, 59.999, 180.25, 899.5])
def test_the_rearm_delay_is_never_early_and_less_than_a_second_late(remaining: float) -> None:
    when = NOW + timedelta(seconds=remaining)
    delay = rearm_delay(when, NOW)
    arrival = NOW + timedelta(seconds=delay)
    assert arrival >= when
    assert (arrival - when).total_seconds() < 1.0


def test_the_rearm_delay_stays_within_sqs_limits() -> None:
    assert rearm_delay(NOW - timedelta(seconds=5), NOW) == 0
    assert rearm_delay(NOW + timedelta(hours=1), NOW) == SQS_MAX_DELAY_SECONDS


def test_waits_ending_in_one_minute_share_a_bucket_whose_window_covers_them() -> None:
    instant = datetime(2030, 1, 2, 0, 0, tzinfo=UTC)
    starts = {bucket_start(instant + timedelta(seconds=s), 120) for s in (0, 10.5, 59.9)}
    assert len(starts) == 1
    (start,) = starts
    assert start == floor_to(instant - timedelta(seconds=120), 60)
    assert bucket_until(start, 120) > instant + timedelta(seconds=59.9)
    assert (bucket_until(start, 120) - start).total_seconds() <= SQS_MAX_DELAY_SECONDS
    assert bucket_name(start) == "due-20300101T235800"
    assert bucket_start(instant + timedelta(seconds=60), 120) != start


def test_a_million_per_run_schedules_due_at_once_breach_ten_minutes() -> None:
    plan = plan_wake(1_000_000, "run")
    # Scheduler delivers 1,000 invocations a second: 1,000 s for the last wake-up alone
    assert plan.scheduler_invocations == 1_000_000
    assert plan.delivery_seconds == 1_000
    assert not plan.within_target and plan.seconds > STORM_TARGET_SECONDS


def test_a_million_runs_in_one_bucket_wake_within_ten_minutes() -> None:
    plan = plan_wake(1_000_000, "bucket")
    assert plan.scheduler_invocations == 1
    assert plan.sqs_send_requests == 100_000  # SendMessageBatch, 10 a request
    assert plan.create_schedule_requests <= Workload().containers
    assert plan.within_target, plan


def test_the_model_slows_with_fewer_lambdas_and_slower_drives() -> None:
    fast = plan_wake(1_000_000, "bucket")
    slow = plan_wake(
        1_000_000,
        "bucket",
        quotas=Quotas(lambda_concurrency=100),
        workload=Workload(drive_seconds=0.2),
    )
    assert slow.seconds > fast.seconds
    assert slow.peak_wakes_per_s <= 100 / 0.2


def test_few_runs_due_at_once_keep_per_run_schedules() -> None:
    assert choose_timers(1_000) == "run"
    assert choose_timers(1_000_000) == "bucket"
    assert plan_wake(0, "bucket").seconds == 0

"""bench/capacity.py's arithmetic, without AWS: index writes from item differences, the hottest
shard, the % of a limit and its verdict, the cost, and the acceptance figures (every partition
under half its limit at 10,000 starts/s and 100,000 steps/s with the sharded keys, not before)."""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bench import capacity
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.storage import dynamodb_items as items

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run(status: RunStatus, **update: object) -> WorkflowRun:
    run = WorkflowRun(run_id="run_a", workflow_name="wf", created_at=T0, updated_at=T0)
    return run.model_copy(update={"status": status, **update})


def test_index_writes_count_a_new_entry_once_a_moved_key_twice_and_an_in_place_update_once() -> (
    None
):
    layout = items.CURRENT
    pending = items.run_item(_run(RunStatus.PENDING), 30.0)
    running = items.run_item(_run(RunStatus.RUNNING), 30.0)
    done = items.run_item(_run(RunStatus.COMPLETED, completed_at=T0), 30.0)
    created = capacity.index_writes(layout, None, pending)
    assert created == Counter(
        {
            ("GSI1", "STATUS", "active"): 1,
            ("GSI2", "WF", "wf"): 1,
            ("GSI4", "RUNS", ""): 1,
            ("GSI5", "DUE", ""): 1,
        }
    )
    # pending -> running: the status group keeps its key, only ``st`` (projected) changes
    assert capacity.index_writes(layout, pending, running) == Counter(
        {("GSI1", "STATUS", "active"): 1}
    )
    # running -> completed: the status entry moves (delete + put), the due entry goes
    assert capacity.index_writes(layout, running, done) == Counter(
        {
            ("GSI1", "STATUS", "active"): 1,
            ("GSI1", "STATUS", "completed"): 1,
            ("GSI5", "DUE", ""): 1,
        }
    )


def test_index_writes_count_a_changed_sort_key_as_delete_and_put() -> None:
    running = items.run_item(_run(RunStatus.RUNNING), 30.0)
    asleep = items.run_item(_run(RunStatus.SUSPENDED, wake_at=T0 + timedelta(hours=1)), 30.0)
    writes = capacity.index_writes(items.CURRENT, running, asleep)
    assert writes[("GSI5", "DUE", "")] == 2  # DUESK moved to the wake time
    assert writes[("GSI1", "STATUS", "active")] == 1


def test_legacy_layout_builds_the_keys_of_the_code_before_sharding() -> None:
    # bff4852's dynamodb_items: STATUS#<status>, WF#<name>, RUNS#/DUE# crc32 % 4, SCHEDULES
    run = _run(RunStatus.RUNNING)
    item = items.run_item(run, 30.0, layout=items.LEGACY)
    k = zlib.crc32(b"run_a") % 4
    assert item["GSI1PK"]["S"] == "STATUS#running"
    assert item["GSI2PK"]["S"] == "WF#wf"
    assert item["GSI4PK"]["S"] == f"RUNS#{k}"
    assert item["GSI5PK"]["S"] == f"DUE#{k}"


def test_hottest_shard_takes_the_family_total_over_its_shards() -> None:
    writes = Counter({("GSI1", "STATUS", "active"): 3, ("GSI1", "STATUS", "completed"): 1})
    hot = capacity.hottest(items.CURRENT, 10_000.0, writes)
    assert hot["GSI1"].key == "STATUS#active#0"
    assert hot["GSI1"].rate == pytest.approx(30_000.0 / items.RUN_STATUS.shards)
    assert hot["GSI1"].needed == 61  # 30,000/s needs 61 shards for < 500/s each
    old = capacity.hottest(items.LEGACY, 10_000.0, Counter({("GSI1", "STATUS", "pending"): 2}))
    assert old["GSI1"].key == "STATUS#pending" and old["GSI1"].rate == 20_000.0


def test_percent_of_limit_and_verdict_pass_only_under_half() -> None:
    under = capacity.Row("x", 499.0, 1_000.0, "WCU/s")
    at_half = capacity.Row("x", 500.0, 1_000.0, "WCU/s")
    assert under.percent == pytest.approx(49.9) and under.passes
    assert at_half.percent == pytest.approx(50.0) and not at_half.passes
    assert capacity.Row("sqs", 1e9, None, "/s").passes  # no limit


def test_ten_step_run_costs_13_writes_and_2_reads_and_its_dollars_follow() -> None:
    w = capacity.Workload(runs_per_s=1.0, steps=10)
    cost = capacity.run_cost(w)
    assert cost.dynamodb(capacity.WRITES) == 13 and cost.dynamodb(capacity.READS) == 2
    assert cost.wru_table == 13 and cost.wru_index == 8
    dollars = capacity.cost_per_million_steps(w, cost)
    assert dollars["DynamoDB table writes"] == pytest.approx(100_000 * 13 * 0.625e-6)
    assert dollars["DynamoDB index writes"] == pytest.approx(100_000 * 8 * 0.625e-6)
    assert dollars["DynamoDB reads"] == pytest.approx(100_000 * 2 * 0.125e-6)


def test_new_keys_keep_every_partition_under_half_at_10k_starts_and_100k_steps() -> None:
    w = capacity.Workload(runs_per_s=10_000.0, steps=10)
    rows = capacity.partition_rows(w, capacity.run_cost(w))
    assert w.steps_per_s == 100_000.0
    assert all(row.passes for row in rows), [(r.what, r.percent) for r in rows if not r.passes]


def test_old_keys_put_the_status_pending_partition_over_its_limit_at_that_rate() -> None:
    w = capacity.Workload(runs_per_s=10_000.0, steps=10, layout=items.LEGACY)
    rows = capacity.partition_rows(w, capacity.run_cost(w))
    worst = max(rows, key=lambda r: r.value / (r.limit or 1.0))
    assert worst.key.startswith("STATUS#pending ") and worst.value == 20_000.0
    assert not worst.passes


def test_long_sleep_on_the_scheduler_hops_early_and_rearms_on_sqs() -> None:
    w = capacity.Workload(steps=2, sleeps=1, sleep_seconds=3_600.0)
    cost = capacity.run_cost(w)
    assert cost.requests["scheduler.CreateSchedule"] == 1 and cost.scheduler_invocations == 1
    assert cost.requests["sqs.SendMessage"] == 2  # the start and the re-arm
    assert cost.messages == 3  # first drive, early wake, the drive after the sleep


def test_model_refuses_a_wait_without_a_step_after_it() -> None:
    with pytest.raises(ValueError, match="step after every wait"):
        capacity.run_cost(capacity.Workload(steps=2, sleeps=1, hooks=1))


def test_a_hooks_run_key_is_one_runs_own_and_its_status_key_is_sharded() -> None:
    w = capacity.Workload(runs_per_s=10_000.0, steps=2, hooks=1)
    cost = capacity.run_cost(w)
    assert cost.index_writes[("GSI1", "HOOKSTATUS", "pending")] == 2  # comes, goes
    assert cost.index_writes[("GSI6", "HOOKRUN", capacity.RUN_ID)] == 2  # created, received
    hot = capacity.hottest(items.CURRENT, w.runs_per_s, cost.index_writes, drive_s=0.1)
    assert hot["GSI6"].key == "HOOKRUN#<run_id>" and hot["GSI6"].rate == pytest.approx(20.0)


def test_one_second_peak_of_a_shard_is_mean_plus_poisson_spread() -> None:
    hot = capacity.Hot("STATUS#active#0", 468.75, 64, 61)
    assert hot.peak == pytest.approx(468.75 + (2 * 4.1589 * 468.75) ** 0.5, rel=1e-3)
    assert capacity.Hot("PARENT#x", 10.0, 1, 1).peak == 10.0  # one key: no spread

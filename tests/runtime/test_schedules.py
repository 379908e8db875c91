"""Schedules: fire-time arithmetic, the 0.1.9 schedule API, exactly-once firing and overlap
policies, all on a manual clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

import pyworkflow
from pyworkflow import (
    CalendarSpec,
    InvalidArgumentsError,
    OverlapPolicy,
    RunStatus,
    ScheduleSpec,
    ScheduleStatus,
    backfill_schedule,
    create_schedule,
    delete_schedule,
    get_schedule,
    get_workflow,
    get_workflow_run,
    list_schedules,
    pause_schedule,
    resume,
    resume_schedule,
    scheduled_workflow,
    sleep,
    step,
    trigger_schedule,
    update_schedule,
    workflow,
)
from pyworkflow.api import activate_scheduled_workflows
from pyworkflow.core.clock import ManualClock
from pyworkflow.core.schedule_math import (
    describe_schedule,
    fire_times_between,
    first_fire_time,
    next_fire_time,
    validate_spec,
)
from pyworkflow.exceptions import ScheduleError, ScheduleNotFoundError, UnknownWorkflowError
from pyworkflow.runtime import schedules as sched_mod
from pyworkflow.runtime.local import LocalRuntime, get_runtime
from pyworkflow.runtime.schedules import (
    clear_scheduled_workflows,
    fire_due_schedules,
    fire_key,
    get_scheduled_workflow,
    scheduled_run_id,
)
from pyworkflow.runtime.worker import run_once
from pyworkflow.storage import InMemoryStorageBackend, SQLiteStorageBackend

T0 = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)  # a Tuesday
calls: Counter[str] = Counter()


@step
async def sch_note(tag: str) -> str:
    calls[tag] += 1
    return tag


@workflow
async def sch_report(label: str = "r") -> str:
    await sch_note(label)
    return f"report {label}"


@workflow
async def sch_long(label: str = "l") -> str:
    """Stays going (suspended) for 25 minutes: longer than the 10-minute test interval."""
    await sleep("25m")
    await sch_note(label)
    return label


@dataclass
class Env:
    storage: InMemoryStorageBackend
    clock: ManualClock

    @property
    def rt(self) -> LocalRuntime:
        return get_runtime()

    def at(self, minutes: float) -> None:
        """Move the clock to ``T0 + minutes``."""
        self.clock.advance((T0 + timedelta(minutes=minutes) - self.clock.now()).total_seconds())


@pytest.fixture(autouse=True)
def _isolate():
    pyworkflow.reset_config()
    clear_scheduled_workflows()
    calls.clear()
    yield
    clear_scheduled_workflows()
    pyworkflow.reset_config()


@pytest.fixture
def env() -> Env:
    store = InMemoryStorageBackend()
    clk = ManualClock(T0)
    pyworkflow.configure(storage=store, clock=clk)
    return Env(store, clk)


async def statuses(run_ids: list[str]) -> list[RunStatus]:
    return [(await get_workflow_run(r)).status for r in run_ids]


# --- fire-time arithmetic ----------------------------------------------------------------------
async def test_cron_next_times_in_utc_and_in_timezone():
    daily = ScheduleSpec(cron="0 9 * * *")
    assert next_fire_time(daily, T0) == datetime(2030, 1, 1, 9, tzinfo=UTC)
    # strictly after: at 09:00 the next one is tomorrow; first_fire_time is inclusive
    nine = datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert next_fire_time(daily, nine) == datetime(2030, 1, 2, 9, tzinfo=UTC)
    assert first_fire_time(daily, nine) == nine
    paris = ScheduleSpec(cron="0 9 * * *", timezone="Europe/Paris")
    assert next_fire_time(paris, T0) == datetime(2030, 1, 2, 8, tzinfo=UTC)  # 09:00 CET
    bounded = ScheduleSpec(
        cron="0 9 * * *", start_at=datetime(2030, 1, 5, 9), end_at=datetime(2030, 1, 6, 9)
    )
    assert next_fire_time(bounded, T0) == datetime(2030, 1, 5, 9, tzinfo=UTC)  # start inclusive
    assert next_fire_time(bounded, datetime(2030, 1, 5, 9, tzinfo=UTC)) is None  # end exclusive


async def test_cron_fires_once_on_a_repeated_dst_hour():
    spec = ScheduleSpec(cron="30 1 * * *", timezone="America/New_York")
    first = next_fire_time(spec, datetime(2030, 11, 3, 0, tzinfo=UTC))
    assert first == datetime(2030, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert next_fire_time(spec, first) == datetime(2030, 11, 4, 6, 30, tzinfo=UTC)  # not 01:30 EST


async def test_interval_times_are_anchored():
    spec = ScheduleSpec(interval="10m")
    assert first_fire_time(spec, T0, anchor=T0) == T0  # fires right away, as 0.1.9
    later = T0 + timedelta(minutes=23)
    assert next_fire_time(spec, later, anchor=T0) == T0 + timedelta(minutes=30)
    assert next_fire_time(spec, later) == later + timedelta(minutes=10)  # no anchor: from `after`
    started = ScheduleSpec(interval="1h", start_at=datetime(2030, 1, 1, 9, 15, tzinfo=UTC))
    assert next_fire_time(started, T0, anchor=T0) == datetime(2030, 1, 1, 9, 15, tzinfo=UTC)
    assert next_fire_time(started, datetime(2030, 1, 1, 9, 15, tzinfo=UTC)) == datetime(
        2030, 1, 1, 10, 15, tzinfo=UTC
    )
    # backfill times of an interval keep the schedule's alignment
    assert fire_times_between(
        spec, T0 + timedelta(minutes=5), T0 + timedelta(minutes=35), anchor=T0
    ) == [T0 + timedelta(minutes=m) for m in (10, 20, 30)]


async def test_calendar_next_time_and_description():
    spec = ScheduleSpec(
        calendar=[
            CalendarSpec(day_of_week=4, hour=17),  # Fridays 17:00
            CalendarSpec(day_of_month=1, month=2, hour=6),
        ]
    )
    assert next_fire_time(spec, T0) == datetime(2030, 1, 4, 17, tzinfo=UTC)
    assert next_fire_time(spec, datetime(2030, 1, 31, 18, tzinfo=UTC)) == datetime(
        2030, 2, 1, 6, tzinfo=UTC
    )
    leap_monday = ScheduleSpec(calendar=[CalendarSpec(month=2, day_of_month=29, day_of_week=0)])
    assert next_fire_time(leap_monday, T0) == datetime(2044, 2, 29, tzinfo=UTC)
    assert describe_schedule(spec) == "Calendar: Fri at 17:00:00, Day 1 at 06:00:00 (UTC)"


async def test_jitter_is_deterministic_and_bounded():
    spec = ScheduleSpec(interval="1h", jitter="30s")
    a = next_fire_time(spec, T0, anchor=T0, jitter_seed="s1")
    assert a == next_fire_time(spec, T0, anchor=T0, jitter_seed="s1")
    assert T0 + timedelta(hours=1) <= a <= T0 + timedelta(hours=1, seconds=30)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ScheduleSpec(cron="61 * * * *"), "Invalid cron expression '61 * * * *': "),
        (ScheduleSpec(cron="every day"), "Invalid cron expression 'every day'"),
        (ScheduleSpec(cron="0 0 31 2 *"), "never fires"),
        (ScheduleSpec(interval="soon"), "Invalid interval 'soon'"),
        (ScheduleSpec(interval="0s"), "must be longer than zero"),
        (
            ScheduleSpec(cron="* * * * *", timezone="Mars/Olympus"),
            "Invalid timezone 'Mars/Olympus'",
        ),
        (ScheduleSpec(), "must have cron, interval, or calendar"),
        (ScheduleSpec(calendar=[CalendarSpec(hour=24)]), "hour=24 is outside 0..23"),
        (ScheduleSpec(calendar=[CalendarSpec(month=4, day_of_month=31)]), "never has day 31"),
        (ScheduleSpec(interval="5m", jitter="lots"), "Invalid jitter 'lots'"),
    ],
)
async def test_invalid_specs_raise_clear_errors(spec, message):
    with pytest.raises(ScheduleError) as info:
        validate_spec(spec)
    assert message in str(info.value)


async def test_fire_times_between_is_start_inclusive_end_exclusive():
    hourly = ScheduleSpec(cron="0 * * * *")
    times = fire_times_between(hourly, datetime(2024, 1, 1), datetime(2024, 1, 1, 3))
    assert times == [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(3)]
    assert len(fire_times_between(hourly, datetime(2024, 1, 1), datetime(2024, 1, 2), 5)) == 5


# --- the schedule API --------------------------------------------------------------------------
async def test_create_checks_workflow_spec_and_arguments(env):
    # The same error as a start of an unknown workflow, from every entry point; a ValueError,
    # as pyworkflow-engine raised.
    with pytest.raises(UnknownWorkflowError, match="'no_such_flow' is not registered") as info:
        await create_schedule("no_such_flow", ScheduleSpec(interval="5m"))
    assert isinstance(info.value, ValueError)
    with pytest.raises(ScheduleError, match="Invalid cron expression '61 \\* \\* \\* \\*'"):
        await create_schedule("sch_report", ScheduleSpec(cron="61 * * * *"))
    with pytest.raises(InvalidArgumentsError):
        await create_schedule("sch_report", ScheduleSpec(interval="5m"), "a", "too many")
    with pytest.raises(ScheduleError, match="Invalid overlap policy"):
        await create_schedule("sch_report", ScheduleSpec(interval="5m"), overlap_policy="nope")
    await create_schedule("sch_report", ScheduleSpec(interval="5m"), schedule_id="dup")
    with pytest.raises(ScheduleError, match="already exists"):
        await create_schedule("sch_report", ScheduleSpec(interval="5m"), schedule_id="dup")
    assert await list_schedules() != []
    assert [s.schedule_id for s in await list_schedules()] == ["dup"]


async def test_create_get_list_update_pause_resume_delete(env):
    s = await create_schedule(
        sch_report,
        ScheduleSpec(cron="0 9 * * *"),
        "x",
        overlap_policy=OverlapPolicy.ALLOW_ALL,
        schedule_id="daily",
    )
    assert (s.workflow_name, s.status, s.args) == ("sch_report", ScheduleStatus.ACTIVE, '["x"]')
    assert s.next_run_time == datetime(2030, 1, 1, 9, tzinfo=UTC)
    other = await create_schedule("sch_long", ScheduleSpec(interval="1h"))
    assert other.next_run_time == T0  # an interval fires right away
    assert (await get_schedule("daily")).overlap_policy == OverlapPolicy.ALLOW_ALL
    assert await get_schedule("nope") is None
    assert {x.schedule_id for x in await list_schedules()} == {"daily", other.schedule_id}
    assert [x.schedule_id for x in await list_schedules(workflow_name="sch_long")] == [
        other.schedule_id
    ]
    assert len(await list_schedules(limit=1)) == 1
    assert len(await list_schedules(offset=1)) == 1

    updated = await update_schedule(
        "daily", spec=ScheduleSpec(cron="0 12 * * *"), overlap_policy=OverlapPolicy.SKIP
    )
    assert updated.next_run_time == datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert updated.overlap_policy == OverlapPolicy.SKIP

    paused = await pause_schedule("daily")
    assert paused.status == ScheduleStatus.PAUSED
    assert [x.schedule_id for x in await list_schedules(status=ScheduleStatus.PAUSED)] == ["daily"]
    await delete_schedule(other.schedule_id)  # deleted and paused schedules do not fire
    env.at(60 * 24 + 5 * 60)  # Jan 2, 13:00: missed fire times are not made up on resume
    assert await fire_due_schedules(env.rt) == []
    resumed = await resume_schedule("daily")
    assert resumed.status == ScheduleStatus.ACTIVE
    assert resumed.next_run_time == datetime(2030, 1, 3, 12, tzinfo=UTC)

    await delete_schedule("daily")
    gone = await get_schedule("daily")
    assert gone.status == ScheduleStatus.DELETED and gone.next_run_time is None
    with pytest.raises(ScheduleError, match="deleted"):
        await resume_schedule("daily")
    with pytest.raises(ScheduleNotFoundError):
        await pause_schedule("never-existed")
    with pytest.raises(ScheduleNotFoundError):
        await delete_schedule("never-existed")


async def test_fire_due_schedules_starts_exactly_one_run_per_fire_time(env):
    s = await create_schedule("sch_report", ScheduleSpec(interval="10m"), "a")
    first = await fire_due_schedules(env.rt)
    assert first == [scheduled_run_id(fire_key(s.schedule_id, T0))]
    assert await fire_due_schedules(env.rt) == []  # same fire time: nothing more
    run = await get_workflow_run(first[0])
    assert run.status == RunStatus.COMPLETED and run.schedule_id == s.schedule_id
    assert run.idempotency_key == f"sched:{s.schedule_id}:{T0.isoformat()}"
    env.at(10)
    second = await fire_due_schedules(env.rt)
    assert len(second) == 1 and second != first
    assert calls["a"] == 2
    env.at(15)
    assert await fire_due_schedules(env.rt) == []
    s = await get_schedule(s.schedule_id)
    assert (s.total_runs, s.successful_runs, s.failed_runs) == (2, 2, 0)
    assert s.last_run_id == second[0] and s.last_run_at == T0 + timedelta(minutes=10)
    assert s.next_run_time == T0 + timedelta(minutes=20) and s.running_run_ids == []


async def test_a_late_worker_fires_once_and_skips_to_the_next_future_time(env):
    await create_schedule("sch_report", ScheduleSpec(cron="*/10 * * * *"), schedule_id="c")
    env.at(95)  # 09:35: nine fire times were missed while no worker ran
    assert len(await fire_due_schedules(env.rt)) == 1
    assert (await get_schedule("c")).next_run_time == T0 + timedelta(minutes=100)


class YieldingStorage(InMemoryStorageBackend):
    """Yields to the event loop around schedule reads and writes, so two workers' passes
    interleave: both read the same version before either writes."""

    async def get_schedule(self, schedule_id):
        await asyncio.sleep(0)
        return await super().get_schedule(schedule_id)

    async def update_schedule(self, schedule, *, expected_version):
        await asyncio.sleep(0)
        return await super().update_schedule(schedule, expected_version=expected_version)


async def test_two_workers_on_one_storage_start_a_fire_time_once():
    store, clk = YieldingStorage(), ManualClock(T0)
    pyworkflow.configure(storage=store, clock=clk)
    await create_schedule("sch_report", ScheduleSpec(interval="10m"), "race", schedule_id="r")
    one, two = LocalRuntime(store, clk), LocalRuntime(store, clk)
    assert one.executor.owner != two.executor.owner
    a, b = await asyncio.gather(fire_due_schedules(one), fire_due_schedules(two))
    assert sorted(a + b) == [scheduled_run_id(fire_key("r", T0))]
    page = await store.list_runs_page()
    assert len(page.items) == 1 and page.items[0].status == RunStatus.COMPLETED
    assert calls["race"] == 1
    assert (await store.get_schedule("r")).total_runs == 1


async def test_a_claimed_run_whose_creator_died_is_created_by_the_next_pass(env, monkeypatch):
    await create_schedule("sch_report", ScheduleSpec(interval="10m"), "c", schedule_id="crash")
    real = sched_mod._create_run

    async def crash(*args, **kwargs):
        raise RuntimeError("worker killed after claiming")

    monkeypatch.setattr(sched_mod, "_create_run", crash)
    with pytest.raises(RuntimeError):
        await fire_due_schedules(env.rt)
    monkeypatch.setattr(sched_mod, "_create_run", real)
    run_id = scheduled_run_id(fire_key("crash", T0))
    assert await get_workflow_run(run_id) is None
    assert (await get_schedule("crash")).running_run_ids == [run_id]
    assert await fire_due_schedules(env.rt) == []  # not a new start: the claimed one, created
    assert (await get_workflow_run(run_id)).status == RunStatus.COMPLETED
    assert calls["c"] == 1 and (await get_schedule("crash")).total_runs == 1


# --- overlap policies ---------------------------------------------------------------------------
async def _long_schedule(policy: OverlapPolicy) -> str:
    s = await create_schedule("sch_long", ScheduleSpec(interval="10m"), overlap_policy=policy)
    return s.schedule_id


async def test_skip_drops_fires_while_a_run_is_going(env):
    sid = await _long_schedule(OverlapPolicy.SKIP)
    [a] = await fire_due_schedules(env.rt)
    assert await statuses([a]) == [RunStatus.SUSPENDED]
    env.at(10)
    assert await fire_due_schedules(env.rt) == []
    env.at(20)
    assert await fire_due_schedules(env.rt) == []
    assert (await get_schedule(sid)).skipped_runs == 2
    env.at(30)
    await resume(a)  # its 25-minute sleep is over: it completes
    [b] = await fire_due_schedules(env.rt)
    s = await get_schedule(sid)
    assert (s.total_runs, s.successful_runs, s.skipped_runs) == (2, 1, 2)
    assert s.running_run_ids == [b]


async def test_buffer_one_keeps_one_fire_waiting(env):
    sid = await _long_schedule(OverlapPolicy.BUFFER_ONE)
    [a] = await fire_due_schedules(env.rt)
    env.at(10)
    assert await fire_due_schedules(env.rt) == []
    assert (await get_schedule(sid)).buffered_count == 1
    env.at(20)
    assert await fire_due_schedules(env.rt) == []
    s = await get_schedule(sid)
    assert (s.buffered_count, s.skipped_runs) == (1, 1)
    env.at(30)
    await resume(a)
    [b] = await fire_due_schedules(env.rt)  # the buffered fire starts; 08:30 is buffered
    s = await get_schedule(sid)
    assert b == scheduled_run_id(f"sched:{sid}:buffered:{s.version - 1}")
    assert (s.buffered_count, s.total_runs, s.running_run_ids) == (1, 2, [b])


async def test_buffer_all_keeps_every_fire_waiting(env):
    sid = await _long_schedule(OverlapPolicy.BUFFER_ALL)
    [a] = await fire_due_schedules(env.rt)
    env.at(10)
    await fire_due_schedules(env.rt)
    env.at(20)
    await fire_due_schedules(env.rt)
    s = await get_schedule(sid)
    assert (s.buffered_count, s.skipped_runs, s.total_runs) == (2, 0, 1)
    env.at(30)
    await resume(a)
    assert len(await fire_due_schedules(env.rt)) == 1  # one at a time
    assert (await get_schedule(sid)).buffered_count == 2  # 2 - 1 started + 1 new fire


async def test_cancel_other_cancels_the_running_run_and_starts_a_new_one(env):
    sid = await _long_schedule(OverlapPolicy.CANCEL_OTHER)
    [a] = await fire_due_schedules(env.rt)
    env.at(10)
    [b] = await fire_due_schedules(env.rt)
    assert await statuses([a, b]) == [RunStatus.CANCELLED, RunStatus.SUSPENDED]
    env.at(12)
    await fire_due_schedules(env.rt)  # refresh: the cancelled run leaves the running list
    s = await get_schedule(sid)
    assert (s.running_run_ids, s.total_runs, s.failed_runs) == ([b], 2, 0)


async def test_allow_all_starts_every_fire(env):
    sid = await _long_schedule(OverlapPolicy.ALLOW_ALL)
    started = []
    for minute in (0, 10, 20):
        env.at(minute)
        started += await fire_due_schedules(env.rt)
    assert len(set(started)) == 3
    assert await statuses(started) == [RunStatus.SUSPENDED] * 3
    assert (await get_schedule(sid)).running_run_ids == started


# --- trigger, backfill, @scheduled_workflow, worker ------------------------------------------
async def test_trigger_starts_a_run_now_without_moving_the_schedule(env):
    s = await create_schedule("sch_report", ScheduleSpec(cron="0 9 * * *"), "t", schedule_id="trig")
    run_id = await trigger_schedule("trig")
    assert (await get_workflow_run(run_id)).get_result() == "report t"
    again = await trigger_schedule("trig")
    assert again != run_id and calls["t"] == 2
    after = await get_schedule("trig")
    assert after.next_run_time == s.next_run_time
    assert (after.total_runs, after.last_run_id, after.last_run_at) == (2, again, T0)
    await pause_schedule("trig")
    assert await trigger_schedule("trig")  # a paused schedule can still be triggered
    with pytest.raises(ScheduleNotFoundError):
        await trigger_schedule("nope")


async def test_backfill_starts_one_run_per_missed_fire_time_once(env):
    await create_schedule("sch_report", ScheduleSpec(cron="0 * * * *"), "b", schedule_id="bf")
    env.at(6 * 60)  # 14:00
    window = (datetime(2030, 1, 1, 9), datetime(2030, 1, 1, 14))
    run_ids = await backfill_schedule("bf", *window)
    assert len(run_ids) == 5 and calls["b"] == 5
    assert run_ids[0] == scheduled_run_id(fire_key("bf", datetime(2030, 1, 1, 9, tzinfo=UTC)))
    assert await statuses(run_ids) == [RunStatus.COMPLETED] * 5
    assert await backfill_schedule("bf", *window) == []  # already there: nothing doubled
    wider = await backfill_schedule("bf", datetime(2030, 1, 1, 8), datetime(2030, 1, 1, 15))
    assert len(wider) == 2 and (await get_schedule("bf")).total_runs == 7
    with pytest.raises(ScheduleError, match="more than"):
        await backfill_schedule("bf", datetime(2000, 1, 1), datetime(2030, 1, 1))


async def test_scheduled_workflow_registers_and_activate_creates_schedules(env):
    @scheduled_workflow(cron="0 9 * * *", name="sch_nightly", overlap_policy="allow_all")
    async def nightly() -> str:
        await sch_note("nightly")
        return "done"

    assert get_workflow("sch_nightly") is not None and nightly.__scheduled__
    assert get_scheduled_workflow("sch_nightly").spec.cron == "0 9 * * *"
    assert await activate_scheduled_workflows() == ["auto_sch_nightly"]
    assert await activate_scheduled_workflows() == []  # idempotent across processes
    s = await get_schedule("auto_sch_nightly")
    assert s.overlap_policy == OverlapPolicy.ALLOW_ALL and s.next_run_time.hour == 9
    env.at(60)
    [run_id] = await fire_due_schedules(env.rt)
    assert (await get_workflow_run(run_id)).get_result() == "done"
    with pytest.raises(ScheduleError, match="must have cron, interval, or calendar"):
        scheduled_workflow()
    with pytest.raises(ScheduleError, match="Invalid timezone"):
        scheduled_workflow(interval="5m", timezone="Nowhere/Land")


async def test_worker_pass_fires_schedules(env):
    await create_schedule("sch_report", ScheduleSpec(interval="1h"), "w")
    stats = await run_once(env.rt)
    assert stats.schedules_fired == 1 and calls["w"] == 1


async def test_sqlite_fires_once_and_persists_counters(tmp_path):
    path = tmp_path / "db.sqlite"
    clk = ManualClock(T0)
    pyworkflow.configure(storage=SQLiteStorageBackend(path), clock=clk)
    await create_schedule("sch_report", ScheduleSpec(cron="0 9 * * *"), "q", schedule_id="sq")
    clk.advance(3600)
    [run_id] = await fire_due_schedules(get_runtime())
    other = LocalRuntime(SQLiteStorageBackend(path), clk)  # a second process on the same file
    assert await fire_due_schedules(other) == []
    reopened = await SQLiteStorageBackend(path).get_schedule("sq")
    assert (reopened.total_runs, reopened.last_run_id) == (1, run_id)
    assert reopened.next_run_time == datetime(2030, 1, 2, 9, tzinfo=UTC)
    assert (await get_workflow_run(run_id)).get_result() == "report q"

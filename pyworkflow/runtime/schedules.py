"""Schedules: start a workflow on a cron, interval or calendar spec (pyworkflow-engine 0.1.9 API).

A schedule is a record in storage; ``pyworkflow worker`` calls ``fire_due_schedules`` on every
pass. Several workers may poll one storage, so firing is exactly-once by construction:

1. *Claim.* The fire decision (start, skip, buffer, cancel others) is written to the schedule with
   a compare-and-set on its ``version``, together with the id of the run it starts — derived from
   ``sched:<id>:<fire time>``, so it is the same whichever worker decides. Only one write from a
   given version lands; the other workers re-read, find the fire time consumed, and do nothing.
2. *Create and drive.* The winner creates the run under that id and drives it. If it dies in
   between, the next pass over the schedule (by any worker) finds the claimed run missing and
   creates it: a claimed fire is never lost either.

A backfill of a fire time that already ran therefore finds that run instead of starting another.
Overlap policies (see ``schedule_math.overlap_action``) look at ``running_run_ids``, refreshed
against the runs' statuses on every pass; the pure decision logic lives in ``schedule_math``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pyworkflow.core.models import (
    CalendarSpec,
    OverlapPolicy,
    RunStatus,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
)
from pyworkflow.core.registry import WorkflowDefinition, get_workflow
from pyworkflow.core.schedule_math import (
    DEFAULT_FIRE_TIME_LIMIT,
    FirePlan,
    consume_fire_time,
    decide_fire,
    fire_key,
    fire_times_between,
    is_due,
    parse_overlap_policy,
    scheduled_run_id,
    validate_spec,
)
from pyworkflow.core.serde import loads
from pyworkflow.core.workflow import encode_arguments, workflow
from pyworkflow.exceptions import (
    ConcurrencyError,
    ScheduleError,
    ScheduleNotFoundError,
    WorkflowError,
    WorkflowNotFoundError,
)
from pyworkflow.runtime.executor import request_cancel
from pyworkflow.runtime.protocol import Runtime
from pyworkflow.storage.base import StorageBackend

logger = logging.getLogger("pyworkflow")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

MAX_CAS_ATTEMPTS = 50
#: A backfill that would start more runs than this is refused rather than silently cut short.
MAX_BACKFILL_RUNS = DEFAULT_FIRE_TIME_LIMIT
#: How many active schedules one worker pass looks at.
FIRE_SCAN_LIMIT = 10_000
#: How many continue-as-new links a refresh follows for one run.
MAX_CHAIN_HOPS = 1_000


# --- @scheduled_workflow ---------------------------------------------------------------------
@dataclass
class ScheduledWorkflowMetadata:
    """What ``@scheduled_workflow`` recorded, for ``activate_scheduled_workflows``."""

    workflow_name: str
    spec: ScheduleSpec
    overlap_policy: OverlapPolicy
    func: Callable[..., Any]


_scheduled_workflows: dict[str, ScheduledWorkflowMetadata] = {}


def scheduled_workflow(
    cron: str | None = None,
    interval: str | None = None,
    calendar: list[CalendarSpec] | None = None,
    timezone: str = "UTC",
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    jitter: str | None = None,
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP,
    name: str | None = None,
    durable: bool | None = None,
    max_duration: str | None = None,
    recover_on_worker_loss: bool | None = None,
    max_recovery_attempts: int | None = None,
) -> Callable[[F], F]:
    """``@workflow`` plus a schedule: ``@scheduled_workflow(cron="0 9 * * *")``.

    The function is registered as an ordinary workflow (it can also be started by hand); its
    schedule is created in storage by ``activate_scheduled_workflows()``, so importing a module
    never writes to storage. The spec is checked here, at import time, so a typo fails fast.
    """
    if callable(cron):
        raise TypeError(
            "@scheduled_workflow needs arguments: write @scheduled_workflow(cron='0 9 * * *') "
            "or @scheduled_workflow(interval='5m')"
        )
    spec = ScheduleSpec(
        cron=cron,
        interval=interval,
        calendar=calendar,
        timezone=timezone,
        start_at=start_at,
        end_at=end_at,
        jitter=jitter,
    )
    validate_spec(spec)
    policy = parse_overlap_policy(overlap_policy)

    def decorate(func: F) -> F:
        wrapper = workflow(
            name=name,
            durable=durable,
            max_duration=max_duration,
            recover_on_worker_loss=recover_on_worker_loss,
            max_recovery_attempts=max_recovery_attempts,
        )(func)
        wrapper.__scheduled__ = True  # type: ignore[attr-defined]
        wrapper.__schedule_spec__ = spec  # type: ignore[attr-defined]
        wrapper.__overlap_policy__ = policy  # type: ignore[attr-defined]
        name_ = wrapper.__workflow_name__  # type: ignore[attr-defined]
        register_scheduled_workflow(name_, spec, policy, wrapper)
        return wrapper

    return decorate


def register_scheduled_workflow(
    workflow_name: str, spec: ScheduleSpec, overlap_policy: OverlapPolicy, func: Callable[..., Any]
) -> None:
    """Add scheduling to an existing workflow (what the decorator does)."""
    validate_spec(spec)
    _scheduled_workflows[workflow_name] = ScheduledWorkflowMetadata(
        workflow_name, spec, parse_overlap_policy(overlap_policy), func
    )


def get_scheduled_workflow(name: str) -> ScheduledWorkflowMetadata | None:
    return _scheduled_workflows.get(name)


def list_scheduled_workflows() -> dict[str, ScheduledWorkflowMetadata]:
    return dict(_scheduled_workflows)


def unregister_scheduled_workflow(workflow_name: str) -> bool:
    return _scheduled_workflows.pop(workflow_name, None) is not None


def clear_scheduled_workflows() -> None:
    """Forget every ``@scheduled_workflow`` registration (tests)."""
    _scheduled_workflows.clear()


# --- helpers -----------------------------------------------------------------------------------
async def require(storage: StorageBackend, schedule_id: str) -> Schedule:
    schedule = await storage.get_schedule(schedule_id)
    if schedule is None:
        raise ScheduleNotFoundError(schedule_id)
    return schedule


def require_live(schedule: Schedule) -> None:
    if schedule.status == ScheduleStatus.DELETED:
        raise ScheduleError(f"Schedule {schedule.schedule_id} is deleted; create a new one")


def _definition(schedule: Schedule) -> WorkflowDefinition:
    defn = get_workflow(schedule.workflow_name)
    if defn is None:
        raise ScheduleError(
            f"Workflow {schedule.workflow_name!r} of schedule {schedule.schedule_id} is not "
            "registered in this process: import the module that defines it"
        )
    return defn


def _arguments(schedule: Schedule) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return tuple(loads(schedule.args) or []), dict(loads(schedule.kwargs) or {})


async def cas(
    storage: StorageBackend,
    schedule_id: str,
    change: Callable[[Schedule], Awaitable[tuple[Schedule | None, T]]],
) -> tuple[Schedule, T]:
    """Read, ``change`` and compare-and-set the schedule until a write lands (or ``change``
    returns no record: nothing to write). ``change`` may run several times; it must have no
    side effects that a rerun would repeat harmfully. Returns the record and ``change``'s
    payload from the attempt that counted."""
    for _ in range(MAX_CAS_ATTEMPTS):
        current = await require(storage, schedule_id)
        new, payload = await change(current)
        if new is None:
            return current, payload
        try:
            return await storage.update_schedule(new, expected_version=current.version), payload
        except ConcurrencyError:
            continue
    raise ScheduleError(
        f"Schedule {schedule_id}: gave up after {MAX_CAS_ATTEMPTS} conflicting writes"
    )


# --- starting runs now --------------------------------------------------------------------
async def trigger_schedule(rt: Runtime, schedule_id: str) -> str:
    """Start a run of the schedule now, whatever its overlap policy and next run time (which
    stays as it is). Works on paused schedules. The run is driven here until it completes or
    waits, like ``start()`` (on AWS: is sent its wake-up). Returns its id."""

    async def claim(current: Schedule) -> tuple[Schedule | None, FirePlan]:
        require_live(current)
        defn = _definition(current)
        plan = await _refresh(rt, current, defn)
        _check_arguments(current, defn)
        plan.claim(f"sched:{current.schedule_id}:trigger:{current.version}")
        return current.model_copy(update=plan.record_updates(current, rt.clock.now())), plan

    stored, plan = await cas(rt.storage, schedule_id, claim)
    for run_id in await _carry_out(rt, stored, plan):
        await rt.advance(run_id, reason="schedule")
    return plan.starts[0][0]


async def backfill_schedule(
    rt: Runtime, schedule_id: str, start_time: datetime, end_time: datetime
) -> list[str]:
    """Start one run per fire time in ``[start_time, end_time)`` that has no run yet (fire times
    that already ran — live or by an earlier backfill — are skipped, so a backfill can be
    repeated safely). Overlap policy does not apply, as in 0.1.9. Naive times are read in the
    schedule's timezone. Runs are driven here one after the other. Returns the new runs' ids.
    """
    schedule = await require(rt.storage, schedule_id)
    require_live(schedule)
    times = fire_times_between(
        schedule.spec, start_time, end_time, MAX_BACKFILL_RUNS + 1, anchor=schedule.created_at
    )
    if len(times) > MAX_BACKFILL_RUNS:
        raise ScheduleError(
            f"Backfill of schedule {schedule_id} would start more than {MAX_BACKFILL_RUNS} runs: "
            "split the window"
        )

    async def claim(current: Schedule) -> tuple[Schedule | None, FirePlan]:
        require_live(current)
        defn = _definition(current)
        plan = await _refresh(rt, current, defn)
        _check_arguments(current, defn)
        for fire_time in times:
            key = fire_key(schedule_id, fire_time)
            run_id = scheduled_run_id(key)
            if run_id not in plan.running and await rt.storage.get_run(run_id) is None:
                plan.claim(key, record_as_last=False)
        if not plan.writes:
            return None, plan
        return current.model_copy(update=plan.record_updates(current, rt.clock.now())), plan

    stored, plan = await cas(rt.storage, schedule_id, claim)
    for run_id in await _carry_out(rt, stored, plan):
        await rt.advance(run_id, reason="schedule")
    logger.info("backfilled schedule %s: %d run(s)", schedule_id, len(plan.starts))
    return [run_id for run_id, _ in plan.starts]


# --- firing ------------------------------------------------------------------------------------
def _check_arguments(schedule: Schedule, defn: WorkflowDefinition) -> None:
    """Raise ``InvalidArgumentsError`` if the stored arguments no longer fit the workflow (its
    signature may have changed since the schedule was created)."""
    args, kwargs = _arguments(schedule)
    encode_arguments(defn, args, kwargs)


async def _refresh(rt: Runtime, schedule: Schedule, defn: WorkflowDefinition) -> FirePlan:
    """Which of the schedule's runs are still going. Ended runs leave ``running_run_ids`` and are
    counted (completed → successful, failed → failed; cancelled counts as neither); a run that
    continued-as-new is replaced by its successor; a claimed run that was never created (its
    claimer died) is created now — creating it is idempotent, so a rerun is harmless."""
    plan = FirePlan(running=[])
    for run_id in schedule.running_run_ids:
        run = await rt.storage.get_run(run_id)
        hops = 0
        while (
            run is not None
            and run.status == RunStatus.CONTINUED_AS_NEW
            and run.continued_to_run_id
            and hops < MAX_CHAIN_HOPS
        ):
            successor = await rt.storage.get_run(run.continued_to_run_id)
            if successor is None:
                break
            run, hops = successor, hops + 1
        if run is None:
            try:
                await _create_run(rt, defn, schedule, run_id, None, lease=False)
            except WorkflowError as exc:
                logger.error(
                    "schedule %s: cannot create claimed run %s: %s",
                    schedule.schedule_id,
                    run_id,
                    exc,
                )
                plan.failed += 1
                continue
            plan.recovered.append(run_id)
            plan.running.append(run_id)
        elif run.status == RunStatus.COMPLETED:
            plan.successful += 1
        elif run.status == RunStatus.FAILED:
            plan.failed += 1
        elif not run.status.is_terminal or run.status == RunStatus.CONTINUED_AS_NEW:
            plan.running.append(run.run_id)
    plan.running = list(dict.fromkeys(plan.running))
    plan.changed = plan.running != schedule.running_run_ids or bool(plan.successful or plan.failed)
    return plan


async def _create_run(
    rt: Runtime,
    defn: WorkflowDefinition,
    schedule: Schedule,
    run_id: str,
    key: str | None,
    *,
    lease: bool = True,
) -> bool:
    """Create a claimed run. False if it exists already (another worker or an earlier attempt
    created it, or recovery did): the claim is satisfied either way."""
    args, kwargs = _arguments(schedule)
    try:
        await rt.create_run(
            defn,
            args,
            kwargs,
            run_id=run_id,
            idempotency_key=key,
            drive_here=lease,
            schedule_id=schedule.schedule_id,
        )
    except ConcurrencyError:
        return False
    return True


async def _carry_out(rt: Runtime, schedule: Schedule, plan: FirePlan) -> list[str]:
    """Do what a plan that won its compare-and-set decided: flag the runs to cancel, create the
    claimed runs. Returns the runs to drive (cancelled ones first, so they end first)."""
    defn = _definition(schedule)
    to_drive: list[str] = []
    for run_id in plan.cancel:
        try:
            await request_cancel(
                rt.storage,
                rt.clock,
                run_id,
                f"schedule {schedule.schedule_id}: overlap policy cancel_other",
            )
        except WorkflowNotFoundError:
            continue
        if rt.is_active(run_id):
            rt.interrupt(run_id)
        else:
            to_drive.append(run_id)
    for run_id, key in plan.starts:
        await _create_run(rt, defn, schedule, run_id, key)
        logger.info("schedule %s: started run %s", schedule.schedule_id, run_id)
    return to_drive + plan.recovered + [run_id for run_id, _ in plan.starts]


async def _fire_one(rt: Runtime, schedule_id: str, now: datetime) -> tuple[list[str], list[str]]:
    """Claim and start what is due on one schedule: (runs started, runs to drive)."""

    async def claim(current: Schedule) -> tuple[Schedule | None, FirePlan | None]:
        if current.status != ScheduleStatus.ACTIVE:
            return None, None
        defn = get_workflow(current.workflow_name)
        if defn is None:
            # Leave the fire time to a worker that has the workflow's module imported.
            logger.warning(
                "schedule %s: workflow %r is not registered in this process; not firing it here",
                schedule_id,
                current.workflow_name,
            )
            return None, None
        plan = await _refresh(rt, current, defn)
        try:
            _check_arguments(current, defn)
        except WorkflowError as exc:
            if is_due(current, now):
                logger.error(
                    "schedule %s: cannot start %s: %s", schedule_id, current.workflow_name, exc
                )
                plan.failed += 1
                consume_fire_time(current, plan, now)
        else:
            decide_fire(current, plan, now)
        if not plan.writes:
            return None, plan
        return current.model_copy(update=plan.record_updates(current, now)), plan

    stored, plan = await cas(rt.storage, schedule_id, claim)
    if plan is None:
        return [], []
    return [run_id for run_id, _ in plan.starts], await _carry_out(rt, stored, plan)


async def fire_schedule(rt: Runtime, schedule_id: str, now: datetime) -> list[str]:
    """Start what is due on one schedule at ``now`` and move its runs along (``rt.advance``):
    a tick of the schedule's EventBridge schedule on AWS. Returns the ids of runs started
    (none when the fire time was already claimed: duplicate ticks are harmless)."""
    started, to_drive = await _fire_one(rt, schedule_id, now)
    for run_id in dict.fromkeys(to_drive):
        await rt.advance(run_id, reason="schedule")
    return started


async def fire_due_schedules(rt: Runtime) -> list[str]:
    """One scheduler pass (called by ``pyworkflow worker``): for every active schedule that is
    due, has buffered fires, or has runs going, refresh its runs, apply its overlap policy,
    claim and start what is due, then drive the started runs (and cancelled ones) until they
    end or wait. Safe to call from several workers at once. Returns the ids of runs started."""
    now = rt.clock.now()
    started: list[str] = []
    to_drive: list[str] = []
    schedules = await rt.storage.list_schedules(status=ScheduleStatus.ACTIVE, limit=FIRE_SCAN_LIMIT)
    for schedule in schedules:
        if not (is_due(schedule, now) or schedule.buffered_count or schedule.running_run_ids):
            continue
        try:
            new, drive = await _fire_one(rt, schedule.schedule_id, now)
        except WorkflowError as exc:
            logger.error("schedule %s: %s", schedule.schedule_id, exc)
            continue
        started += new
        to_drive += drive
    for run_id in dict.fromkeys(to_drive):
        try:
            await rt.advance(run_id, reason="schedule")
        except Exception:  # noqa: BLE001 - one run's trouble must not stop the others
            logger.exception("driving scheduled run %s failed", run_id)
    return started

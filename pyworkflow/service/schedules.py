"""Schedules: create, read, list, change, pause, resume, delete, trigger, backfill — once, for
every entry point. The records live in storage; ``Runtime.schedule_changed`` brings whatever
ticks them in line (nothing embedded, where ``pyworkflow worker`` polls; the EventBridge
schedules on AWS). Firing, and the claim protocol that makes it exactly-once, is
``pyworkflow.runtime.schedules``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pyworkflow.core.clock import new_id
from pyworkflow.core.models import OverlapPolicy, Schedule, ScheduleSpec, ScheduleStatus
from pyworkflow.core.schedule_math import first_fire_time, parse_overlap_policy, validate_spec
from pyworkflow.core.serde import dumps
from pyworkflow.core.workflow import encode_arguments
from pyworkflow.exceptions import ConcurrencyError, ScheduleAlreadyExistsError
from pyworkflow.runtime import schedules as engine
from pyworkflow.runtime.protocol import Runtime
from pyworkflow.service.workflows import resolve_workflow
from pyworkflow.storage.base import StorageBackend

__all__ = [
    "backfill",
    "create",
    "delete",
    "get",
    "list_schedules",
    "pause",
    "resume",
    "trigger",
    "update",
]

logger = logging.getLogger("pyworkflow")


async def create(
    rt: Runtime,
    workflow: str,
    spec: ScheduleSpec,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    *,
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP,
    schedule_id: str | None = None,
) -> Schedule:
    """A schedule that starts ``workflow(*args, **kwargs)`` on ``spec``.

    Everything is checked now rather than at the first fire: the workflow must be registered
    (``UnknownWorkflowError``), the spec valid and tickable by this runtime, the arguments must
    fit the workflow's signature and be storable as JSON. ``ScheduleAlreadyExistsError`` when
    ``schedule_id`` is taken. An interval schedule fires first right away (as in 0.1.9) and then
    every interval after its creation (or after ``spec.start_at``)."""
    defn = resolve_workflow(workflow)
    validate_spec(spec)
    rt.check_schedule_spec(spec)
    policy = parse_overlap_policy(overlap_policy)
    enc_args, enc_kwargs = encode_arguments(defn, tuple(args), dict(kwargs))
    now = rt.clock.now()
    schedule_id = schedule_id or new_id("sched")
    spec = spec.model_copy(deep=True)
    schedule = Schedule(
        schedule_id=schedule_id,
        workflow_name=defn.name,
        spec=spec,
        status=ScheduleStatus.ACTIVE,
        args=dumps(enc_args),
        kwargs=dumps(enc_kwargs),
        overlap_policy=policy,
        created_at=now,
        updated_at=now,
        next_run_time=first_fire_time(spec, now, anchor=now),
    )
    try:
        stored = await rt.storage.create_schedule(schedule)
    except ConcurrencyError:
        raise ScheduleAlreadyExistsError(schedule_id) from None
    logger.info(
        "created schedule %s for %s, next run %s", schedule_id, defn.name, stored.next_run_time
    )
    return await rt.schedule_changed(stored)


async def get(storage: StorageBackend, schedule_id: str) -> Schedule:
    """The schedule, deleted ones too (status ``deleted``); ``ScheduleNotFoundError`` if it never
    existed."""
    return await engine.require(storage, schedule_id)


async def list_schedules(
    storage: StorageBackend,
    *,
    workflow: str | None = None,
    status: ScheduleStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Schedule]:
    """Schedules, newest first, optionally of one workflow and/or in one status."""
    items = await storage.list_schedules(
        workflow_name=workflow, status=status, limit=limit + offset
    )
    return items[offset : offset + limit]


async def _update(
    rt: Runtime, schedule_id: str, change: Callable[[Schedule, datetime], dict[str, Any] | None]
) -> Schedule:
    """Apply a field update computed from the current record and the runtime's clock
    (compare-and-set), then resync what ticks the schedule."""

    async def apply(current: Schedule) -> tuple[Schedule | None, None]:
        now = rt.clock.now()
        updates = change(current, now)
        if updates is None:
            return None, None
        return current.model_copy(update={**updates, "updated_at": now}), None

    stored, _ = await engine.cas(rt.storage, schedule_id, apply)
    return await rt.schedule_changed(stored)


async def update(
    rt: Runtime,
    schedule_id: str,
    *,
    spec: ScheduleSpec | None = None,
    overlap_policy: OverlapPolicy | None = None,
) -> Schedule:
    """Change the spec and/or overlap policy. A new spec recomputes the next run time from now
    (interval fire times stay aligned to the schedule's creation unless ``start_at`` is set)."""
    if spec is not None:
        validate_spec(spec)
        rt.check_schedule_spec(spec)
    policy = parse_overlap_policy(overlap_policy) if overlap_policy is not None else None

    def change(current: Schedule, now: datetime) -> dict[str, Any]:
        engine.require_live(current)
        updates: dict[str, Any] = {}
        if spec is not None:
            updates["spec"] = spec.model_copy(deep=True)
            updates["next_run_time"] = first_fire_time(spec, now, anchor=current.created_at)
        if policy is not None:
            updates["overlap_policy"] = policy
        return updates

    return await _update(rt, schedule_id, change)


async def pause(rt: Runtime, schedule_id: str) -> Schedule:
    """Stop firing until ``resume``. Runs already started are not affected."""

    def change(current: Schedule, now: datetime) -> dict[str, Any] | None:
        engine.require_live(current)
        if current.status == ScheduleStatus.PAUSED:
            return None
        return {"status": ScheduleStatus.PAUSED}

    return await _update(rt, schedule_id, change)


async def resume(rt: Runtime, schedule_id: str) -> Schedule:
    """Fire again, from now on: fire times missed while paused are not made up (see
    ``backfill``). Resuming an active schedule changes nothing."""

    def change(current: Schedule, now: datetime) -> dict[str, Any] | None:
        engine.require_live(current)
        if current.status == ScheduleStatus.ACTIVE:
            return None
        return {
            "status": ScheduleStatus.ACTIVE,
            "next_run_time": first_fire_time(current.spec, now, anchor=current.created_at),
        }

    return await _update(rt, schedule_id, change)


async def delete(rt: Runtime, schedule_id: str) -> Schedule:
    """Soft delete, as 0.1.9: the record stays (status ``deleted``, for audit; returned) and
    never fires again. Runs already started are not affected. ``ScheduleNotFoundError`` if it
    never existed."""

    def change(current: Schedule, now: datetime) -> dict[str, Any] | None:
        if current.status == ScheduleStatus.DELETED:
            return None
        return {"status": ScheduleStatus.DELETED, "next_run_time": None, "buffered_count": 0}

    stored = await _update(rt, schedule_id, change)
    logger.info("deleted schedule %s", schedule_id)
    return stored


async def trigger(rt: Runtime, schedule_id: str) -> str:
    """Start a run of the schedule now, whatever its overlap policy and next run time; works on
    paused schedules. Returns the run's id."""
    return await engine.trigger_schedule(rt, schedule_id)


async def backfill(
    rt: Runtime, schedule_id: str, start_time: datetime, end_time: datetime
) -> list[str]:
    """One run per fire time in ``[start_time, end_time)`` that has none yet; the new ids."""
    return await engine.backfill_schedule(rt, schedule_id, start_time, end_time)

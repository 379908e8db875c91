"""The module-level schedule API (pyworkflow-engine 0.1.9's): ``create_schedule``,
``trigger_schedule``... on the embedded runtime; thin callers of ``pyworkflow.service.schedules``.
``@scheduled_workflow`` and firing live in ``pyworkflow.runtime.schedules``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pyworkflow.core.models import OverlapPolicy, Schedule, ScheduleSpec, ScheduleStatus
from pyworkflow.exceptions import ScheduleError, ScheduleNotFoundError
from pyworkflow.runtime.local import get_runtime
from pyworkflow.runtime.schedules import list_scheduled_workflows
from pyworkflow.service import schedules as service
from pyworkflow.storage.base import StorageBackend

__all__ = [
    "activate_scheduled_workflows",
    "backfill_schedule",
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
    "pause_schedule",
    "resume_schedule",
    "trigger_schedule",
    "update_schedule",
]


def _name(workflow: str | Callable[..., Any]) -> str:
    if isinstance(workflow, str):
        return workflow
    return str(getattr(workflow, "__workflow_name__", getattr(workflow, "__name__", workflow)))


async def create_schedule(
    workflow_name: str | Callable[..., Any],
    spec: ScheduleSpec,
    *args: Any,
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP,
    schedule_id: str | None = None,
    storage: StorageBackend | None = None,
    **kwargs: Any,
) -> Schedule:
    """Create a schedule that starts ``workflow_name(*args, **kwargs)`` on ``spec``;
    ``workflow_name`` may also be the ``@workflow`` function. See ``service.schedules.create``
    for what is checked up front."""
    return await service.create(
        get_runtime(storage),
        _name(workflow_name),
        spec,
        args,
        kwargs,
        overlap_policy=overlap_policy,
        schedule_id=schedule_id,
    )


async def get_schedule(schedule_id: str, storage: StorageBackend | None = None) -> Schedule | None:
    """The schedule, or None. Deleted schedules are still returned (status ``deleted``)."""
    try:
        return await service.get(get_runtime(storage).storage, schedule_id)
    except ScheduleNotFoundError:
        return None


async def list_schedules(
    workflow_name: str | None = None,
    status: ScheduleStatus | None = None,
    limit: int = 100,
    offset: int = 0,
    storage: StorageBackend | None = None,
) -> list[Schedule]:
    """Schedules, newest first, optionally of one workflow and/or in one status."""
    return await service.list_schedules(
        get_runtime(storage).storage,
        workflow=workflow_name,
        status=status,
        limit=limit,
        offset=offset,
    )


async def update_schedule(
    schedule_id: str,
    spec: ScheduleSpec | None = None,
    overlap_policy: OverlapPolicy | None = None,
    storage: StorageBackend | None = None,
) -> Schedule:
    """Change the spec and/or overlap policy."""
    return await service.update(
        get_runtime(storage), schedule_id, spec=spec, overlap_policy=overlap_policy
    )


async def pause_schedule(schedule_id: str, storage: StorageBackend | None = None) -> Schedule:
    """Stop firing until ``resume_schedule``. Runs already started are not affected."""
    return await service.pause(get_runtime(storage), schedule_id)


async def resume_schedule(schedule_id: str, storage: StorageBackend | None = None) -> Schedule:
    """Fire again, from now on (missed fire times are not made up: see ``backfill_schedule``)."""
    return await service.resume(get_runtime(storage), schedule_id)


async def delete_schedule(schedule_id: str, storage: StorageBackend | None = None) -> None:
    """Soft delete, as 0.1.9: the record stays (status ``deleted``) and never fires again."""
    await service.delete(get_runtime(storage), schedule_id)


async def trigger_schedule(schedule_id: str, storage: StorageBackend | None = None) -> str:
    """Start a run of the schedule now and drive it here until it completes or waits."""
    return await service.trigger(get_runtime(storage), schedule_id)


async def backfill_schedule(
    schedule_id: str,
    start_time: datetime,
    end_time: datetime,
    storage: StorageBackend | None = None,
) -> list[str]:
    """One run per missed fire time in ``[start_time, end_time)``; the new runs' ids."""
    return await service.backfill(get_runtime(storage), schedule_id, start_time, end_time)


async def activate_scheduled_workflows(
    storage: StorageBackend | None = None, schedule_id_prefix: str = "auto_"
) -> list[str]:
    """Create a schedule ``<prefix><workflow name>`` for every ``@scheduled_workflow``.

    Schedules that already exist (in any status, deleted included, as in 0.1.9) are left alone,
    so every process may call this at startup. Returns the ids created by this call.
    """
    rt = get_runtime(storage)
    created: list[str] = []
    for name, meta in list_scheduled_workflows().items():
        schedule_id = f"{schedule_id_prefix}{name}"
        if await rt.storage.get_schedule(schedule_id) is not None:
            continue
        try:
            await service.create(
                rt,
                name,
                meta.spec,
                (),
                {},
                overlap_policy=meta.overlap_policy,
                schedule_id=schedule_id,
            )
        except ScheduleError:
            if await rt.storage.get_schedule(schedule_id) is None:
                raise
            continue  # another process activated it between our read and our write
        created.append(schedule_id)
    return created

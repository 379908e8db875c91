"""What the embedded and the AWS-direct transports share: both read and write the store
themselves, so everything except starting and waking runs is the same storage call.

The workflows named in requests must be registered in this process (import their module):
starting a run checks its arguments against the function's signature, as the API does.
"""

from __future__ import annotations

import inspect
from typing import Any

from pyworkflow.client.errors import UnknownWorkflowError
from pyworkflow.client.models import HookResumed, WorkflowInfo
from pyworkflow.core.events import Event
from pyworkflow.core.models import (
    OverlapPolicy,
    Page,
    RunStatus,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
    WorkflowRun,
)
from pyworkflow.core.registry import WorkflowDefinition, get_workflow, list_workflows
from pyworkflow.exceptions import ScheduleNotFoundError, WorkflowNotFoundError
from pyworkflow.runtime import schedules
from pyworkflow.storage.base import StorageBackend


def resolve_workflow(name: str) -> WorkflowDefinition:
    """The registered workflow ``name``, or ``UnknownWorkflowError`` (what the API answers
    too), so a missing import is not mistaken for a missing run."""
    defn = get_workflow(name)
    if defn is None:
        known = ", ".join(sorted(list_workflows())) or "(none)"
        raise UnknownWorkflowError(
            f"Workflow {name!r} is not registered. Available: {known}. Import the module that "
            "defines it (or set PYWORKFLOW_MODULE)")
    return defn


def workflow_info(defn: WorkflowDefinition) -> WorkflowInfo:
    """As ``GET /workflows`` describes one."""
    doc = inspect.getdoc(defn.func)
    return WorkflowInfo(
        name=defn.name, max_duration=defn.max_duration, durable=defn.durable,
        tags=list(defn.tags), version=defn.version,
        signature=str(defn.signature) if defn.signature is not None else None,
        description=doc.strip().splitlines()[0] if doc and doc.strip() else None)


def hook_resumed(result: Any) -> HookResumed:
    """``runtime.api.ResumeResult`` (a dataclass) as the client's model."""
    return HookResumed(run_id=result.run_id, status=result.status, hook_id=result.hook_id)


class StoredTransport:
    """Reads, listings and schedule records straight from a ``StorageBackend``."""

    @property
    def storage(self) -> StorageBackend:
        raise NotImplementedError

    # --- runs --------------------------------------------------------------------------------
    async def get_run(self, run_id: str) -> WorkflowRun:
        run = await self.storage.get_run(run_id)
        if run is None:
            raise WorkflowNotFoundError(run_id)
        return run

    async def list_runs(self, *, status: RunStatus | None = None, workflow: str | None = None,
                        limit: int = 100, cursor: str | None = None) -> Page:
        return await self.storage.list_runs(status=status, workflow_name=workflow, limit=limit,
                                            cursor=cursor)

    async def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        found = await self.storage.get_events(run_id, after_sequence=after)
        if not found:  # every run has its workflow.started event: no events, no run
            await self.get_run(run_id)
        return found

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        return await self.storage.get_workflow_chain(run_id)

    async def list_workflows(self) -> list[WorkflowInfo]:
        return [workflow_info(d) for _, d in sorted(list_workflows().items())]

    # --- schedules (records only; firing belongs to the worker) ---------------------------------
    async def create_schedule(self, workflow: str, spec: ScheduleSpec, args: list[Any],
                              kwargs: dict[str, Any], *, overlap_policy: OverlapPolicy,
                              schedule_id: str | None) -> Schedule:
        resolve_workflow(workflow)  # the same error as a start, rather than a ScheduleError
        return await schedules.create_schedule(
            workflow, spec, *args, overlap_policy=overlap_policy, schedule_id=schedule_id,
            storage=self.storage, **kwargs)

    async def get_schedule(self, schedule_id: str) -> Schedule:
        schedule = await schedules.get_schedule(schedule_id, storage=self.storage)
        if schedule is None:
            raise ScheduleNotFoundError(schedule_id)
        return schedule

    async def list_schedules(self, *, workflow: str | None = None,
                             status: ScheduleStatus | None = None,
                             limit: int = 100) -> list[Schedule]:
        return await schedules.list_schedules(workflow_name=workflow, status=status,
                                              limit=limit, storage=self.storage)

    async def update_schedule(self, schedule_id: str, *, spec: ScheduleSpec | None = None,
                              overlap_policy: OverlapPolicy | None = None) -> Schedule:
        return await schedules.update_schedule(schedule_id, spec=spec,
                                               overlap_policy=overlap_policy,
                                               storage=self.storage)

    async def delete_schedule(self, schedule_id: str) -> None:
        await schedules.delete_schedule(schedule_id, storage=self.storage)

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await schedules.pause_schedule(schedule_id, storage=self.storage)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await schedules.resume_schedule(schedule_id, storage=self.storage)

    async def health(self) -> dict[str, Any]:
        return {"status": "ok"}

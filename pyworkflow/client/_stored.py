"""What the embedded and the AWS-direct transports share: both run the operations of
``pyworkflow.service`` in this process, over a runtime of their own (embedded: runs are driven
here; AWS: runs are written to the stack's table and woken through its queue). A transport of
this kind only picks the runtime and translates the answers into the client's models.

The workflows named in requests must be registered in this process (import their module):
starting a run checks its arguments against the function's signature, as the API does.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

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
from pyworkflow.runtime.protocol import Runtime
from pyworkflow.service import hooks, runs, schedules, workflows
from pyworkflow.service.workflows import resolve_workflow
from pyworkflow.storage.base import StorageBackend

__all__ = ["ServiceTransport", "hook_resumed", "resolve_workflow"]


def hook_resumed(result: hooks.ResumeResult) -> HookResumed:
    """The service's ``ResumeResult`` as the client's model."""
    return HookResumed(run_id=result.run_id, status=result.status, hook_id=result.hook_id)


R = TypeVar("R", bound=Runtime)


class ServiceTransport(Generic[R]):
    """Every operation through ``pyworkflow.service``, on ``runtime``."""

    @property
    def runtime(self) -> R:
        raise NotImplementedError

    @property
    def storage(self) -> StorageBackend:
        return self.runtime.storage

    # --- runs --------------------------------------------------------------------------------
    async def start(
        self,
        workflow: str,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> str:
        rt = self.runtime
        started = await runs.start(
            rt, resolve_workflow(workflow), args, kwargs, idempotency_key=idempotency_key
        )
        # The executor keeps a failed run's exception for pyworkflow.start() to raise; a
        # client reports failures through the run record instead, as the API does.
        rt.executor.failures.pop(started.run.run_id, None)
        return started.run_id

    async def get_run(self, run_id: str) -> WorkflowRun:
        return await runs.get_run(self.storage, run_id)

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        return await runs.list_runs(
            self.storage, status=status, workflow=workflow, limit=limit, cursor=cursor
        )

    async def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        return await runs.events(self.storage, run_id, after=after)

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        return await runs.chain(self.storage, run_id)

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        return await runs.cancel(self.runtime, run_id, reason)

    # --- hooks -------------------------------------------------------------------------------
    async def resume_hook(self, token: str, payload: Any) -> HookResumed:
        return hook_resumed(await hooks.resume_hook(self.runtime, token, payload))

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> HookResumed:
        return hook_resumed(await hooks.resume_hook_by_name(self.runtime, run_id, name, payload))

    async def fail_hook(self, token: str, error_type: str, message: str) -> HookResumed:
        return hook_resumed(await hooks.fail_hook(self.runtime, token, error_type, message))

    async def fail_hook_by_name(
        self, run_id: str, name: str, error_type: str, message: str
    ) -> HookResumed:
        return hook_resumed(
            await hooks.fail_hook_by_name(self.runtime, run_id, name, error_type, message)
        )

    async def heartbeat_hook(self, token: str) -> HookResumed:
        return hook_resumed(await hooks.heartbeat_hook(self.runtime, token))

    # --- workflows ---------------------------------------------------------------------------
    async def list_workflows(self) -> list[WorkflowInfo]:
        return [info for info in workflows.list_workflow_infos()]

    # --- schedules ---------------------------------------------------------------------------
    async def create_schedule(
        self,
        workflow: str,
        spec: ScheduleSpec,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        overlap_policy: OverlapPolicy,
        schedule_id: str | None,
    ) -> Schedule:
        return await schedules.create(
            self.runtime,
            workflow,
            spec,
            args,
            kwargs,
            overlap_policy=overlap_policy,
            schedule_id=schedule_id,
        )

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await schedules.get(self.storage, schedule_id)

    async def list_schedules(
        self, *, workflow: str | None = None, status: ScheduleStatus | None = None, limit: int = 100
    ) -> list[Schedule]:
        return await schedules.list_schedules(
            self.storage, workflow=workflow, status=status, limit=limit
        )

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        spec: ScheduleSpec | None = None,
        overlap_policy: OverlapPolicy | None = None,
    ) -> Schedule:
        return await schedules.update(
            self.runtime, schedule_id, spec=spec, overlap_policy=overlap_policy
        )

    async def delete_schedule(self, schedule_id: str) -> None:
        await schedules.delete(self.runtime, schedule_id)

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await schedules.pause(self.runtime, schedule_id)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await schedules.resume(self.runtime, schedule_id)

    async def trigger_schedule(self, schedule_id: str) -> str:
        return await schedules.trigger(self.runtime, schedule_id)

    async def health(self) -> dict[str, Any]:
        return {"status": "ok"}

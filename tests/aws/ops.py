"""The service's operations on an ``AwsRuntime``, in the shape the AWS tests call them
(``ops.start(wf.sleeper, key, 2)``): what the API and the AWS-direct client do, minus the
wire. Everything else is the runtime's own (``ops.dispatcher``, ``ops.executor``...)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pyworkflow.core.models import Schedule, ScheduleSpec
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.service import hooks, runs, schedules


def _name(workflow: str | Callable[..., Any]) -> str:
    if isinstance(workflow, str):
        return workflow
    defn = get_workflow_by_func(workflow)
    assert defn is not None, f"{workflow!r} is not a workflow"
    return defn.name


class ScheduleOps:
    def __init__(self, rt: AwsRuntime) -> None:
        self.rt = rt

    def __getattr__(self, name: str) -> Any:  # fire, fire_due, sync, requests
        return getattr(self.rt.schedules, name)

    async def create(
        self,
        workflow: str | Callable[..., Any],
        spec: ScheduleSpec,
        *args: Any,
        overlap_policy: Any = "skip",
        schedule_id: str | None = None,
        **kwargs: Any,
    ) -> Schedule:
        return await schedules.create(
            self.rt,
            _name(workflow),
            spec,
            args,
            kwargs,
            overlap_policy=overlap_policy,
            schedule_id=schedule_id,
        )

    async def update(self, schedule_id: str, **changes: Any) -> Schedule:
        return await schedules.update(self.rt, schedule_id, **changes)

    async def pause(self, schedule_id: str) -> Schedule:
        return await schedules.pause(self.rt, schedule_id)

    async def resume(self, schedule_id: str) -> Schedule:
        return await schedules.resume(self.rt, schedule_id)

    async def delete(self, schedule_id: str) -> Schedule:
        return await schedules.delete(self.rt, schedule_id)

    async def trigger(self, schedule_id: str) -> str:
        return await schedules.trigger(self.rt, schedule_id)

    async def backfill(self, schedule_id: str, start: datetime, end: datetime) -> list[str]:
        return await schedules.backfill(self.rt, schedule_id, start, end)


class AwsOps:
    """An ``AwsRuntime`` plus the operations a caller of the stack performs."""

    def __init__(self, rt: AwsRuntime) -> None:
        self.rt = rt
        self.schedules = ScheduleOps(rt)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rt, name)

    async def start(
        self,
        workflow: Callable[..., Any],
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> str:
        defn = get_workflow_by_func(workflow)
        assert defn is not None, f"{workflow!r} is not a workflow"
        started = await runs.start(self.rt, defn, args, kwargs, idempotency_key=idempotency_key)
        return started.run_id

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        return await runs.cancel(self.rt, run_id, reason)

    async def resume_hook(self, token: str, payload: Any) -> hooks.ResumeResult:
        return await hooks.resume_hook(self.rt, token, payload)

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> hooks.ResumeResult:
        return await hooks.resume_hook_by_name(self.rt, run_id, name, payload)

    async def heartbeat_hook(self, token: str) -> hooks.ResumeResult:
        return await hooks.heartbeat_hook(self.rt, token)

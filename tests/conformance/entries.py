"""The entry points the conformance cases run through, behind one small interface (the
``Client``'s method names). Five of them:

- ``module``: pyworkflow-engine's module-level API (``pyworkflow.start``...), embedded;
- ``embedded``: ``Client.embedded()``;
- ``aws``: ``Client.aws(...)`` — the AWS-direct SDK, writing to the stack's store and queue;
- ``http``: ``Client.http(...)`` against ``pyworkflow/handlers/api.py`` served over real HTTP;
- ``lambda``: ``Client.lambda_(...)``, the direct Lambda invoke of the same handler.

The three remote ones share one local stack (moto's SQS and Scheduler, the worker Lambda's
handler pumped from the queue); ``settle`` makes runs progress as far as they can.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pyworkflow
from pyworkflow.client import Client
from pyworkflow.core.events import Event
from pyworkflow.core.models import Schedule, ScheduleSpec, WorkflowRun
from pyworkflow.exceptions import WorkflowNotFoundError
from pyworkflow.runtime.local import get_runtime


class ModuleEntry:
    """The module-level API in the Client's shape. Where pyworkflow-engine's functions answer
    "not found" with None or ``[]`` instead of raising, that contract is kept and mapped back
    here (the only translation this adapter does)."""

    name = "module"
    has_listing = False  # pyworkflow-engine's module API lists no runs

    async def start(
        self,
        workflow: Callable[..., Any],
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> str:
        return await pyworkflow.start(workflow, *args, idempotency_key=idempotency_key, **kwargs)

    async def get_run(self, run_id: str) -> WorkflowRun:
        run = await pyworkflow.get_workflow_run(run_id)
        if run is None:
            raise WorkflowNotFoundError(run_id)
        return run

    async def events(self, run_id: str) -> list[Event]:
        found = await pyworkflow.get_workflow_events(run_id)
        if not found:
            raise WorkflowNotFoundError(run_id)
        return found

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        found = await pyworkflow.get_workflow_chain(run_id)  # [] when unknown, as 0.1.9
        if not found:
            raise WorkflowNotFoundError(run_id)
        return found

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        return await pyworkflow.cancel_workflow(run_id, reason)

    async def resume_hook(self, token: str, payload: Any) -> Any:
        return await pyworkflow.resume_hook(token, payload)

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> Any:
        from pyworkflow.api import resume_hook_by_name

        return await resume_hook_by_name(run_id, name, payload)

    async def fail_hook(self, token: str, error: Any, message: str | None = None) -> Any:
        return await pyworkflow.fail_hook(token, error, message)

    async def fail_hook_by_name(
        self, run_id: str, name: str, error: Any, message: str | None = None
    ) -> Any:
        from pyworkflow.api import fail_hook_by_name

        return await fail_hook_by_name(run_id, name, error, message)

    async def heartbeat_hook(self, token: str) -> Any:
        return await pyworkflow.heartbeat_hook(token)

    async def list_runs(self, **_: Any) -> Any:
        raise AssertionError("not part of the module API")

    async def create_schedule(
        self,
        workflow: Callable[..., Any],
        spec: ScheduleSpec,
        *args: Any,
        schedule_id: str | None = None,
    ) -> Schedule:
        return await pyworkflow.create_schedule(workflow, spec, *args, schedule_id=schedule_id)

    async def get_schedule(self, schedule_id: str) -> Schedule:
        from pyworkflow.exceptions import ScheduleNotFoundError

        found = await pyworkflow.get_schedule(schedule_id)
        if found is None:
            raise ScheduleNotFoundError(schedule_id)
        return found

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await pyworkflow.pause_schedule(schedule_id)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await pyworkflow.resume_schedule(schedule_id)

    async def update_schedule(self, schedule_id: str, *, spec: ScheduleSpec) -> Schedule:
        return await pyworkflow.update_schedule(schedule_id, spec=spec)

    async def trigger_schedule(self, schedule_id: str) -> str:
        return await pyworkflow.trigger_schedule(schedule_id)

    async def delete_schedule(self, schedule_id: str) -> None:
        await pyworkflow.delete_schedule(schedule_id)

    async def settle(self) -> None:
        await get_runtime().drain(timeout=5)


class ClientEntry:
    """A ``Client`` over one transport, and how its runs are made to progress."""

    has_listing = True

    def __init__(self, name: str, client: Client, settle: Callable[[], Awaitable[Any]]) -> None:
        self.name = name
        self._client = client
        self._settle = settle

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._client, attr)

    async def settle(self) -> None:
        await self._settle()

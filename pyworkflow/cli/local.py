"""The CLI on local storage: the configured SQLite file (``--db``) and this process's embedded
runtime, which drives the runs a command starts, resumes or cancels."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyworkflow.cli.backend import describe
from pyworkflow.client._stored import hook_resumed
from pyworkflow.client.models import HookResumed
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
from pyworkflow.core.registry import list_workflows
from pyworkflow.service import hooks, runs, schedules

if TYPE_CHECKING:
    from pyworkflow.cli.config import CliState
    from pyworkflow.runtime.local import LocalRuntime
    from pyworkflow.storage.base import StorageBackend


class LocalBackend:
    """The configured storage (``--db``) and this process's runtime, looked up on each call so
    a ``pyworkflow.configure()`` made after the CLI state was built is honoured."""

    carries_on = "under 'pyworkflow worker'"
    poll_interval = 0.1
    # Keyword names pyworkflow.start() / create_schedule() take for themselves.
    start_reserved = frozenset({"runtime", "durable", "storage", "idempotency_key"})
    schedule_reserved = frozenset({"overlap_policy", "schedule_id", "storage"})

    def __init__(self, label: str, state: CliState) -> None:
        self.label = label
        self._cli = state  # the modules to import, the workflows they define

    @staticmethod
    def _runtime() -> LocalRuntime:
        from pyworkflow.runtime.local import get_runtime

        return get_runtime()

    @staticmethod
    def _storage() -> StorageBackend:
        from pyworkflow.config import get_storage

        return get_storage()

    def _state(self) -> CliState:
        return self._cli

    # --- runs --------------------------------------------------------------------------------
    async def get_run(self, run_id: str) -> WorkflowRun:
        return await runs.get_run(self._storage(), run_id)

    async def list_runs(
        self, *, status: RunStatus | None, workflow: str | None, limit: int, cursor: str | None
    ) -> Page:
        return await runs.list_runs(
            self._storage(), status=status, workflow=workflow, limit=limit, cursor=cursor
        )

    async def list_children(
        self, run_id: str, *, status: RunStatus | None, limit: int
    ) -> list[WorkflowRun]:
        return await runs.list_children(self._storage(), run_id, status=status, limit=limit)

    async def events(self, run_id: str, after: int = 0) -> list[Event]:
        return await runs.events(self._storage(), run_id, after=after)

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        return await runs.chain(self._storage(), run_id)

    def require_workflow(self, name: str, run_id: str | None = None) -> None:
        self._state().workflow(name, run_id=run_id)

    async def start(
        self, name: str, args: list[Any], kwargs: dict[str, Any], idempotency_key: str | None
    ) -> str:
        rt = self._runtime()
        started = await runs.start(
            rt, self._state().workflow(name), args, kwargs, idempotency_key=idempotency_key
        )
        # A failed run is reported from its record (as over the API), not raised.
        rt.executor.failures.pop(started.run.run_id, None)
        return started.run_id

    async def nudge(self, run: WorkflowRun) -> bool:
        from pyworkflow.storage.memory import is_due

        rt = self._runtime()
        if rt.is_active(run.run_id) or not is_due(run, rt.clock.now()):
            return False
        await rt.drive(run.run_id)
        return True

    async def settle(self) -> None:
        await self._runtime().drain(timeout=5.0)

    async def cancel(self, run_id: str, reason: str | None, *, wait: bool, timeout: float) -> bool:
        rt = self._runtime()
        cancelled = await runs.cancel(rt, run_id, reason)
        if cancelled and wait:
            with contextlib.suppress(TimeoutError):
                await runs.wait_for_run(rt.storage, run_id, timeout=timeout)
        await self.settle()
        return cancelled

    # --- hooks -------------------------------------------------------------------------------
    async def hook_run(self, token: str) -> WorkflowRun | None:
        return await hooks.hook_run(self._storage(), token)

    async def pending_hooks(self, run_id: str) -> list[str]:
        return await hooks.pending_hooks(self._storage(), run_id)

    async def resume_hook(self, token: str, payload: Any) -> HookResumed:
        return hook_resumed(await hooks.resume_hook(self._runtime(), token, payload))

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> HookResumed:
        return hook_resumed(await hooks.resume_hook_by_name(self._runtime(), run_id, name, payload))

    async def fail_hook(self, token: str, error_type: str, message: str) -> HookResumed:
        return hook_resumed(await hooks.fail_hook(self._runtime(), token, error_type, message))

    async def fail_hook_by_name(
        self, run_id: str, name: str, error_type: str, message: str
    ) -> HookResumed:
        rt = self._runtime()
        return hook_resumed(await hooks.fail_hook_by_name(rt, run_id, name, error_type, message))

    async def heartbeat_hook(self, token: str) -> HookResumed:
        return hook_resumed(await hooks.heartbeat_hook(self._runtime(), token))

    # --- workflows ---------------------------------------------------------------------------
    async def workflows(self) -> list[dict[str, Any]]:
        self._state().load_modules()
        return [describe(d) for d in sorted(list_workflows().values(), key=lambda d: d.name)]

    async def workflow(self, name: str) -> dict[str, Any]:
        return describe(self._state().workflow(name))

    # --- schedules ---------------------------------------------------------------------------
    async def list_schedules(
        self, *, workflow: str | None, status: ScheduleStatus | None, limit: int
    ) -> list[Schedule]:
        return await schedules.list_schedules(
            self._storage(), workflow=workflow, status=status, limit=limit
        )

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await schedules.get(self._storage(), schedule_id)

    async def create_schedule(
        self,
        name: str,
        spec: ScheduleSpec,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        overlap_policy: OverlapPolicy,
        schedule_id: str | None,
    ) -> Schedule:
        self._state().workflow(name)  # the CLI's error, naming the modules it imported
        return await schedules.create(
            self._runtime(),
            name,
            spec,
            args,
            kwargs,
            overlap_policy=overlap_policy,
            schedule_id=schedule_id,
        )

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await schedules.pause(self._runtime(), schedule_id)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await schedules.resume(self._runtime(), schedule_id)

    async def delete_schedule(self, schedule_id: str) -> None:
        await schedules.delete(self._runtime(), schedule_id)

    async def trigger_schedule(self, schedule_id: str) -> str:
        return await schedules.trigger(self._runtime(), schedule_id)

    async def backfill_schedule(
        self, schedule_id: str, start: datetime, end: datetime
    ) -> list[str]:
        return await schedules.backfill(self._runtime(), schedule_id, start, end)

    async def aclose(self) -> None:
        """Stop background drives and close the storage (the CLI's process owns both)."""
        await close_local()


async def close_local() -> None:
    from pyworkflow.config import get_config

    storage = get_config().storage
    if storage is not None:
        from pyworkflow.runtime.local import get_runtime

        await get_runtime(storage).close()
        await storage.close()

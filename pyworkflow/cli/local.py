"""The CLI on local storage: the configured SQLite file (``--db``) and this process's embedded
runtime, which drives the runs a command starts, resumes or cancels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyworkflow.cli.backend import describe
from pyworkflow.client.models import HookResumed
from pyworkflow.core.events import Event
from pyworkflow.core.models import (
    HookStatus,
    OverlapPolicy,
    Page,
    RunStatus,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
    WorkflowRun,
)
from pyworkflow.core.registry import list_workflows
from pyworkflow.exceptions import ScheduleNotFoundError, WorkflowNotFoundError

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

    def __init__(self, label: str) -> None:
        self.label = label

    @staticmethod
    def _runtime() -> LocalRuntime:
        from pyworkflow.runtime.local import get_runtime

        return get_runtime()

    @staticmethod
    def _storage() -> StorageBackend:
        from pyworkflow.config import get_storage

        return get_storage()

    @staticmethod
    def _state() -> CliState:
        from pyworkflow.cli.config import state

        return state()

    # --- runs --------------------------------------------------------------------------------
    async def get_run(self, run_id: str) -> WorkflowRun:
        run = await self._storage().get_run(run_id)
        if run is None:
            raise WorkflowNotFoundError(run_id)
        return run

    async def list_runs(self, *, status: RunStatus | None, workflow: str | None, limit: int,
                        cursor: str | None) -> Page:
        return await self._storage().list_runs(status=status, workflow_name=workflow,
                                               limit=limit, cursor=cursor)

    async def list_children(self, run_id: str, *, status: RunStatus | None,
                            limit: int) -> list[WorkflowRun]:
        await self.get_run(run_id)
        page = await self._storage().list_runs(parent_run_id=run_id, status=status,
                                               limit=limit)
        return list(page.items)

    async def events(self, run_id: str, after: int = 0) -> list[Event]:
        return await self._storage().get_events(run_id, after_sequence=after)

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        import pyworkflow

        return await pyworkflow.get_workflow_chain(run_id)

    def require_workflow(self, name: str, run_id: str | None = None) -> None:
        self._state().workflow(name, run_id=run_id)

    async def start(self, name: str, args: list[Any], kwargs: dict[str, Any],
                    idempotency_key: str | None) -> str:
        import pyworkflow

        defn = self._state().workflow(name)
        rt = self._runtime()
        started_at = rt.clock.now()
        try:
            return await pyworkflow.start(defn.wrapper, *args, idempotency_key=idempotency_key,
                                          **kwargs)
        except Exception as exc:
            # start() re-raises a failed run's exception (as 0.1.9): report the run instead.
            found = await self._failed_run(name, started_at, exc)
            if found is None:
                raise
            return found

    async def _failed_run(self, name: str, since: Any, exc: Exception) -> str | None:
        """The run this process just started that failed with ``exc`` (None: no run was
        created)."""
        from pyworkflow.cli.watch import follow_chain

        page = await self._storage().list_runs(workflow_name=name, limit=20)
        for run in reversed(page.items):  # oldest first: ours started right after ``since``
            if run.created_at < since or run.parent_run_id or run.continued_from_run_id:
                continue
            final = await follow_chain(self, run)
            if final.status == RunStatus.FAILED and final.error_type == type(exc).__name__ \
                    and final.error == str(exc):
                return run.run_id
        return None

    async def nudge(self, run: WorkflowRun) -> bool:
        from pyworkflow.storage.memory import is_due

        rt = self._runtime()
        if rt.is_active(run.run_id) or not is_due(run, rt.clock.now()):
            return False
        await rt.drive(run.run_id)
        return True

    async def settle(self) -> None:
        await self._runtime().drain(timeout=5.0)

    async def cancel(self, run_id: str, reason: str | None, *, wait: bool,
                     timeout: float) -> bool:
        import pyworkflow

        try:
            cancelled = await pyworkflow.cancel_workflow(run_id, reason=reason, wait=wait,
                                                         timeout=timeout if wait else None)
        except TimeoutError:
            cancelled = True
        await self.settle()
        return cancelled

    # --- hooks -------------------------------------------------------------------------------
    async def hook_run(self, token: str) -> WorkflowRun | None:
        from pyworkflow.core.hook import hash_token
        from pyworkflow.runtime.api import MAX_TOKEN_LENGTH

        if len(token) > MAX_TOKEN_LENGTH:
            return None
        hook = await self._storage().get_hook(hash_token(token))
        return None if hook is None else await self.get_run(hook.run_id)

    async def pending_hooks(self, run_id: str) -> list[str]:
        pending = await self._storage().list_hooks(run_id=run_id, status=HookStatus.PENDING)
        return sorted({h.name for h in pending})

    async def resume_hook(self, token: str, payload: Any) -> HookResumed:
        from pyworkflow.client._stored import hook_resumed
        from pyworkflow.runtime.api import resume_hook

        return hook_resumed(await resume_hook(token, payload))

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any
                                  ) -> HookResumed:
        from pyworkflow.client._stored import hook_resumed
        from pyworkflow.runtime.api import resume_hook_by_name

        return hook_resumed(await resume_hook_by_name(run_id, name, payload))

    # --- workflows ---------------------------------------------------------------------------
    async def workflows(self) -> list[dict[str, Any]]:
        self._state().load_modules()
        return [describe(d) for d in sorted(list_workflows().values(), key=lambda d: d.name)]

    async def workflow(self, name: str) -> dict[str, Any]:
        return describe(self._state().workflow(name))

    # --- schedules ---------------------------------------------------------------------------
    @staticmethod
    def _schedules() -> Any:
        from pyworkflow.runtime import schedules

        return schedules

    async def list_schedules(self, *, workflow: str | None, status: ScheduleStatus | None,
                             limit: int) -> list[Schedule]:
        return list(await self._schedules().list_schedules(workflow_name=workflow,
                                                           status=status, limit=limit))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        schedule = await self._schedules().get_schedule(schedule_id)
        if schedule is None:
            raise ScheduleNotFoundError(schedule_id)
        return schedule

    async def create_schedule(self, name: str, spec: ScheduleSpec, args: list[Any],
                              kwargs: dict[str, Any], *, overlap_policy: OverlapPolicy,
                              schedule_id: str | None) -> Schedule:
        return await self._schedules().create_schedule(
            name, spec, *args, overlap_policy=overlap_policy, schedule_id=schedule_id, **kwargs)

    async def _change(self, schedule_id: str, func_name: str) -> Schedule:
        changed = await getattr(self._schedules(), func_name)(schedule_id)
        return changed if isinstance(changed, Schedule) else await self.get_schedule(schedule_id)

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self._change(schedule_id, "pause_schedule")

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self._change(schedule_id, "resume_schedule")

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._schedules().delete_schedule(schedule_id)

    async def trigger_schedule(self, schedule_id: str) -> str:
        return str(await self._schedules().trigger_schedule(schedule_id))

    async def backfill_schedule(self, schedule_id: str, start: Any, end: Any) -> list[str]:
        return list(await self._schedules().backfill_schedule(schedule_id, start, end))

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

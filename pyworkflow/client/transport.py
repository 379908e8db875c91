"""The one interface every client transport implements.

``Client`` adds conveniences (accepting a workflow function for its name, ``wait``) on top; a
transport only moves one request and one answer. Each method raises pyworkflow's own exceptions
(``WorkflowNotFoundError``, ``HookExpiredError``...), whichever side of the wire raised them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class Transport(Protocol):
    """Runs, hooks, workflows and schedules, embedded or remote."""

    # --- runs --------------------------------------------------------------------------------
    async def start(
        self,
        workflow: str,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Start a run of the workflow named ``workflow``; its id (an existing run's id when
        ``idempotency_key`` was used before)."""
        ...

    async def get_run(self, run_id: str) -> WorkflowRun:
        """The run; ``WorkflowNotFoundError`` if there is none."""
        ...

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Runs newest first; ``Page.items`` are ``WorkflowRun``."""
        ...

    async def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        """The history, in order; only events with a sequence above ``after``."""
        ...

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        """The continue-as-new chain ``run_id`` belongs to, oldest first."""
        ...

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        """False when the run had already ended."""
        ...

    # --- hooks -------------------------------------------------------------------------------
    async def resume_hook(self, token: str, payload: Any) -> HookResumed: ...

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> HookResumed: ...

    async def fail_hook(self, token: str, error_type: str, message: str) -> HookResumed: ...

    async def fail_hook_by_name(
        self, run_id: str, name: str, error_type: str, message: str
    ) -> HookResumed: ...

    async def heartbeat_hook(self, token: str) -> HookResumed: ...

    # --- workflows and schedules -------------------------------------------------------------
    async def list_workflows(self) -> list[WorkflowInfo]: ...

    async def create_schedule(
        self,
        workflow: str,
        spec: ScheduleSpec,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        overlap_policy: OverlapPolicy,
        schedule_id: str | None,
    ) -> Schedule: ...

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule (deleted ones too); ``ScheduleNotFoundError`` if it never existed."""
        ...

    async def list_schedules(
        self, *, workflow: str | None = None, status: ScheduleStatus | None = None, limit: int = 100
    ) -> list[Schedule]: ...

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        spec: ScheduleSpec | None = None,
        overlap_policy: OverlapPolicy | None = None,
    ) -> Schedule: ...

    async def delete_schedule(self, schedule_id: str) -> None: ...

    async def pause_schedule(self, schedule_id: str) -> Schedule: ...

    async def resume_schedule(self, schedule_id: str) -> Schedule: ...

    async def trigger_schedule(self, schedule_id: str) -> str:
        """Start a run of the schedule now; its id."""
        ...

    # --- lifecycle ---------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]: ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...

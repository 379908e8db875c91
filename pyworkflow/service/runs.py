"""Runs: start (with idempotency), read, list, cancel — once, for every entry point.

Each operation takes a ``Runtime`` (embedded or AWS) and checked arguments, and raises
pyworkflow's own exceptions; the module API, the clients, the CLI and the Lambda handlers only
translate to and from them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pyworkflow.core.events import Event
from pyworkflow.core.models import Page, RunStatus, WorkflowRun
from pyworkflow.core.registry import WorkflowDefinition
from pyworkflow.exceptions import (
    ConcurrencyError,
    InvalidArgumentsError,
    InvalidCursorError,
    WorkflowNotFoundError,
)
from pyworkflow.runtime.journal import request_cancel
from pyworkflow.runtime.protocol import Runtime
from pyworkflow.storage.base import StorageBackend

__all__ = [
    "Started",
    "cancel",
    "chain",
    "events",
    "get_run",
    "list_children",
    "list_runs",
    "start",
    "wait_for_run",
]


@dataclass(frozen=True)
class Started:
    """What ``start`` did: the run started (or found by its idempotency key) and where things
    stand now — that run, or the last run of its continue-as-new chain when it was driven
    through one."""

    run_id: str
    run: WorkflowRun


async def start(
    rt: Runtime,
    defn: WorkflowDefinition,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    *,
    idempotency_key: str | None = None,
) -> Started:
    """Start a run of ``defn`` and set it going (embedded: driven here until it ends or waits;
    AWS: its wake-up sent).

    With an ``idempotency_key`` used before, no second run is made: the earlier run is returned,
    whatever its state, so a caller retrying after a timeout or a crash gets the same answer
    (pyworkflow-engine raised ``WorkflowAlreadyRunningError`` while that run was executing; a
    retry loop would then fail although its run exists). An earlier run still pending (its
    starter may have died before setting it going) is set going again; a duplicate wake-up is
    harmless."""
    if idempotency_key:
        existing = await rt.storage.get_run_by_idempotency_key(idempotency_key)
        if existing is not None:
            return await _started_before(rt, existing)
    try:
        run, history = await rt.create_run(
            defn, tuple(args), dict(kwargs), idempotency_key=idempotency_key
        )
    except ConcurrencyError:
        # lost a race for the same key: the winner's run is the answer
        existing = (
            await rt.storage.get_run_by_idempotency_key(idempotency_key)
            if idempotency_key
            else None
        )
        if existing is None:
            raise
        return await _started_before(rt, existing)
    return Started(run.run_id, await rt.begin(run, history))


async def _started_before(rt: Runtime, run: WorkflowRun) -> Started:
    if run.status == RunStatus.PENDING and not rt.is_active(run.run_id):
        await rt.advance(run.run_id, reason="start")
        run = await get_run(rt.storage, run.run_id)
    return Started(run.run_id, run)


async def get_run(storage: StorageBackend, run_id: str) -> WorkflowRun:
    """The run; ``WorkflowNotFoundError`` if there is none."""
    run = await storage.get_run(run_id)
    if run is None:
        raise WorkflowNotFoundError(run_id)
    return run


async def list_runs(
    storage: StorageBackend,
    *,
    status: RunStatus | None = None,
    workflow: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page:
    """Runs, newest first; ``Page.items`` are ``WorkflowRun``. ``InvalidCursorError`` for a
    cursor no listing handed out."""
    try:
        return await storage.list_runs_page(
            status=status, workflow_name=workflow, limit=limit, cursor=cursor
        )
    except InvalidArgumentsError:
        raise
    except ValueError as error:  # the backends' word for a cursor they did not hand out
        raise InvalidCursorError(str(error)) from None


async def list_children(
    storage: StorageBackend, run_id: str, *, status: RunStatus | None = None, limit: int = 100
) -> list[WorkflowRun]:
    """The child runs ``run_id`` started, newest first."""
    await get_run(storage, run_id)
    page = await storage.list_runs_page(parent_run_id=run_id, status=status, limit=limit)
    return list(page.items)


async def events(storage: StorageBackend, run_id: str, *, after: int = 0) -> list[Event]:
    """The history, in order; only events with a sequence above ``after``."""
    found = await storage.get_events(run_id, after_sequence=after)
    if not found:  # every run has its workflow.started event: no events may mean no run
        await get_run(storage, run_id)
    return found


async def chain(storage: StorageBackend, run_id: str) -> list[WorkflowRun]:
    """Every run of the continue-as-new chain ``run_id`` belongs to, oldest first;
    ``WorkflowNotFoundError`` for an unknown run (the storage method answers [], as 0.1.9)."""
    found = await storage.get_workflow_chain(run_id)
    if not found:
        raise WorkflowNotFoundError(run_id)
    return found


async def cancel(rt: Runtime, run_id: str, reason: str | None = None) -> bool:
    """Cancel a run; False if it had already ended (``WorkflowNotFoundError`` if there is none).

    A waiting run is moved along at once, so its ``except``/``shield()`` cleanup runs and it
    ends cancelled; one executing here gets ``CancellationError`` at its next await; one
    executing elsewhere is woken, in case its executor died."""
    run = await request_cancel(rt.storage, rt.clock, run_id, reason)
    if run is None:
        return False
    if rt.is_active(run_id):
        rt.interrupt(run_id)
    elif run.status in (RunStatus.SUSPENDED, RunStatus.PENDING):
        await rt.advance(run_id, reason="cancel", follow_chain=False)
    else:
        await rt.wake(run_id, reason="cancel")
    return True


async def wait_for_run(
    storage: StorageBackend,
    run_id: str,
    *,
    timeout: float | None = None,
    poll_interval: float = 0.05,
) -> WorkflowRun:
    """Poll until the run has ended; ``TimeoutError`` after ``timeout`` seconds."""

    async def poll() -> WorkflowRun:
        while True:
            run = await get_run(storage, run_id)
            if run.status.is_terminal:
                return run
            await asyncio.sleep(poll_interval)

    return await asyncio.wait_for(poll(), timeout)

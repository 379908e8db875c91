"""pyworkflow-engine 0.1.9's read API, written once over this package's storage primitives.

0.1.9's docs and examples call a backend directly (``storage.get_events(run_id)``,
``runs, cursor = await storage.list_runs(status=...)``, ``storage.get_children(run_id)``...).
``EngineReadAPI`` gives every backend (memory, file, SQLite, DynamoDB, the offloading wrapper)
those methods with 0.1.9's signatures and return types. Each is a function of the primitives
the protocol already has (``list_runs_page``, ``read_events``, ``get_run``, ``update_run``,
``get_hook_by_hash``, ``find_hook``, ``read_hooks``), so no backend carries a copy and none
needs a new query: DynamoDB answers with the queries it already has, it never scans.

What differs from 0.1.9 (see docs/compatibility.md, "Storage read API"):

- Step records are not stored: ``list_steps``/``get_step`` derive them from the run's step
  events; a step's id is ``"<run_id>:<op>"`` and its arguments and ``max_retries`` are not
  recorded (defaults).
- The cancellation flag is the run's ``cancel_requested`` (set by ``cancel_workflow`` too); it
  cannot be set on a run that does not exist (``WorkflowNotFoundError``).
- ``get_hook(hook_id)`` finds the newest hook with that id (hook ids repeat across runs, as in
  0.1.9); pass ``run_id=`` to look in one run with one query.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import (
    Hook,
    HookStatus,
    Page,
    RunStatus,
    StepExecution,
    StepStatus,
    WorkflowRun,
    hash_token,
)
from pyworkflow.exceptions import ConcurrencyError, WorkflowNotFoundError
from pyworkflow.storage.shared import decode_cursor, encode_cursor

#: How often a flag update is retried when the run moved meanwhile (compare-and-set).
FLAG_ATTEMPTS = 20
#: Runs read per page while filters the backend cannot apply (``query``, times) are checked.
FILTER_PAGE = 200

_STEP_STATUS = {
    EventType.STEP_STARTED: StepStatus.RUNNING,
    EventType.STEP_COMPLETED: StepStatus.COMPLETED,
    EventType.STEP_FAILED: StepStatus.FAILED,
    EventType.STEP_RETRYING: StepStatus.RETRYING,
    EventType.STEP_CANCELLED: StepStatus.CANCELLED,
}
_STEP_ENDED = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED})


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def step_id_of(run_id: str, op: int) -> str:
    """The id ``list_steps`` gives the step at operation ``op`` of ``run_id``."""
    return f"{run_id}:{op}"


def parse_step_id(step_id: str) -> tuple[str, int] | None:
    run_id, _, op = step_id.rpartition(":")
    return (run_id, int(op)) if run_id and op.isdigit() else None


def steps_from_events(run_id: str, events: list[Event]) -> list[StepExecution]:
    """One ``StepExecution`` per step operation of the history, in call order."""
    by_op: dict[int, list[Event]] = {}
    for event in events:
        if event.type in _STEP_STATUS and event.op is not None:
            by_op.setdefault(event.op, []).append(event)
    return [_step(run_id, op, evs) for op, evs in sorted(by_op.items())]


def _step(run_id: str, op: int, events: list[Event]) -> StepExecution:
    last = events[-1]
    status = _STEP_STATUS[last.type]
    started = next((e.timestamp for e in events if e.type == EventType.STEP_STARTED), None)
    retry_at = last.data.get("retry_at") if status == StepStatus.RETRYING else None
    return StepExecution(
        step_id=step_id_of(run_id, op),
        run_id=run_id,
        step_name=str(last.data.get("step_name") or last.data.get("name") or ""),
        status=status,
        attempt=int(last.data.get("attempt") or 1),
        created_at=events[0].timestamp,
        updated_at=last.timestamp,
        started_at=started,
        completed_at=last.timestamp if status in _STEP_ENDED else None,
        result=json.dumps(last.data["result"]) if status == StepStatus.COMPLETED else None,
        error=last.data.get("error") if status != StepStatus.COMPLETED else None,
        retry_after=datetime.fromisoformat(retry_at) if isinstance(retry_at, str) else None,
    )


class EngineReadAPI(ABC):
    """0.1.9's read surface. ``StorageBackend`` inherits it; the primitives below are the
    protocol's own (documented in ``storage/base.py``)."""

    @abstractmethod
    async def get_run(self, run_id: str) -> WorkflowRun | None: ...

    @abstractmethod
    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun: ...

    @abstractmethod
    async def list_runs_page(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page: ...

    @abstractmethod
    async def read_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]: ...

    @abstractmethod
    async def get_hook_by_hash(self, token_hash: str) -> Hook | None: ...

    @abstractmethod
    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None: ...

    @abstractmethod
    async def read_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]: ...

    # --- runs ----------------------------------------------------------------------------------
    async def list_runs(
        self,
        query: str | None = None,
        status: RunStatus | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
    ) -> tuple[list[WorkflowRun], str | None]:
        """0.1.9's listing: ``(runs newest first, next_cursor)``; ``next_cursor`` is the run id
        to pass back as ``cursor`` (None: no more). ``query`` is a case-insensitive substring of
        the workflow name or the keyword arguments' JSON; ``start_time <= started_at <
        end_time`` (runs not started are left out). ``workflow_name``/``parent_run_id`` are
        this package's filters. Our own paged listing is ``list_runs_page``."""
        if limit <= 0:
            return [], None
        page_cursor = await self._page_cursor(cursor) if cursor else None
        if cursor and page_cursor is None:
            return [], None  # 0.1.9: a cursor naming no run lists nothing
        start = _utc(start_time) if start_time else None
        end = _utc(end_time) if end_time else None
        needle = query.lower() if query else None
        filtered = bool(needle or start or end)

        def keep(run: WorkflowRun) -> bool:
            if needle and not (
                needle in run.workflow_name.lower() or needle in run.input_kwargs.lower()
            ):
                return False
            if start or end:
                if run.started_at is None:
                    return False
                if (start and run.started_at < start) or (end and run.started_at >= end):
                    return False
            return True

        found: list[WorkflowRun] = []
        while len(found) <= limit:
            page = await self.list_runs_page(
                status=status,
                workflow_name=workflow_name,
                parent_run_id=parent_run_id,
                limit=max(limit + 1, FILTER_PAGE) if filtered else limit + 1 - len(found),
                cursor=page_cursor,
            )
            found.extend(r for r in page.items if keep(r))
            page_cursor = page.next_cursor
            if not page_cursor:
                break
        runs = found[:limit]
        return runs, runs[-1].run_id if len(found) > limit else None

    async def _page_cursor(self, cursor: str) -> str | None:
        """``list_runs_page``'s cursor for 0.1.9's (a run id); one of ours is taken as is."""
        run = await self.get_run(cursor)
        if run is not None:
            return encode_cursor(run)
        try:
            decode_cursor(cursor)
        except ValueError:
            return None
        return cursor

    async def get_run_context(self, run_id: str) -> dict[str, Any]:
        """The run's step context ({} for an unknown run, as 0.1.9)."""
        run = await self.get_run(run_id)
        return dict(run.context) if run else {}

    async def get_children(
        self, parent_run_id: str, status: RunStatus | None = None
    ) -> list[WorkflowRun]:
        """Child runs of ``parent_run_id``, oldest first."""
        children: list[WorkflowRun] = []
        cursor = None
        while True:
            page = await self.list_runs_page(
                parent_run_id=parent_run_id, status=status, cursor=cursor
            )
            children.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        children.sort(key=lambda r: (r.created_at, r.run_id))
        return children

    async def get_parent(self, run_id: str) -> WorkflowRun | None:
        """The parent run, or None for a root run or an unknown id."""
        run = await self.get_run(run_id)
        return await self.get_run(run.parent_run_id) if run and run.parent_run_id else None

    async def get_nesting_depth(self, run_id: str) -> int:
        """0 for a root run (and an unknown id), 1 for a child, ..."""
        run = await self.get_run(run_id)
        return run.nesting_depth if run else 0

    async def get_workflow_chain(self, run_id: str) -> list[WorkflowRun]:
        """All runs of a continue-as-new chain, oldest first, from any member ([] for an
        unknown id, as 0.1.9)."""
        run = await self.get_run(run_id)
        if run is None:
            return []
        chain = [run]
        seen = {run.run_id}
        while chain[0].continued_from_run_id and chain[0].continued_from_run_id not in seen:
            prev = await self.get_run(chain[0].continued_from_run_id)
            if prev is None:
                break
            seen.add(prev.run_id)
            chain.insert(0, prev)
        while chain[-1].continued_to_run_id and chain[-1].continued_to_run_id not in seen:
            nxt = await self.get_run(chain[-1].continued_to_run_id)
            if nxt is None:
                break
            seen.add(nxt.run_id)
            chain.append(nxt)
        return chain

    # --- events --------------------------------------------------------------------------------
    async def get_events(
        self,
        run_id: str,
        event_types: Sequence[str | EventType] | None = None,
        *,
        after_sequence: int = 0,
    ) -> list[Event]:
        """The run's history in sequence order ([] for an unknown run), optionally only events
        of ``event_types`` (strings such as ``"step.completed"`` or ``EventType`` members) or
        after ``after_sequence``."""
        events = await self.read_events(run_id, after_sequence=after_sequence)
        if event_types:
            wanted = {str(t.value if isinstance(t, EventType) else t) for t in event_types}
            events = [e for e in events if e.type.value in wanted]
        return events

    async def get_latest_event(
        self, run_id: str, event_type: str | EventType | None = None
    ) -> Event | None:
        """The run's last event (of ``event_type`` if given), or None."""
        events = await self.get_events(run_id, [event_type] if event_type else None)
        return events[-1] if events else None

    # --- steps (derived from step events: no step records are stored) --------------------------
    async def list_steps(self, run_id: str) -> list[StepExecution]:
        """One record per step operation of the run, in call order."""
        return steps_from_events(run_id, await self.get_events(run_id))

    async def get_step(self, step_id: str) -> StepExecution | None:
        """The step with an id ``list_steps`` gave (``"<run_id>:<op>"``), or None."""
        parsed = parse_step_id(step_id)
        if parsed is None:
            return None
        run_id, op = parsed
        steps = steps_from_events(run_id, await self.get_events(run_id))
        return next((s for s in steps if s.step_id == step_id), None)

    # --- hooks ---------------------------------------------------------------------------------
    async def list_hooks(
        self,
        run_id: str | None = None,
        status: HookStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Hook]:
        """Hooks newest first, ``limit`` of them after skipping ``offset``."""
        if limit <= 0:
            return []
        offset = max(offset, 0)
        hooks = await self.read_hooks(run_id=run_id, status=status, limit=offset + limit)
        return hooks[offset:]

    async def get_hook(self, hook_id: str, run_id: str | None = None) -> Hook | None:
        """The newest hook with this id (in run ``run_id`` if given: one query; else found in
        the listing of all hooks, newest first, read in growing pages)."""
        if run_id is not None:
            return await self.find_hook(run_id, hook_id=hook_id)
        limit = 100
        while True:
            hooks = await self.read_hooks(limit=limit)
            found = next((h for h in hooks if h.hook_id == hook_id), None)
            if found is not None or len(hooks) < limit:
                return found
            limit *= 10

    async def get_hook_by_token(self, token: str) -> Hook | None:
        """The hook a token resumes (hooks are stored under the token's hash)."""
        return await self.get_hook_by_hash(hash_token(token))

    # --- cancellation flag (a view of the run's ``cancel_requested``) --------------------------
    async def set_cancellation_flag(self, run_id: str) -> None:
        """Flag the run for cancellation, as ``cancel_workflow`` does, without waking it:
        a running workflow sees it at its next durable call. ``WorkflowNotFoundError`` for a
        run that does not exist."""
        await self._set_flag(run_id, True)

    async def check_cancellation_flag(self, run_id: str) -> bool:
        run = await self.get_run(run_id)
        return bool(run and run.cancel_requested)

    async def clear_cancellation_flag(self, run_id: str) -> None:
        """Withdraw a cancellation request (no-op for an unknown or unflagged run)."""
        await self._set_flag(run_id, False)

    async def _set_flag(self, run_id: str, flag: bool) -> None:
        for _ in range(FLAG_ATTEMPTS):
            run = await self.get_run(run_id)
            if run is None:
                if flag:
                    raise WorkflowNotFoundError(run_id)
                return
            if run.cancel_requested == flag:
                return
            update: dict[str, Any] = {"cancel_requested": flag}
            if not flag:
                update["cancel_reason"] = None
            try:
                await self.update_run(run.model_copy(update=update), expected_version=run.version)
                return
            except ConcurrencyError:
                continue
        raise ConcurrencyError(f"Run {run_id} kept changing while its cancellation flag was set")

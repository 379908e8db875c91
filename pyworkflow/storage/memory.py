"""In-memory storage: the reference implementation of the contract, for tests and transient runs.

Records are copied in and out, so callers can never mutate stored state by accident.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, HookStatus, Page, RunStatus, Schedule, WorkflowRun
from pyworkflow.exceptions import ConcurrencyError, WorkflowNotFoundError
from pyworkflow.storage.base import StorageBackend


def _utc_iso(when: datetime) -> str:
    """Comparable text of a time: UTC, fixed width (offsets would otherwise sort wrongly)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def encode_cursor(run: WorkflowRun) -> str:
    raw = json.dumps([_utc_iso(run.created_at), run.run_id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(created), str(run_id)
    except Exception as exc:
        raise ValueError(
            f"Invalid cursor {cursor!r}: pass back a next_cursor you were given"
        ) from exc


def run_sort_key(run: WorkflowRun) -> tuple[str, str]:
    return (_utc_iso(run.created_at), run.run_id)


class InMemoryStorageBackend(StorageBackend):
    def __init__(self) -> None:
        self.writes = 0
        self.reads = 0
        self._runs: dict[str, WorkflowRun] = {}
        self._events: dict[str, list[Event]] = {}
        self._idem: dict[str, str] = {}
        self._hooks: dict[str, Hook] = {}
        self._schedules: dict[str, Schedule] = {}
        self._lock = asyncio.Lock()

    # --- runs --------------------------------------------------------------------------------
    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        self.writes += 1
        if run.run_id in self._runs:
            raise ConcurrencyError(f"Run {run.run_id} already exists")
        if run.idempotency_key and run.idempotency_key in self._idem:
            raise ConcurrencyError(f"Idempotency key {run.idempotency_key!r} already used")
        self._check_sequences(run.run_id, events, [])
        stored = run.model_copy(update={"version": 1}, deep=True)
        self._runs[run.run_id] = stored
        self._events[run.run_id] = list(events)
        if run.idempotency_key:
            self._idem[run.idempotency_key] = run.run_id
        return stored.model_copy(deep=True)

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        self.reads += 1
        run = self._runs.get(run_id)
        return run.model_copy(deep=True) if run else None

    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None:
        self.reads += 1
        run_id = self._idem.get(key)
        return self._runs[run_id].model_copy(deep=True) if run_id else None

    def _check_version(self, run: WorkflowRun, expected_version: int) -> None:
        current = self._runs.get(run.run_id)
        if current is None:
            raise WorkflowNotFoundError(run.run_id)
        if current.version != expected_version:
            raise ConcurrencyError(
                f"Run {run.run_id} is at version {current.version}, expected {expected_version}"
            )

    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        self.writes += 1
        self._check_version(run, expected_version)
        stored = run.model_copy(update={"version": expected_version + 1}, deep=True)
        self._runs[run.run_id] = stored
        return stored.model_copy(deep=True)

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        self.reads += 1
        runs = [
            r
            for r in self._runs.values()
            if (status is None or r.status == status)
            and (workflow_name is None or r.workflow_name == workflow_name)
            and (parent_run_id is None or r.parent_run_id == parent_run_id)
        ]
        runs.sort(key=run_sort_key, reverse=True)
        if cursor:
            after = decode_cursor(cursor)
            runs = [r for r in runs if run_sort_key(r) < after]
        page = runs[:limit]
        next_cursor = encode_cursor(page[-1]) if len(runs) > limit and page else None
        return Page(items=[r.model_copy(deep=True) for r in page], next_cursor=next_cursor)

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        self.reads += 1
        due = [
            r
            for r in self._runs.values()
            if is_due(r, now) and (after is None or due_key(r) > after)
        ]
        due.sort(key=due_key)
        return [r.model_copy(deep=True) for r in due[:limit]]

    # --- events ------------------------------------------------------------------------------
    def _check_sequences(self, run_id: str, events: list[Event], existing: list[Event]) -> None:
        expected = len(existing) + 1
        for event in events:
            if event.run_id != run_id:
                raise ValueError(f"Event {event.event_id} belongs to run {event.run_id}")
            if event.sequence != expected:
                raise ConcurrencyError(
                    f"Run {run_id}: sequence {event.sequence} is taken or out of order "
                    f"(next free is {expected})"
                )
            expected += 1

    async def append_events(
        self,
        run_id: str,
        events: list[Event],
        *,
        run: WorkflowRun | None = None,
        expected_version: int | None = None,
    ) -> WorkflowRun | None:
        self.writes += 1
        existing = self._events.get(run_id)
        if existing is None:
            raise WorkflowNotFoundError(run_id)
        self._check_sequences(run_id, events, existing)
        stored = None
        if run is not None:
            if expected_version is None:
                raise ValueError("expected_version is required with run=")
            self._check_version(run, expected_version)
            stored = run.model_copy(update={"version": expected_version + 1}, deep=True)
            self._runs[run_id] = stored
        existing.extend(events)
        return stored.model_copy(deep=True) if stored else None

    async def get_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        self.reads += 1
        return [e for e in self._events.get(run_id, []) if e.sequence > after_sequence]

    # --- hooks -------------------------------------------------------------------------------
    async def create_hook(self, hook: Hook) -> None:
        self.writes += 1
        self._hooks[hook.token_hash] = hook.model_copy(update={"version": 1}, deep=True)

    async def get_hook(self, token_hash: str) -> Hook | None:
        self.reads += 1
        hook = self._hooks.get(token_hash)
        return hook.model_copy(deep=True) if hook else None

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        self.reads += 1
        found = [
            h
            for h in self._hooks.values()
            if h.run_id == run_id
            and (hook_id is None or h.hook_id == hook_id)
            and (name is None or h.name == name)
        ]
        found.sort(key=lambda h: (h.created_at, h.op), reverse=True)
        return found[0].model_copy(deep=True) if found else None

    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        self.writes += 1
        current = self._hooks.get(hook.token_hash)
        if current is None or current.version != expected_version:
            raise ConcurrencyError(f"Hook {hook.hook_id} changed concurrently")
        stored = hook.model_copy(update={"version": expected_version + 1}, deep=True)
        self._hooks[hook.token_hash] = stored
        return stored.model_copy(deep=True)

    async def list_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        self.reads += 1
        hooks = [
            h
            for h in self._hooks.values()
            if (run_id is None or h.run_id == run_id) and (status is None or h.status == status)
        ]
        hooks.sort(key=lambda h: (h.created_at, h.op), reverse=True)
        return [h.model_copy(deep=True) for h in hooks[:limit]]

    # --- schedules ---------------------------------------------------------------------------
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        self.writes += 1
        if schedule.schedule_id in self._schedules:
            raise ConcurrencyError(f"Schedule {schedule.schedule_id} already exists")
        stored = schedule.model_copy(update={"version": 1}, deep=True)
        self._schedules[schedule.schedule_id] = stored
        return stored.model_copy(deep=True)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        self.reads += 1
        s = self._schedules.get(schedule_id)
        return s.model_copy(deep=True) if s else None

    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        self.writes += 1
        current = self._schedules.get(schedule.schedule_id)
        if current is None or current.version != expected_version:
            raise ConcurrencyError(f"Schedule {schedule.schedule_id} changed concurrently")
        stored = schedule.model_copy(update={"version": expected_version + 1}, deep=True)
        self._schedules[schedule.schedule_id] = stored
        return stored.model_copy(deep=True)

    async def delete_schedule(self, schedule_id: str) -> bool:
        self.writes += 1
        return self._schedules.pop(schedule_id, None) is not None

    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]:
        self.reads += 1
        items = [
            s
            for s in self._schedules.values()
            if (workflow_name is None or s.workflow_name == workflow_name)
            and (status is None or s.status == status)
        ]
        items.sort(key=lambda s: s.created_at, reverse=True)
        return [s.model_copy(deep=True) for s in items[:limit]]


def due_key(run: WorkflowRun) -> str:
    """The order of due runs, the same in every backend: since when the run is due (a sleeper
    since its ``wake_at``; others since their creation, a lease being checked by a filter),
    then its id. Also the ``after`` of ``list_due_runs``' next page."""
    when = run.wake_at if run.status == RunStatus.SUSPENDED and run.wake_at else run.created_at
    return f"{_utc_iso(when)}#{run.run_id}"


def is_due(run: WorkflowRun, now: datetime) -> bool:
    """Whether a worker should drive ``run`` at ``now`` (shared by every backend's filter)."""
    if run.status == RunStatus.PENDING:
        return run.lease_expires_at is None or run.lease_expires_at <= now
    if run.status == RunStatus.SUSPENDED:
        return run.wake_at is not None and run.wake_at <= now
    if run.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
        return run.lease_expires_at is None or run.lease_expires_at <= now
    return False

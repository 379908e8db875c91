"""The storage contract written once over a store of whole records: memory and files.

``RecordStorageBackend`` implements every method of ``StorageBackend`` — the creates, the
compare-and-sets, the conditional append, the listings with their filters, orders and cursors,
the due-run selection, the round-trip counters — on a handful of synchronous primitives that
read and write one record at a time. A subclass says only where records live:

* ``_guard(exclusive)``: a context that makes the body atomic against other writers (nothing for
  memory, whose bodies never await; an ``flock`` for files);
* ``_peek(kind, key)`` / ``_scan(kind)``: a stored record or all of a kind (``kind`` is
  ``"runs"``, ``"hooks"`` or ``"schedules"``), which the base treats as read-only, and
  ``_own(record)``: the copy a caller may keep (memory copies; files parse fresh objects anyway);
* ``_put(kind, key, record)`` / ``_drop(kind, key)``; ``_exists`` if cheaper than ``_peek``;
* ``_history(run_id)`` / ``_replace_history(run_id, events)`` / ``_extend_history(run_id,
  events)``: a run's events;
* ``_idem_get(key)`` / ``_idem_put(key, run_id)``: the idempotency index.

Every method runs its whole body inside one ``_guard`` without awaiting, so no other task can
interleave with a check-then-write. The order of writes is the crash-safe one for stores
without transactions: a new run's events and key first, its record last (a run exists iff its
record does, so a crash leaves only orphans a retry overwrites); an append writes the events
before the record, so a crash can leave the history ahead of the record (a retry gets
``ConcurrencyError`` and reloads), never the reverse.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, HookStatus, Page, RunStatus, Schedule, WorkflowRun
from pyworkflow.exceptions import WorkflowNotFoundError
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.shared import (
    check_batch,
    check_run_record,
    check_run_version,
    decode_cursor,
    due_key,
    encode_cursor,
    hook_moved,
    hook_sort_key,
    is_due,
    key_taken,
    require_version,
    run_exists,
    run_sort_key,
    schedule_exists,
    schedule_moved,
    schedule_sort_key,
    stamped,
)

M = TypeVar("M", bound=BaseModel)

RUNS, HOOKS, SCHEDULES = "runs", "hooks", "schedules"
MODELS: dict[str, type[Any]] = {RUNS: WorkflowRun, HOOKS: Hook, SCHEDULES: Schedule}


class RecordStorageBackend(StorageBackend):
    """``StorageBackend`` on whole-record primitives (see the module docstring)."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0

    # --- primitives ----------------------------------------------------------------------------
    @abstractmethod
    def _guard(self, exclusive: bool = True) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def _peek(self, kind: str, key: str) -> Any | None: ...

    @abstractmethod
    def _scan(self, kind: str) -> Iterable[Any]: ...

    def _own(self, record: M) -> M:
        return record

    @abstractmethod
    def _put(self, kind: str, key: str, record: BaseModel) -> None: ...

    @abstractmethod
    def _drop(self, kind: str, key: str) -> bool: ...

    def _exists(self, kind: str, key: str) -> bool:
        return self._peek(kind, key) is not None

    @abstractmethod
    def _history(self, run_id: str) -> list[Event]: ...

    @abstractmethod
    def _replace_history(self, run_id: str, events: list[Event]) -> None: ...

    @abstractmethod
    def _extend_history(self, run_id: str, events: list[Event]) -> None: ...

    @abstractmethod
    def _idem_get(self, key: str) -> str | None: ...

    @abstractmethod
    def _idem_put(self, key: str, run_id: str) -> None: ...

    # --- helpers -------------------------------------------------------------------------------
    def _get(self, kind: str, key: str) -> Any | None:
        self.reads += 1
        with self._guard(exclusive=False):
            record = self._peek(kind, key)
            return self._own(record) if record is not None else None

    def _select(self, kind: str, keep: Any, sort_key: Any, *, reverse: bool = True) -> list[Any]:
        """The records of ``kind`` that ``keep`` accepts, sorted; read-only until ``_own``."""
        self.reads += 1
        with self._guard(exclusive=False):
            found = [r for r in self._scan(kind) if keep(r)]
        found.sort(key=sort_key, reverse=reverse)
        return found

    def _swap_run(self, run_id: str, run: WorkflowRun, expected_version: int) -> WorkflowRun:
        """The run record to write if the CAS holds (guard held)."""
        check_run_record(run_id, run)
        current = self._peek(RUNS, run_id)
        check_run_version(run_id, current.version if current else None, expected_version)
        return stamped(run, expected_version + 1)

    def _swap(
        self, kind: str, key: str, new: M, expected_version: int, moved: Callable[[], Exception]
    ) -> M:
        """Compare-and-set of a hook or schedule; a missing record is a lost race too."""
        self.writes += 1
        with self._guard():
            current = self._peek(kind, key)
            if current is None or current.version != expected_version:
                raise moved()
            stored = stamped(new, expected_version + 1)
            self._put(kind, key, stored)
        return self._own(stored)

    # --- runs ----------------------------------------------------------------------------------
    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        self.writes += 1
        check_batch(run.run_id, events, first=1)
        stored = stamped(run, 1)
        key = run.idempotency_key
        with self._guard():
            if self._exists(RUNS, run.run_id):
                raise run_exists(run.run_id)
            if key:
                # a key whose run is missing is an orphan of a crashed create: free to reuse
                owner = self._idem_get(key)
                if owner is not None and self._exists(RUNS, owner):
                    raise key_taken(key)
            self._replace_history(run.run_id, events)
            if key:
                self._idem_put(key, run.run_id)
            self._put(RUNS, run.run_id, stored)  # last: the commit point
        return self._own(stored)

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        run: WorkflowRun | None = self._get(RUNS, run_id)
        return run

    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None:
        self.reads += 1
        with self._guard(exclusive=False):
            run_id = self._idem_get(key)
            run = self._peek(RUNS, run_id) if run_id else None
            return self._own(run) if run is not None else None

    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        self.writes += 1
        with self._guard():
            stored = self._swap_run(run.run_id, run, expected_version)
            self._put(RUNS, run.run_id, stored)
        return self._own(stored)

    async def list_runs_page(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        after = decode_cursor(cursor) if cursor else None

        def keep(r: WorkflowRun) -> bool:
            return (
                (status is None or r.status == status)
                and (workflow_name is None or r.workflow_name == workflow_name)
                and (parent_run_id is None or r.parent_run_id == parent_run_id)
                and (after is None or run_sort_key(r) < after)
            )

        runs = self._select(RUNS, keep, run_sort_key)
        page = runs[: max(limit, 0)]
        next_cursor = encode_cursor(page[-1]) if len(runs) > limit and page else None
        return Page(items=[self._own(r) for r in page], next_cursor=next_cursor)

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        def keep(r: WorkflowRun) -> bool:
            return is_due(r, now) and (after is None or due_key(r) > after)

        due = self._select(RUNS, keep, due_key, reverse=False)
        return [self._own(r) for r in due[: max(limit, 0)]]

    # --- events --------------------------------------------------------------------------------
    async def append_events(
        self,
        run_id: str,
        events: list[Event],
        *,
        run: WorkflowRun | None = None,
        expected_version: int | None = None,
    ) -> WorkflowRun | None:
        self.writes += 1
        expected_version = require_version(run, expected_version)
        with self._guard():
            if not self._exists(RUNS, run_id):
                raise WorkflowNotFoundError(run_id)
            check_batch(run_id, events, first=len(self._history(run_id)) + 1)
            stored = None
            if run is not None and expected_version is not None:
                stored = self._swap_run(run_id, run, expected_version)
            if events:
                self._extend_history(run_id, events)
            if stored is not None:
                self._put(RUNS, run_id, stored)
        return self._own(stored) if stored is not None else None

    async def read_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        self.reads += 1
        with self._guard(exclusive=False):
            events = self._history(run_id)
        return [e for e in events if e.sequence > after_sequence]

    # --- hooks ---------------------------------------------------------------------------------
    async def create_hook(self, hook: Hook) -> None:
        self.writes += 1
        stored = stamped(hook, 1)
        with self._guard():
            self._put(HOOKS, hook.token_hash, stored)

    async def get_hook_by_hash(self, token_hash: str) -> Hook | None:
        hook: Hook | None = self._get(HOOKS, token_hash)
        return hook

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        def keep(h: Hook) -> bool:
            return (
                h.run_id == run_id
                and (hook_id is None or h.hook_id == hook_id)
                and (name is None or h.name == name)
            )

        found = self._select(HOOKS, keep, hook_sort_key)
        return self._own(found[0]) if found else None

    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        return self._swap(HOOKS, hook.token_hash, hook, expected_version, lambda: hook_moved(hook))

    async def read_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        def keep(h: Hook) -> bool:
            return (run_id is None or h.run_id == run_id) and (status is None or h.status == status)

        hooks = self._select(HOOKS, keep, hook_sort_key)
        return [self._own(h) for h in hooks[: max(limit, 0)]]

    # --- schedules -----------------------------------------------------------------------------
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        self.writes += 1
        stored = stamped(schedule, 1)
        with self._guard():
            if self._exists(SCHEDULES, schedule.schedule_id):
                raise schedule_exists(schedule.schedule_id)
            self._put(SCHEDULES, schedule.schedule_id, stored)
        return self._own(stored)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        schedule: Schedule | None = self._get(SCHEDULES, schedule_id)
        return schedule

    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        sid = schedule.schedule_id
        return self._swap(SCHEDULES, sid, schedule, expected_version, lambda: schedule_moved(sid))

    async def delete_schedule(self, schedule_id: str) -> bool:
        self.writes += 1
        with self._guard():
            return self._drop(SCHEDULES, schedule_id)

    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]:
        def keep(s: Schedule) -> bool:
            return (workflow_name is None or s.workflow_name == workflow_name) and (
                status is None or s.status == status
            )

        items = self._select(SCHEDULES, keep, schedule_sort_key)
        return [self._own(s) for s in items[: max(limit, 0)]]

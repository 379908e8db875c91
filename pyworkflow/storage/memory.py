"""In-memory storage: the reference implementation of the contract, for tests and transient runs.

Records are copied in and out, so callers can never mutate stored state by accident. The
contract itself is ``RecordStorageBackend``'s (shared with the file backend); this module only
says where records live: dicts. No guard is needed: no method awaits inside its body, so asyncio
tasks cannot interleave with one.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from pydantic import BaseModel

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, Schedule, WorkflowRun
from pyworkflow.storage.records import HOOKS, RUNS, SCHEDULES, M, RecordStorageBackend

# kept importable from here: the runtime, DynamoDB and tests import them by this path
from pyworkflow.storage.shared import (  # noqa: F401
    decode_cursor,
    due_key,
    encode_cursor,
    is_due,
    private_copy,
    run_sort_key,
)

_UNGUARDED = nullcontext()


class InMemoryStorageBackend(RecordStorageBackend):
    def __init__(self) -> None:
        super().__init__()
        self._runs: dict[str, WorkflowRun] = {}
        self._events: dict[str, list[Event]] = {}
        self._idem: dict[str, str] = {}
        self._hooks: dict[str, Hook] = {}
        self._schedules: dict[str, Schedule] = {}
        self._tables: dict[str, dict[str, Any]] = {
            RUNS: self._runs,
            HOOKS: self._hooks,
            SCHEDULES: self._schedules,
        }

    def _guard(self, exclusive: bool = True) -> AbstractContextManager[Any]:
        return _UNGUARDED

    def _peek(self, kind: str, key: str) -> Any | None:
        return self._tables[kind].get(key)

    def _scan(self, kind: str) -> Iterable[Any]:
        return self._tables[kind].values()

    def _own(self, record: M) -> M:
        return private_copy(record)

    def _put(self, kind: str, key: str, record: BaseModel) -> None:
        # the base passes a fresh copy it hands out only through ``_own``
        self._tables[kind][key] = record

    def _drop(self, kind: str, key: str) -> bool:
        return self._tables[kind].pop(key, None) is not None

    def _exists(self, kind: str, key: str) -> bool:
        return key in self._tables[kind]

    def _history(self, run_id: str) -> list[Event]:
        return self._events.get(run_id, [])

    def _replace_history(self, run_id: str, events: list[Event]) -> None:
        self._events[run_id] = list(events)

    def _extend_history(self, run_id: str, events: list[Event]) -> None:
        self._events[run_id].extend(events)

    def _idem_get(self, key: str) -> str | None:
        return self._idem.get(key)

    def _idem_put(self, key: str, run_id: str) -> None:
        self._idem[key] = run_id

    # --- pyworkflow-engine's conveniences ------------------------------------------------------
    def clear(self) -> None:
        """Forget every run, event, hook, schedule and idempotency key (between tests)."""
        for table in (self._runs, self._events, self._idem, self._hooks, self._schedules):
            table.clear()

    def __repr__(self) -> str:
        events = sum(len(h) for h in self._events.values())
        return (
            f"InMemoryStorageBackend(runs={len(self._runs)}, events={events}, "
            f"hooks={len(self._hooks)}, schedules={len(self._schedules)})"
        )

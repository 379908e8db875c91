"""File storage: plain JSON files, for compatibility with pyworkflow-engine examples.

Layout under ``base_path``::

    runs/<run_id>.json          one run record (replaced atomically: temp file + os.replace)
    events/<run_id>.jsonl       the run's history, one event per line, append-only
    hooks/<token_hash>.json     one hook
    schedules/<id>.json         one schedule
    idempotency.json            {idempotency key: run id}
    .locks/storage.lock         flock'ed around every operation (shared for reads)

Why this shape: every file is human-readable and a run's history can be inspected with ``tail``.
Safety comes from one lock: an ``asyncio.Lock`` in process plus ``fcntl.flock`` on
``.locks/storage.lock`` across processes (where ``fcntl`` is missing, e.g. Windows, only the
in-process lock applies).
File I/O is synchronous inside the async methods on purpose: the files are small and local, and
a lock body without awaits is what keeps the blocking flock from stalling other tasks for long.

Atomicity: a run exists iff its run file exists, and that file is written last, so a crash in
``create_run`` leaves only orphans that a retry overwrites. ``append_events(run=...)`` appends the
events before replacing the run file; a crash between the two leaves the history ahead of the
run record (a retried append then gets ``ConcurrencyError`` and reloads), never the reverse. A
torn last line (crash mid-append) is ignored on read and cut off by the next append. Use SQLite
when this is not good enough.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, HookStatus, Page, RunStatus, Schedule, WorkflowRun
from pyworkflow.exceptions import ConcurrencyError, WorkflowNotFoundError
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.memory import (
    decode_cursor,
    due_key,
    encode_cursor,
    is_due,
    run_sort_key,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

M = TypeVar("M", bound=BaseModel)


def _name(key: str) -> str:
    """A file name for any id: percent-encoded so '/', '..' or ':' cannot escape the folder."""
    return quote(key, safe="").replace(".", "%2E") or "%00"


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and ``os.replace`` so readers see the old or the new file, never
    a partial one; fsync first so a crash cannot leave an empty file behind the rename."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_model(path: Path, model: type[M]) -> M | None:
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None


class FileStorageBackend(StorageBackend):
    """The ``StorageBackend`` contract on a directory of JSON files (see module docstring)."""

    def __init__(self, base_path: str | Path = ".pyworkflow/data") -> None:
        self.base_path = Path(base_path)
        self.reads = 0
        self.writes = 0
        self._lock = asyncio.Lock()
        self._ready = False

    # --- plumbing ----------------------------------------------------------------------------
    @asynccontextmanager
    async def _locked(self, exclusive: bool = True) -> AsyncIterator[None]:
        """Hold the in-process and the cross-process lock; the body must not await."""
        async with self._lock:
            if not self._ready:
                for kind in ("runs", "events", "hooks", "schedules"):
                    (self.base_path / kind).mkdir(parents=True, exist_ok=True)
                self._ready = True
            # Kept in a hidden folder so a listing of the data shows only data.
            (self.base_path / ".locks").mkdir(parents=True, exist_ok=True)
            fd = os.open(self.base_path / ".locks" / "storage.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the flock

    def _path(self, kind: str, key: str, suffix: str = ".json") -> Path:
        return self.base_path / kind / f"{_name(key)}{suffix}"

    async def _get(self, kind: str, key: str, model: type[M]) -> M | None:
        self.reads += 1
        async with self._locked(exclusive=False):
            return _read_model(self._path(kind, key), model)

    async def _all(self, kind: str, model: type[M]) -> list[M]:
        """Every record of a kind (one read round trip): listings filter these in memory."""
        self.reads += 1
        async with self._locked(exclusive=False):
            items = [_read_model(p, model) for p in (self.base_path / kind).glob("*.json")]
        return [item for item in items if item is not None]

    async def _cas(self, kind: str, key: str, new: M, expected_version: int, what: str) -> M:
        """Compare-and-set of a hook or schedule; a missing record is a lost race too."""
        self.writes += 1
        async with self._locked():
            path = self._path(kind, key)
            current = _read_model(path, type(new))
            if current is None or getattr(current, "version", None) != expected_version:
                raise ConcurrencyError(f"{what} changed concurrently")
            stored = new.model_copy(update={"version": expected_version + 1}, deep=True)
            _write_atomic(path, stored.model_dump_json(indent=2))
        return stored

    def _idem(self) -> dict[str, str]:
        try:
            return dict(json.loads((self.base_path / "idempotency.json").read_text("utf-8")))
        except FileNotFoundError:
            return {}

    def _read_events(self, run_id: str) -> tuple[list[Event], int]:
        """The events and the byte length of the complete lines (a torn tail is ignored)."""
        try:
            raw = self._path("events", run_id, ".jsonl").read_bytes()
        except FileNotFoundError:
            return [], 0
        complete = raw.rfind(b"\n") + 1
        lines = raw[:complete].splitlines()
        return [Event.model_validate_json(line) for line in lines if line.strip()], complete

    def _cas_run(self, run_id: str, run: WorkflowRun, expected_version: int) -> WorkflowRun:
        """Check the stored version (lock held) and return the record to write."""
        if run.run_id != run_id:
            raise ValueError(f"Run record {run.run_id} given for run {run_id}")
        current = _read_model(self._path("runs", run_id), WorkflowRun)
        if current is None:
            raise WorkflowNotFoundError(run_id)
        if current.version != expected_version:
            raise ConcurrencyError(
                f"Run {run_id} is at version {current.version}, expected {expected_version}"
            )
        return run.model_copy(update={"version": expected_version + 1}, deep=True)

    # --- runs --------------------------------------------------------------------------------
    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        self.writes += 1
        _check_batch(run.run_id, events, expected=1)
        stored = run.model_copy(update={"version": 1}, deep=True)
        run_path = self._path("runs", run.run_id)
        async with self._locked():
            if run_path.exists():
                raise ConcurrencyError(f"Run {run.run_id} already exists")
            idem = self._idem()
            key = run.idempotency_key
            # a key whose run file is missing is an orphan of a crashed create: free to reuse
            if key and key in idem and self._path("runs", idem[key]).exists():
                raise ConcurrencyError(f"Idempotency key {key!r} already used")
            _write_atomic(self._path("events", run.run_id, ".jsonl"), _jsonl(events))
            if key:
                idem[key] = run.run_id
                _write_atomic(self.base_path / "idempotency.json", json.dumps(idem, indent=1))
            _write_atomic(run_path, stored.model_dump_json(indent=2))  # last: the commit point
        return stored

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        return await self._get("runs", run_id, WorkflowRun)

    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None:
        self.reads += 1
        async with self._locked(exclusive=False):
            run_id = self._idem().get(key)
            return _read_model(self._path("runs", run_id), WorkflowRun) if run_id else None

    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        self.writes += 1
        async with self._locked():
            stored = self._cas_run(run.run_id, run, expected_version)
            _write_atomic(self._path("runs", run.run_id), stored.model_dump_json(indent=2))
        return stored

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        runs = [
            r
            for r in await self._all("runs", WorkflowRun)
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
        return Page(items=page, next_cursor=next_cursor)

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        due = [
            r
            for r in await self._all("runs", WorkflowRun)
            if is_due(r, now) and (after is None or due_key(r) > after)
        ]
        due.sort(key=due_key)
        return due[:limit]

    # --- events ------------------------------------------------------------------------------
    async def append_events(
        self,
        run_id: str,
        events: list[Event],
        *,
        run: WorkflowRun | None = None,
        expected_version: int | None = None,
    ) -> WorkflowRun | None:
        self.writes += 1
        if run is not None and expected_version is None:
            raise ValueError("expected_version is required with run=")
        async with self._locked():
            if not self._path("runs", run_id).exists():
                raise WorkflowNotFoundError(run_id)
            existing, complete = self._read_events(run_id)
            _check_batch(run_id, events, expected=len(existing) + 1)
            stored = None
            if run is not None:
                assert expected_version is not None
                stored = self._cas_run(run_id, run, expected_version)
            if events:
                # sync I/O by design: see the module docstring
                with open(self._path("events", run_id, ".jsonl"), "r+b") as f:  # noqa: ASYNC230
                    f.truncate(complete)  # drop a torn tail left by a crash
                    f.seek(complete)
                    f.write(_jsonl(events).encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())
            if stored is not None:
                _write_atomic(self._path("runs", run_id), stored.model_dump_json(indent=2))
        return stored

    async def get_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        self.reads += 1
        async with self._locked(exclusive=False):
            events, _ = self._read_events(run_id)
        return [e for e in events if e.sequence > after_sequence]

    # --- hooks -------------------------------------------------------------------------------
    async def create_hook(self, hook: Hook) -> None:
        self.writes += 1
        stored = hook.model_copy(update={"version": 1}, deep=True)
        async with self._locked():
            _write_atomic(self._path("hooks", hook.token_hash), stored.model_dump_json(indent=2))

    async def get_hook(self, token_hash: str) -> Hook | None:
        return await self._get("hooks", token_hash, Hook)

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        found = [
            h
            for h in await self._all("hooks", Hook)
            if h.run_id == run_id
            and (hook_id is None or h.hook_id == hook_id)
            and (name is None or h.name == name)
        ]
        return max(found, key=lambda h: (h.created_at, h.op)) if found else None

    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        return await self._cas(
            "hooks", hook.token_hash, hook, expected_version, f"Hook {hook.hook_id}"
        )

    async def list_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        hooks = [
            h
            for h in await self._all("hooks", Hook)
            if (run_id is None or h.run_id == run_id) and (status is None or h.status == status)
        ]
        hooks.sort(key=lambda h: (h.created_at, h.op), reverse=True)
        return hooks[:limit]

    # --- schedules ---------------------------------------------------------------------------
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        self.writes += 1
        stored = schedule.model_copy(update={"version": 1}, deep=True)
        path = self._path("schedules", schedule.schedule_id)
        async with self._locked():
            if path.exists():
                raise ConcurrencyError(f"Schedule {schedule.schedule_id} already exists")
            _write_atomic(path, stored.model_dump_json(indent=2))
        return stored

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return await self._get("schedules", schedule_id, Schedule)

    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        sid = schedule.schedule_id
        return await self._cas("schedules", sid, schedule, expected_version, f"Schedule {sid}")

    async def delete_schedule(self, schedule_id: str) -> bool:
        self.writes += 1
        async with self._locked():
            try:
                self._path("schedules", schedule_id).unlink()
            except FileNotFoundError:
                return False
            return True

    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]:
        items = [
            s
            for s in await self._all("schedules", Schedule)
            if (workflow_name is None or s.workflow_name == workflow_name)
            and (status is None or s.status == status)
        ]
        items.sort(key=lambda s: (s.created_at, s.schedule_id), reverse=True)
        return items[:limit]


def _jsonl(events: list[Event]) -> str:
    return "".join(e.model_dump_json() + "\n" for e in events)


def _check_batch(run_id: str, events: list[Event], *, expected: int) -> None:
    """Events must belong to ``run_id`` and continue the history gap-free from ``expected``."""
    for offset, event in enumerate(events):
        if event.run_id != run_id:
            raise ValueError(f"Event {event.event_id} belongs to run {event.run_id}")
        if event.sequence != expected + offset:
            raise ConcurrencyError(
                f"Run {run_id}: sequence {event.sequence} is taken or out of order "
                f"(next free is {expected + offset})"
            )

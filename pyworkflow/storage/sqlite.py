"""SQLite storage: the embedded default. One file, safe to share between processes.

Why stdlib ``sqlite3`` called synchronously from async methods: every call is a short indexed
statement on a local file (microseconds), far cheaper than hopping to a thread per call. Because
no method awaits while a transaction is open, asyncio tasks sharing one backend can never
interleave inside a transaction.

Concurrency between processes relies on SQLite itself: WAL lets readers run beside the single
writer, ``BEGIN IMMEDIATE`` takes the write lock up front (so a read-then-write transaction can
never fail half-way with SQLITE_BUSY), and ``busy_timeout`` makes a second writer wait instead of
erroring. The compare-and-set checks run inside that lock, so they are race-free across processes.

Datetimes are stored as fixed-width UTC ISO strings (``2024-01-02T03:04:05.000006+00:00``), so
text comparison and ``ORDER BY`` agree with time order.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, HookStatus, Page, RunStatus, Schedule, WorkflowRun
from pyworkflow.exceptions import ConcurrencyError, ConfigurationError, WorkflowNotFoundError
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.memory import decode_cursor, encode_cursor, is_due

_EVENT_LIST = TypeAdapter(list[Event])

# the run columns that carry an index, in the order ``_run_row`` returns them
_INDEXED_RUN_COLUMNS = (
    "status",
    "workflow_name",
    "parent_run_id",
    "created_at",
    "wake_at",
    "lease_expires_at",
)

#: bump when the schema changes, and add a migration step in ``_migrate``
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id           TEXT PRIMARY KEY,
    status           TEXT NOT NULL,
    workflow_name    TEXT NOT NULL,
    parent_run_id    TEXT,
    created_at       TEXT NOT NULL,
    wake_at          TEXT,
    lease_expires_at TEXT,
    idempotency_key  TEXT UNIQUE,
    version          INTEGER NOT NULL,
    data             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_workflow ON runs (workflow_name, created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_run_id, created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_wake ON runs (status, wake_at);
CREATE INDEX IF NOT EXISTS runs_lease ON runs (status, lease_expires_at);

CREATE TABLE IF NOT EXISTS events (
    run_id   TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (run_id, sequence)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS hooks (
    token_hash TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    hook_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    op         INTEGER NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version    INTEGER NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hooks_run ON hooks (run_id, created_at, op);
CREATE INDEX IF NOT EXISTS hooks_status ON hooks (status, created_at, op);

CREATE TABLE IF NOT EXISTS schedules (
    schedule_id   TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_workflow ON schedules (workflow_name, created_at);
"""

# Mirrors ``is_due`` in memory.py; results are re-checked with it, so the two cannot drift apart
# silently (a mismatch would only ever drop rows, never return wrong ones).
_DUE_WHERE = """
    (status IN ('pending', 'running', 'interrupted')
        AND (lease_expires_at IS NULL OR lease_expires_at <= :now))
    OR (status = 'suspended' AND wake_at IS NOT NULL AND wake_at <= :now)
"""


# memory.due_key in SQL (the times are stored in the same fixed-width text)
_DUE_KEY = (
    "(CASE WHEN status = 'suspended' AND wake_at IS NOT NULL THEN wake_at"
    " ELSE created_at END || '#' || run_id)"
)


def to_db_time(value: datetime | None) -> str | None:
    """Fixed-width UTC ISO text, so string order is time order. Naive values are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


class SQLiteStorageBackend(StorageBackend):
    """The contract of ``StorageBackend`` on one SQLite file (see module docstring for why)."""

    def __init__(self, db_path: str | Path = ".pyworkflow/pyworkflow.db") -> None:
        self.db_path = Path(db_path)
        self.reads = 0
        self.writes = 0
        self._db: sqlite3.Connection | None = None
        # Guards connect/close and keeps a thread that shares this instance (e.g. via
        # asyncio.to_thread) from entering another thread's transaction. Uncontended: ~100 ns.
        self._lock = threading.RLock()

    # --- connection --------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        db = self._db
        if db is None:
            db = self._connect()
        return db

    def _connect(self) -> sqlite3.Connection:
        with self._lock:
            if self._db is not None:
                return self._db
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.db_path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            try:
                db.execute("PRAGMA busy_timeout = 5000")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("PRAGMA foreign_keys = OFF")
                self._migrate(db)
            except BaseException:
                db.close()
                raise
            self._db = db
            return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Create or upgrade the schema under the write lock, so racing processes agree.

        An up-to-date file is only read: opening never takes the write lock in steady state.
        """
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            current = db.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"{self.db_path} has schema version {current}, newer than this pyworkflow "
                    f"supports ({SCHEMA_VERSION}). Upgrade pyworkflow or use another database."
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            # future: `if current < 2: ...` steps go here, before the version is bumped
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. Any exception rolls everything back, so nothing half-written."""
        db = self._conn()
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # also after a failed COMMIT, so the next BEGIN works
                    db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        db = self._conn()
        with self._lock:
            return db.execute(sql, params).fetchall()

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- runs --------------------------------------------------------------------------------
    @staticmethod
    def _run_row(run: WorkflowRun) -> tuple[Any, ...]:
        return (
            run.status.value,
            run.workflow_name,
            run.parent_run_id,
            to_db_time(run.created_at),
            to_db_time(run.wake_at),
            to_db_time(run.lease_expires_at),
            run.version,
            run.model_dump_json(),
        )

    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        self.writes += 1
        _check_batch(run.run_id, events, first=1)
        with self._write() as db:
            return self._insert_run(db, run, events)

    def _insert_run(
        self, db: sqlite3.Connection, run: WorkflowRun, events: list[Event]
    ) -> WorkflowRun:
        stored = run.model_copy(update={"version": 1}, deep=True)
        try:
            db.execute(
                "INSERT INTO runs (status, workflow_name, parent_run_id, created_at, wake_at,"
                " lease_expires_at, version, data, run_id, idempotency_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*self._run_row(stored), run.run_id, run.idempotency_key),
            )
            _insert_events(db, events)
        except sqlite3.IntegrityError as exc:
            raise ConcurrencyError(
                f"Run {run.run_id} or idempotency key {run.idempotency_key!r} already exists"
            ) from exc
        return stored

    async def continue_run(
        self,
        run: WorkflowRun,
        events: list[Event],
        *,
        expected_version: int,
        new_run: WorkflowRun,
        new_events: list[Event],
    ) -> WorkflowRun:
        """Both runs in one transaction: the chain never has a dangling link."""
        self.writes += 1
        _check_batch(run.run_id, events, first=events[0].sequence if events else 1)
        _check_batch(new_run.run_id, new_events, first=1)
        with self._write() as db:
            stored = self._append_in(db, run.run_id, events, run, expected_version)
            self._insert_run(db, new_run, new_events)
        assert stored is not None
        return stored

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        self.reads += 1
        rows = self._query("SELECT data FROM runs WHERE run_id = ?", (run_id,))
        return WorkflowRun.model_validate_json(rows[0][0]) if rows else None

    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None:
        self.reads += 1
        rows = self._query("SELECT data FROM runs WHERE idempotency_key = ?", (key,))
        return WorkflowRun.model_validate_json(rows[0][0]) if rows else None

    def _replace_run(
        self, db: sqlite3.Connection, run_id: str, run: WorkflowRun, expected_version: int
    ) -> WorkflowRun:
        """The compare-and-set, inside the caller's ``BEGIN IMMEDIATE`` transaction (so the row
        cannot change between the read and the write).

        Only the indexed columns whose values changed are SET: SQLite rewrites the entries of
        every index covering a SET column, and a typical step changes none of them (about 4x
        faster than setting all). The idempotency key is never touched: as in memory.py it
        belongs to the run from creation on.
        """
        if run.run_id != run_id:
            raise ValueError(f"Run record {run.run_id} given for run {run_id}")
        current = db.execute(
            f"SELECT version, {', '.join(_INDEXED_RUN_COLUMNS)} FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if current is None:
            raise WorkflowNotFoundError(run_id)
        if current[0] != expected_version:
            raise ConcurrencyError(
                f"Run {run_id} is at version {current[0]}, expected {expected_version}"
            )
        stored = run.model_copy(update={"version": expected_version + 1}, deep=True)
        row = self._run_row(stored)
        changed = [
            (column, new)
            for column, old, new in zip(_INDEXED_RUN_COLUMNS, current[1:], row, strict=False)
            if old != new
        ]
        cur = db.execute(
            f"UPDATE runs SET {''.join(f'{c} = ?, ' for c, _ in changed)}version = ?, data = ?"
            " WHERE run_id = ? AND version = ?",
            (*(v for _, v in changed), stored.version, row[-1], run_id, expected_version),
        )
        if cur.rowcount != 1:  # unreachable while the write lock is held; never write blindly
            raise ConcurrencyError(f"Run {run_id} changed concurrently")
        return stored

    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        self.writes += 1
        with self._write() as db:
            return self._replace_run(db, run.run_id, run, expected_version)

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
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("status", status),
            ("workflow_name", workflow_name),
            ("parent_run_id", parent_run_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value.value if isinstance(value, RunStatus) else value)
        if cursor:
            created, after_id = decode_cursor(cursor)
            try:
                after_created = to_db_time(datetime.fromisoformat(created))
            except ValueError as exc:
                raise ValueError(f"Invalid cursor {cursor!r}") from exc
            # written so the index can range-scan on created_at, then filter the ties
            where.append("created_at <= ? AND (created_at < ? OR run_id < ?)")
            params += [after_created, after_created, after_id]
        sql = "SELECT data FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, run_id DESC LIMIT ?"
        params.append(max(limit, 0) + 1)  # one extra row tells whether another page exists
        rows = self._query(sql, params)
        runs = [WorkflowRun.model_validate_json(r[0]) for r in rows[:limit]]
        next_cursor = encode_cursor(runs[-1]) if len(rows) > limit and runs else None
        return Page(items=runs, next_cursor=next_cursor)

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        self.reads += 1
        rows = self._query(
            f"SELECT data FROM runs WHERE ({_DUE_WHERE}) AND {_DUE_KEY} > :after"
            f" ORDER BY {_DUE_KEY} LIMIT :limit",
            {"now": to_db_time(now), "limit": limit, "after": after or ""},
        )
        runs = (WorkflowRun.model_validate_json(r[0]) for r in rows)
        return [r for r in runs if is_due(r, now)]

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
        _check_batch(run_id, events, first=events[0].sequence if events else 1)
        with self._write() as db:
            return self._append_in(db, run_id, events, run, expected_version)

    def _append_in(
        self,
        db: sqlite3.Connection,
        run_id: str,
        events: list[Event],
        run: WorkflowRun | None,
        expected_version: int | None,
    ) -> WorkflowRun | None:
        """The conditional append, inside the caller's write transaction."""
        stored = None
        last = db.execute(
            "SELECT MAX(sequence) FROM events WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        # runs are never deleted, so a run with events exists: skip the lookup on the hot path
        if (
            last is None
            and not db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        ):
            raise WorkflowNotFoundError(run_id)
        if events:
            expected = (last or 0) + 1
            if events[0].sequence != expected:
                raise ConcurrencyError(
                    f"Run {run_id}: sequence {events[0].sequence} is taken or out of order "
                    f"(next free is {expected})"
                )
            try:
                _insert_events(db, events)
            except sqlite3.IntegrityError as exc:  # unreachable under the write lock
                raise ConcurrencyError(f"Run {run_id}: a sequence is taken") from exc
        if run is not None:
            assert expected_version is not None
            stored = self._replace_run(db, run_id, run, expected_version)
        return stored

    async def get_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        self.reads += 1
        rows = self._query(
            "SELECT data FROM events WHERE run_id = ? AND sequence > ? ORDER BY sequence",
            (run_id, after_sequence),
        )
        # one validation of a JSON array is ~30% faster than one per row on long histories
        return _EVENT_LIST.validate_json("[" + ",".join(r[0] for r in rows) + "]")

    # --- hooks -------------------------------------------------------------------------------
    @staticmethod
    def _hook_row(hook: Hook) -> tuple[Any, ...]:
        return (
            hook.run_id,
            hook.hook_id,
            hook.name,
            hook.op,
            hook.status.value,
            to_db_time(hook.created_at),
            hook.version,
            hook.model_dump_json(),
            hook.token_hash,
        )

    async def create_hook(self, hook: Hook) -> None:
        self.writes += 1
        stored = hook.model_copy(update={"version": 1}, deep=True)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO hooks (run_id, hook_id, name, op, status, created_at,"
                " version, data, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._hook_row(stored),
            )

    async def get_hook(self, token_hash: str) -> Hook | None:
        self.reads += 1
        rows = self._query("SELECT data FROM hooks WHERE token_hash = ?", (token_hash,))
        return Hook.model_validate_json(rows[0][0]) if rows else None

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        self.reads += 1
        sql = "SELECT data FROM hooks WHERE run_id = ?"
        params: list[Any] = [run_id]
        if hook_id is not None:
            sql += " AND hook_id = ?"
            params.append(hook_id)
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        rows = self._query(sql + " ORDER BY created_at DESC, op DESC LIMIT 1", params)
        return Hook.model_validate_json(rows[0][0]) if rows else None

    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        self.writes += 1
        stored = hook.model_copy(update={"version": expected_version + 1}, deep=True)
        with self._write() as db:
            cur = db.execute(
                "UPDATE hooks SET run_id = ?, hook_id = ?, name = ?, op = ?, status = ?,"
                " created_at = ?, version = ?, data = ? WHERE token_hash = ? AND version = ?",
                (*self._hook_row(stored), expected_version),
            )
            if cur.rowcount == 0:
                raise ConcurrencyError(f"Hook {hook.hook_id} changed concurrently")
        return stored

    async def list_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        self.reads += 1
        where: list[str] = []
        params: list[Any] = []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if status is not None:
            where.append("status = ?")
            params.append(HookStatus(status).value)
        sql = "SELECT data FROM hooks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._query(sql + " ORDER BY created_at DESC, op DESC LIMIT ?", [*params, limit])
        return [Hook.model_validate_json(r[0]) for r in rows]

    # --- schedules ---------------------------------------------------------------------------
    @staticmethod
    def _schedule_row(schedule: Schedule) -> tuple[Any, ...]:
        return (
            schedule.workflow_name,
            schedule.status.value,
            to_db_time(schedule.created_at),
            schedule.version,
            schedule.model_dump_json(),
            schedule.schedule_id,
        )

    async def create_schedule(self, schedule: Schedule) -> Schedule:
        self.writes += 1
        stored = schedule.model_copy(update={"version": 1}, deep=True)
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO schedules (workflow_name, status, created_at, version, data,"
                    " schedule_id) VALUES (?, ?, ?, ?, ?, ?)",
                    self._schedule_row(stored),
                )
        except sqlite3.IntegrityError as exc:
            raise ConcurrencyError(f"Schedule {schedule.schedule_id} already exists") from exc
        return stored

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        self.reads += 1
        rows = self._query("SELECT data FROM schedules WHERE schedule_id = ?", (schedule_id,))
        return Schedule.model_validate_json(rows[0][0]) if rows else None

    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        self.writes += 1
        stored = schedule.model_copy(update={"version": expected_version + 1}, deep=True)
        with self._write() as db:
            cur = db.execute(
                "UPDATE schedules SET workflow_name = ?, status = ?, created_at = ?, version = ?,"
                " data = ? WHERE schedule_id = ? AND version = ?",
                (*self._schedule_row(stored), expected_version),
            )
            if cur.rowcount == 0:
                raise ConcurrencyError(f"Schedule {schedule.schedule_id} changed concurrently")
        return stored

    async def delete_schedule(self, schedule_id: str) -> bool:
        self.writes += 1
        with self._write() as db:
            cur = db.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,))
            return cur.rowcount > 0

    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]:
        self.reads += 1
        where: list[str] = []
        params: list[Any] = []
        if workflow_name is not None:
            where.append("workflow_name = ?")
            params.append(workflow_name)
        if status is not None:
            where.append("status = ?")
            params.append(str(status))
        sql = "SELECT data FROM schedules"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._query(
            sql + " ORDER BY created_at DESC, schedule_id DESC LIMIT ?", [*params, limit]
        )
        return [Schedule.model_validate_json(r[0]) for r in rows]


def _check_batch(run_id: str, events: list[Event], *, first: int) -> None:
    """Reject malformed batches before touching the database: events must belong to ``run_id``
    and be consecutive from ``first`` (the gap-free rule; the stored maximum is checked later)."""
    for offset, event in enumerate(events):
        if event.run_id != run_id:
            raise ValueError(f"Event {event.event_id} belongs to run {event.run_id}")
        if event.sequence != first + offset:
            raise ConcurrencyError(
                f"Run {run_id}: sequence {event.sequence} is out of order "
                f"(expected {first + offset})"
            )


def _insert_events(db: sqlite3.Connection, events: list[Event]) -> None:
    if len(events) == 1:  # the hot path: skip executemany's iterator overhead
        e = events[0]
        db.execute(
            "INSERT INTO events (run_id, sequence, data) VALUES (?, ?, ?)",
            (e.run_id, e.sequence, e.model_dump_json()),
        )
    elif events:
        db.executemany(
            "INSERT INTO events (run_id, sequence, data) VALUES (?, ?, ?)",
            [(e.run_id, e.sequence, e.model_dump_json()) for e in events],
        )

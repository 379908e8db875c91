"""The storage contract in SQL, written once; a database is a small dialect subclass.

``SQLStorageBackend`` holds everything the SQL backends share: the schema (tables, keys and
listing indexes, rendered with the dialect's types), the conditional append (the primary key
``(run_id, sequence)`` refuses a taken sequence; the stored maximum is checked first), the
compare-and-set on the ``version`` column, the due-run query, the listing queries with their
filters, orders and cursors, row <-> model conversion and the mapping of database errors to the
contract's. It talks to the database only through ``SQLConnection`` (three awaitable calls,
``?`` placeholders) and a few hooks, so a dialect is a small file. See ``sql/sqlite.py``.

What a dialect provides (``Postgres``/``MySQL`` are sketched in brackets):

* ``_transaction()``: an async context manager yielding a ``SQLConnection`` inside one write
  transaction, committed on exit and rolled back on any exception. It must make the CAS
  race-free: either it takes the write lock up front (SQLite ``BEGIN IMMEDIATE``) or the dialect
  sets ``LOCK_ROW`` so the version read locks the row [``" FOR UPDATE"``];
* ``_fetch(sql, params)``: rows of one read outside a transaction [a pool's ``fetch``];
* its connection's translation of ``?`` placeholders [``$1..$n`` / ``%s``] and of the
  affected-row count [asyncpg's status text ``"UPDATE 1"``];
* ``UNIQUE_VIOLATION``: the exception types of a duplicate key [``UniqueViolationError`` /
  ``IntegrityError``];
* creating or migrating the schema on first connect, from ``schema_statements()`` [a version
  table instead of SQLite's ``PRAGMA user_version``], and ``close()``;
* optionally ``TYPES`` / ``TABLE_OPTIONS`` / ``INLINE_INDEXES`` [``VARCHAR(255)`` for indexed
  text, ``ENGINE=InnoDB ..``, indexes inside ``CREATE TABLE`` in MySQL],
  ``concat()`` [MySQL ``CONCAT()``], ``upsert()`` [MySQL ``ON DUPLICATE KEY UPDATE``] and
  ``DUE_SUFFIX`` [``" FOR UPDATE SKIP LOCKED"`` where the server has it, so pollers skip the
  rows another worker is claiming]. TTL/retention is a periodic ``DELETE`` a dialect may add.

Times are stored as fixed-width UTC ISO text in every dialect (``to_db_time``), so string order
is time order and the due key is one concatenation, the same as ``shared.due_key``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from pydantic import TypeAdapter

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, HookStatus, Page, RunStatus, Schedule, WorkflowRun
from pyworkflow.exceptions import ConcurrencyError, WorkflowNotFoundError
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.shared import (
    check_batch,
    check_run_record,
    check_run_version,
    decode_cursor,
    encode_cursor,
    hook_moved,
    is_due,
    require_version,
    schedule_exists,
    schedule_moved,
    sequence_taken,
    stamped,
    written,
)

_EVENT_LIST = TypeAdapter(list[Event])


class SQLConnection(Protocol):
    """What the shared SQL needs of a connection; statements use ``?`` placeholders."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None: ...


# --- schema: (column, abstract type, constraint); rendered by ``schema_statements`` -----------
TABLES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "runs": (
        ("run_id", "key", "PRIMARY KEY"),
        ("status", "key", "NOT NULL"),
        ("workflow_name", "key", "NOT NULL"),
        ("parent_run_id", "key", ""),
        ("created_at", "time", "NOT NULL"),
        ("wake_at", "time", ""),
        ("lease_expires_at", "time", ""),
        ("idempotency_key", "key", "UNIQUE"),
        ("version", "int", "NOT NULL"),
        ("data", "json", "NOT NULL"),
    ),
    "events": (
        ("run_id", "key", "NOT NULL"),
        ("sequence", "int", "NOT NULL"),
        ("data", "json", "NOT NULL"),
    ),
    "hooks": (
        ("token_hash", "key", "PRIMARY KEY"),
        ("run_id", "key", "NOT NULL"),
        ("hook_id", "key", "NOT NULL"),
        ("name", "key", "NOT NULL"),
        ("op", "int", "NOT NULL"),
        ("status", "key", "NOT NULL"),
        ("created_at", "time", "NOT NULL"),
        ("version", "int", "NOT NULL"),
        ("data", "json", "NOT NULL"),
    ),
    "schedules": (
        ("schedule_id", "key", "PRIMARY KEY"),
        ("workflow_name", "key", "NOT NULL"),
        ("status", "key", "NOT NULL"),
        ("created_at", "time", "NOT NULL"),
        ("version", "int", "NOT NULL"),
        ("data", "json", "NOT NULL"),
    ),
}
#: the conditional append: a taken (run_id, sequence) is a duplicate key
TABLE_KEYS = {"events": "PRIMARY KEY (run_id, sequence)"}
#: the listing indexes (name, table, columns): each listing is one range scan
INDEXES = (
    ("runs_created", "runs", "created_at, run_id"),
    ("runs_status", "runs", "status, created_at, run_id"),
    ("runs_workflow", "runs", "workflow_name, created_at, run_id"),
    ("runs_parent", "runs", "parent_run_id, created_at, run_id"),
    ("runs_wake", "runs", "status, wake_at"),
    ("runs_lease", "runs", "status, lease_expires_at"),
    ("hooks_run", "hooks", "run_id, created_at, op"),
    ("hooks_status", "hooks", "status, created_at, op"),
    ("schedules_workflow", "schedules", "workflow_name, created_at"),
)

# the run columns that carry an index, in the order ``_run_row`` returns them
_INDEXED_RUN_COLUMNS = (
    "status",
    "workflow_name",
    "parent_run_id",
    "created_at",
    "wake_at",
    "lease_expires_at",
)
_RUN_INSERT = (
    "INSERT INTO runs (status, workflow_name, parent_run_id, created_at, wake_at,"
    " lease_expires_at, version, data, run_id, idempotency_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_RUN_CURRENT = f"SELECT version, {', '.join(_INDEXED_RUN_COLUMNS)} FROM runs WHERE run_id = ?"
_EVENT_INSERT = "INSERT INTO events (run_id, sequence, data) VALUES (?, ?, ?)"
_HOOK_COLUMNS = ("run_id", "hook_id", "name", "op", "status", "created_at", "version", "data")
_SCHEDULE_COLUMNS = ("workflow_name", "status", "created_at", "version", "data")

# Mirrors ``shared.is_due``; results are re-checked with it, so the two cannot drift apart
# silently (a mismatch would only ever drop rows, never return wrong ones).
_DUE_WHERE = (
    "((status IN ('pending', 'running', 'interrupted')"
    " AND (lease_expires_at IS NULL OR lease_expires_at <= ?))"
    " OR (status = 'suspended' AND wake_at IS NOT NULL AND wake_at <= ?))"
)


def to_db_time(value: datetime | None) -> str | None:
    """Fixed-width UTC ISO text, so string order is time order. Naive values are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _where(filters: Sequence[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """`` WHERE a = ? AND ...`` for the filters that are set."""
    used = [(column, value) for column, value in filters if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(f"{c} = ?" for c, _ in used), [v for _, v in used]


class SQLStorageBackend(StorageBackend):
    """The contract on SQL; subclasses are dialects (see the module docstring)."""

    #: abstract column types -> this database's
    TYPES: ClassVar[dict[str, str]] = {
        "key": "TEXT",
        "time": "TEXT",
        "int": "INTEGER",
        "json": "TEXT",
    }
    #: text after a table's closing parenthesis, by table
    TABLE_OPTIONS: ClassVar[dict[str, str]] = {}
    #: declare the indexes inside ``CREATE TABLE`` (MySQL 8 has no ``CREATE INDEX IF NOT EXISTS``)
    INLINE_INDEXES: ClassVar[bool] = False
    #: appended to the version read of a compare-and-set (row lock where needed)
    LOCK_ROW: ClassVar[str] = ""
    #: appended to the due-run query
    DUE_SUFFIX: ClassVar[str] = ""
    #: the exception types a duplicate key raises
    UNIQUE_VIOLATION: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0
        due_key = self.concat(
            "CASE WHEN status = 'suspended' AND wake_at IS NOT NULL THEN wake_at"
            " ELSE created_at END",
            "'#'",
            "run_id",
        )
        self._due_sql = (
            f"SELECT data FROM runs WHERE {_DUE_WHERE} AND {due_key} > ?"
            f" ORDER BY {due_key} LIMIT ?{self.DUE_SUFFIX}"
        )
        self._hook_upsert = self.upsert("hooks", (*_HOOK_COLUMNS, "token_hash"), "token_hash")

    # --- the dialect -----------------------------------------------------------------------
    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[SQLConnection]: ...

    @abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    def concat(self, *parts: str) -> str:
        return "(" + " || ".join(parts) + ")"

    def upsert(self, table: str, columns: Sequence[str], key: str) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )

    def schema_statements(self) -> list[str]:
        """``CREATE TABLE``/``CREATE INDEX IF NOT EXISTS`` for ``TABLES`` and ``INDEXES`` (the
        indexes inside ``CREATE TABLE`` with ``INLINE_INDEXES``)."""
        statements = []
        for table, columns in TABLES.items():
            parts = [f"{c} {self.TYPES[t]} {constraint}".rstrip() for c, t, constraint in columns]
            if table in TABLE_KEYS:
                parts.append(TABLE_KEYS[table])
            if self.INLINE_INDEXES:
                parts += [f"INDEX {n} ({c})" for n, t, c in INDEXES if t == table]
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(parts)})"
                + self.TABLE_OPTIONS.get(table, "")
            )
        if not self.INLINE_INDEXES:
            statements += [f"CREATE INDEX IF NOT EXISTS {n} ON {t} ({c})" for n, t, c in INDEXES]
        return statements

    # --- rows ----------------------------------------------------------------------------------
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

    # --- runs ----------------------------------------------------------------------------------
    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        self.writes += 1
        check_batch(run.run_id, events, first=1)
        async with self._transaction() as tx:
            return await self._insert_run(tx, run, events)

    async def _insert_run(
        self, tx: SQLConnection, run: WorkflowRun, events: list[Event]
    ) -> WorkflowRun:
        stored = stamped(run, 1)
        try:
            await tx.execute(_RUN_INSERT, (*self._run_row(stored), run.run_id, run.idempotency_key))
            await _insert_events(tx, events)
        except self.UNIQUE_VIOLATION as exc:
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
        check_batch(run.run_id, events, first=events[0].sequence if events else 1)
        check_batch(new_run.run_id, new_events, first=1)
        async with self._transaction() as tx:
            stored = await self._append_in(tx, run.run_id, events, run, expected_version)
            await self._insert_run(tx, new_run, new_events)
        return written(stored)

    async def _one(self, model: Any, sql: str, *params: Any) -> Any:
        self.reads += 1
        rows = await self._fetch(sql, params)
        return model.model_validate_json(rows[0][0]) if rows else None

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        run: WorkflowRun | None = await self._one(
            WorkflowRun, "SELECT data FROM runs WHERE run_id = ?", run_id
        )
        return run

    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None:
        run: WorkflowRun | None = await self._one(
            WorkflowRun, "SELECT data FROM runs WHERE idempotency_key = ?", key
        )
        return run

    async def _replace_run(
        self, tx: SQLConnection, run_id: str, run: WorkflowRun, expected_version: int
    ) -> WorkflowRun:
        """The compare-and-set, inside the caller's write transaction (so the row cannot change
        between the read and the write).

        Only the indexed columns whose values changed are SET: SQLite rewrites the entries of
        every index covering a SET column, and a typical step changes none of them (about 4x
        faster than setting all). The idempotency key is never touched: it belongs to the run
        from creation on.
        """
        check_run_record(run_id, run)
        current = await tx.fetchone(_RUN_CURRENT + self.LOCK_ROW, (run_id,))
        check_run_version(run_id, current[0] if current else None, expected_version)
        if current is None:  # checked above; narrows the type
            raise WorkflowNotFoundError(run_id)
        stored = stamped(run, expected_version + 1)
        row = self._run_row(stored)
        changed = [
            (column, new)
            for column, old, new in zip(_INDEXED_RUN_COLUMNS, current[1:], row, strict=False)
            if old != new
        ]
        count = await tx.execute(
            f"UPDATE runs SET {''.join(f'{c} = ?, ' for c, _ in changed)}version = ?, data = ?"
            " WHERE run_id = ? AND version = ?",
            (*(v for _, v in changed), stored.version, row[-1], run_id, expected_version),
        )
        if count != 1:  # unreachable while the lock is held; never write blindly
            raise ConcurrencyError(f"Run {run_id} changed concurrently")
        return stored

    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        self.writes += 1
        async with self._transaction() as tx:
            return await self._replace_run(tx, run.run_id, run, expected_version)

    async def list_runs_page(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        self.reads += 1
        where, params = _where(
            (
                ("status", status.value if isinstance(status, RunStatus) else status),
                ("workflow_name", workflow_name),
                ("parent_run_id", parent_run_id),
            )
        )
        if cursor:
            created, after_id = decode_cursor(cursor)
            try:
                after_created = to_db_time(datetime.fromisoformat(created))
            except ValueError as exc:
                raise ValueError(f"Invalid cursor {cursor!r}") from exc
            # written so the index can range-scan on created_at, then filter the ties
            where += " AND " if where else " WHERE "
            where += "created_at <= ? AND (created_at < ? OR run_id < ?)"
            params += [after_created, after_created, after_id]
        sql = f"SELECT data FROM runs{where} ORDER BY created_at DESC, run_id DESC LIMIT ?"
        params.append(max(limit, 0) + 1)  # one extra row tells whether another page exists
        rows = await self._fetch(sql, params)
        runs = [WorkflowRun.model_validate_json(r[0]) for r in rows[:limit]]
        next_cursor = encode_cursor(runs[-1]) if len(rows) > limit and runs else None
        return Page(items=runs, next_cursor=next_cursor)

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        self.reads += 1
        at = to_db_time(now)
        rows = await self._fetch(self._due_sql, (at, at, after or "", limit))
        runs = (WorkflowRun.model_validate_json(r[0]) for r in rows)
        return [r for r in runs if is_due(r, now)]

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
        check_batch(run_id, events, first=events[0].sequence if events else 1)
        async with self._transaction() as tx:
            return await self._append_in(tx, run_id, events, run, expected_version)

    async def _append_in(
        self,
        tx: SQLConnection,
        run_id: str,
        events: list[Event],
        run: WorkflowRun | None,
        expected_version: int | None,
    ) -> WorkflowRun | None:
        """The conditional append, inside the caller's write transaction."""
        top = await tx.fetchone("SELECT MAX(sequence) FROM events WHERE run_id = ?", (run_id,))
        last = top[0] if top else None
        # runs are never deleted, so a run with events exists: skip the lookup on the hot path
        if last is None and not await tx.fetchone("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)):
            raise WorkflowNotFoundError(run_id)
        if events:
            expected = (last or 0) + 1
            if events[0].sequence != expected:
                raise sequence_taken(run_id, events[0].sequence, expected)
            try:
                await _insert_events(tx, events)
            except self.UNIQUE_VIOLATION as exc:  # a racing writer without a write lock
                raise ConcurrencyError(f"Run {run_id}: a sequence is taken") from exc
        if run is not None and expected_version is not None:
            return await self._replace_run(tx, run_id, run, expected_version)
        return None

    async def read_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        self.reads += 1
        rows = await self._fetch(
            "SELECT data FROM events WHERE run_id = ? AND sequence > ? ORDER BY sequence",
            (run_id, after_sequence),
        )
        # one validation of a JSON array is ~30% faster than one per row on long histories
        return _EVENT_LIST.validate_json("[" + ",".join(r[0] for r in rows) + "]")

    # --- hooks ---------------------------------------------------------------------------------
    async def create_hook(self, hook: Hook) -> None:
        self.writes += 1
        async with self._transaction() as tx:
            await tx.execute(self._hook_upsert, self._hook_row(stamped(hook, 1)))

    async def get_hook_by_hash(self, token_hash: str) -> Hook | None:
        hook: Hook | None = await self._one(
            Hook, "SELECT data FROM hooks WHERE token_hash = ?", token_hash
        )
        return hook

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        where, params = _where((("run_id", run_id), ("hook_id", hook_id), ("name", name)))
        hook: Hook | None = await self._one(
            Hook,
            f"SELECT data FROM hooks{where} ORDER BY created_at DESC, op DESC LIMIT 1",
            *params,
        )
        return hook

    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        self.writes += 1
        stored = stamped(hook, expected_version + 1)
        async with self._transaction() as tx:
            count = await tx.execute(
                f"UPDATE hooks SET {', '.join(f'{c} = ?' for c in _HOOK_COLUMNS)}"
                " WHERE token_hash = ? AND version = ?",
                (*self._hook_row(stored), expected_version),
            )
            if count == 0:
                raise hook_moved(hook)
        return stored

    async def read_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        self.reads += 1
        where, params = _where(
            (
                ("run_id", run_id),
                ("status", HookStatus(status).value if status is not None else None),
            )
        )
        rows = await self._fetch(
            f"SELECT data FROM hooks{where} ORDER BY created_at DESC, op DESC LIMIT ?",
            [*params, limit],
        )
        return [Hook.model_validate_json(r[0]) for r in rows]

    # --- schedules -----------------------------------------------------------------------------
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        self.writes += 1
        stored = stamped(schedule, 1)
        try:
            async with self._transaction() as tx:
                await tx.execute(
                    f"INSERT INTO schedules ({', '.join(_SCHEDULE_COLUMNS)}, schedule_id)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    self._schedule_row(stored),
                )
        except self.UNIQUE_VIOLATION as exc:
            raise schedule_exists(schedule.schedule_id) from exc
        return stored

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        schedule: Schedule | None = await self._one(
            Schedule, "SELECT data FROM schedules WHERE schedule_id = ?", schedule_id
        )
        return schedule

    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        self.writes += 1
        stored = stamped(schedule, expected_version + 1)
        async with self._transaction() as tx:
            count = await tx.execute(
                f"UPDATE schedules SET {', '.join(f'{c} = ?' for c in _SCHEDULE_COLUMNS)}"
                " WHERE schedule_id = ? AND version = ?",
                (*self._schedule_row(stored), expected_version),
            )
            if count == 0:
                raise schedule_moved(schedule.schedule_id)
        return stored

    async def delete_schedule(self, schedule_id: str) -> bool:
        self.writes += 1
        async with self._transaction() as tx:
            count = await tx.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,))
        return count > 0

    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]:
        self.reads += 1
        where, params = _where(
            (
                ("workflow_name", workflow_name),
                ("status", str(status) if status is not None else None),
            )
        )
        rows = await self._fetch(
            f"SELECT data FROM schedules{where} ORDER BY created_at DESC, schedule_id DESC LIMIT ?",
            [*params, limit],
        )
        return [Schedule.model_validate_json(r[0]) for r in rows]


async def _insert_events(tx: SQLConnection, events: list[Event]) -> None:
    if len(events) == 1:  # the hot path: skip executemany's iterator overhead
        e = events[0]
        await tx.execute(_EVENT_INSERT, (e.run_id, e.sequence, e.model_dump_json()))
    elif events:
        await tx.executemany(
            _EVENT_INSERT, [(e.run_id, e.sequence, e.model_dump_json()) for e in events]
        )

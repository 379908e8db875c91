"""What the client/server dialects (PostgreSQL, MySQL) share on top of ``base.py``.

* A connection pool made on first use, in the running event loop (a backend used from another
  loop later, e.g. a second ``asyncio.run``, gets a new pool: a pool cannot cross loops).
* Versioned migrations in a ``pyworkflow_schema_version`` table, applied on first connect
  under a server-wide lock (``pg_advisory_lock`` / ``GET_LOCK``), so several processes starting
  at once apply each step exactly once; an up-to-date database is only read.
* Lock conflicts the server resolves by aborting a transaction (deadlock, lock wait timeout,
  serialization failure) become ``ConcurrencyError``: the same answer a lost compare-and-set
  gives, which every caller already handles by reloading.
* Quiescence: ``in_flight`` counts the operations (reads, write transactions) awaiting the
  server, and ``wait_idle()`` returns once there are none. A server's reply arrives after no
  fixed number of event-loop turns, so a scheduler that must know when everything runnable has
  run (the deterministic simulation in ``tests/simulation``) waits for this instead of counting
  turns.
* Retention: ``purge_finished(before)`` deletes finished runs (and their events and hooks)
  completed before ``before``; ``pyworkflow db purge`` calls it, periodically from cron or a
  scheduled task (DynamoDB has TTL; these servers have a ``DELETE``).

Passwords come from the URL, or from a ``password`` callable evaluated for each new
connection (RDS IAM tokens expire after 15 minutes: see ``pyworkflow.storage.sql.aws``).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, ClassVar

from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.exceptions import ConcurrencyError, ConfigurationError
from pyworkflow.storage.sql.base import SQLConnection, SQLStorageBackend, to_db_time

__all__ = [
    "MIGRATIONS_TABLE",
    "SCHEMA_VERSION",
    "PasswordProvider",
    "ServerConnection",
    "ServerSQLStorageBackend",
]

#: bump when the schema changes, and add the step to ``migrations()``
SCHEMA_VERSION = 1
MIGRATIONS_TABLE = "pyworkflow_schema_version"
#: the key of the server-wide migration lock (advisory lock id / GET_LOCK name)
LOCK_KEY = 0x7079776F726B  # "pywork"

#: a fresh password per new connection (an IAM token), or None for the URL's
PasswordProvider = Callable[[], str | Awaitable[str]]

_TERMINAL = tuple(s.value for s in RunStatus if s.is_terminal)


class ServerConnection:
    """What a dialect's ``SQLConnection`` over one pooled connection shares: ``_sql`` counts
    the statement and gives it in the driver's placeholders."""

    __slots__ = ("_backend", "_conn")

    def __init__(self, conn: Any, backend: ServerSQLStorageBackend) -> None:
        self._conn = conn
        self._backend = backend

    def _sql(self, sql: str) -> str:
        self._backend.statements += 1
        return self._backend.dialect_sql(sql)


class ServerSQLStorageBackend(SQLStorageBackend):
    """Pool, transactions and reads, migrations, retention; a dialect adds its driver's calls
    (``_translate``, ``_begin``, ``_fetch_rows``, ``_is_conflict``, the pool's making and
    closing, ``_migrate``)."""

    #: a dialect's name in URLs, and in messages
    NAME: ClassVar[str] = "sql"
    TITLE: ClassVar[str] = "SQL"

    #: both servers lock the row a compare-and-set reads, and pollers skip the rows being
    #: claimed (PostgreSQL 9.5+, MySQL 8.0+, MariaDB 10.6+)
    LOCK_ROW: ClassVar[str] = " FOR UPDATE"
    DUE_SUFFIX: ClassVar[str] = " FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        dsn: str,
        options: Mapping[str, str],
        *,
        pool_size: int = 10,
        password: PasswordProvider | None = None,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """``dsn`` for the driver; ``options`` are ours from the URL's query (``pool_size``
        there wins over the argument)."""
        super().__init__()
        pool_size = int(options.get("pool_size", pool_size))
        if pool_size < 1:
            raise ConfigurationError(f"pool_size must be at least 1, got {pool_size}")
        self.dsn = dsn
        self.pool_size = pool_size
        self._password = password
        self._connect_kwargs = dict(connect_kwargs or {})
        self._pool: Any = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Lock | None = None
        self.schema_version: int | None = None
        #: SQL statements sent, BEGIN/COMMIT included (bench/local.py: statements per step)
        self.statements = 0
        self._sql: dict[str, str] = {}  # shared SQL -> this driver's, translated once
        self._in_flight = 0
        self._idle_waiters: list[asyncio.Future[None]] = []

    # --- the dialect's driver -----------------------------------------------------------------
    @abstractmethod
    def _translate(self, sql: str) -> str:
        """The shared SQL (``?`` placeholders) in the driver's own (``$1`` / ``%s``)."""

    @abstractmethod
    def _begin(self, pool: Any) -> AbstractAsyncContextManager[SQLConnection]:
        """One pooled connection inside a transaction, committed on exit, rolled back on any
        exception."""

    @abstractmethod
    async def _fetch_rows(self, pool: Any, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """The rows of one read (``sql`` already translated) on a pooled connection."""

    @abstractmethod
    def _is_conflict(self, exc: Exception) -> bool:
        """Whether the server aborted the transaction over a lock conflict."""

    async def _refresh_password(self, pool: Any) -> None:
        """Give the pool's next new connections a fresh password, if its driver needs that."""

    @abstractmethod
    async def _create_pool(self) -> Any: ...

    @abstractmethod
    async def _close_pool(self, pool: Any, *, same_loop: bool) -> None: ...

    @abstractmethod
    async def _migrate(self, pool: Any) -> None:
        """``apply_migrations`` on one connection, inside the server's migration lock."""

    # --- pool --------------------------------------------------------------------------------
    async def pool(self) -> Any:
        """The connection pool of the running loop, made (and the schema migrated) once."""
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._pool_loop is loop:
            return self._pool
        if self._connecting is None or self._pool_loop is not loop:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._pool is not None and self._pool_loop is loop:
                return self._pool
            if self._pool is not None:  # made in a loop that is gone or elsewhere
                old, self._pool = self._pool, None
                await self._close_pool(old, same_loop=False)
            self._pool_loop = loop
            pool = await self._create_pool()
            try:
                await self._migrate(pool)
            except BaseException:
                await self._close_pool(pool, same_loop=True)
                raise
            self._pool = pool
            return pool

    def dialect_sql(self, sql: str) -> str:
        """``_translate(sql)``, once per statement."""
        out = self._sql.get(sql)
        if out is None:
            out = self._sql[sql] = self._translate(sql)
        return out

    # --- the two ways the shared SQL reaches the server ----------------------------------------
    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[SQLConnection]:
        async with self._busy():
            pool = await self.pool()
            self.statements += 2  # BEGIN, COMMIT (or ROLLBACK): round trips too
            await self._refresh_password(pool)
            try:
                async with self._begin(pool) as conn:
                    yield conn
            except Exception as exc:
                if self._is_conflict(exc):
                    raise ConcurrencyError(
                        f"{self.TITLE} aborted a conflicting write: {exc}"
                    ) from exc
                raise

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        async with self._busy():
            pool = await self.pool()
            self.statements += 1
            await self._refresh_password(pool)
            return await self._fetch_rows(pool, self.dialect_sql(sql), params)

    async def migrate(self) -> int:
        """Connect and apply pending migrations (``pyworkflow db migrate``); the version."""
        await self.pool()
        return self.schema_version or SCHEMA_VERSION

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            same = self._pool_loop is asyncio.get_running_loop()
            await self._close_pool(pool, same_loop=same)

    # --- quiescence ---------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Operations (reads, write transactions, the first connect) awaiting the server now."""
        return self._in_flight

    async def wait_idle(self) -> None:
        """Return once no operation of this backend awaits the server (at once if none does)."""
        while self._in_flight:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    @contextlib.asynccontextmanager
    async def _busy(self) -> AsyncIterator[None]:
        """Count the enclosed operation in ``in_flight``; wake ``wait_idle`` at zero."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                waiters, self._idle_waiters = self._idle_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    # --- migrations --------------------------------------------------------------------------
    def migrations(self) -> list[tuple[int, list[str]]]:
        """(version, statements) in order; version 1 is the schema of ``base.py``."""
        return [(1, self.schema_statements())]

    async def apply_migrations(self, conn: SQLConnection) -> int:
        """Apply each missing step and record it; called with the migration lock held."""
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY,"
            " applied_at VARCHAR(40) NOT NULL)"
        )
        row = await conn.fetchone(f"SELECT MAX(version) FROM {MIGRATIONS_TABLE}")
        current = int(row[0]) if row and row[0] is not None else 0
        if current > SCHEMA_VERSION:
            raise ConfigurationError(
                f"The {self.NAME} database has schema version {current}, newer than this "
                f"pyworkflow supports ({SCHEMA_VERSION}). Upgrade pyworkflow."
            )
        for version, statements in self.migrations():
            if version <= current:
                continue
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, applied_at) VALUES (?, ?)",
                (version, to_db_time(datetime.now().astimezone())),
            )
            current = version
        self.schema_version = current
        return current

    # --- retention ---------------------------------------------------------------------------
    async def purge_finished(self, before: datetime, *, batch: int = 500) -> int:
        """Delete runs that finished before ``before`` with their events and hooks, in batches
        of ``batch`` runs (short transactions); the number of runs deleted."""
        cutoff = to_db_time(before) or ""
        placeholders = ", ".join("?" for _ in _TERMINAL)
        deleted = 0
        after = ""
        while True:
            # created_at <= cutoff narrows by index; completion is checked on the record
            rows = await self._fetch(
                f"SELECT run_id, data FROM runs WHERE status IN ({placeholders})"
                " AND created_at <= ? AND run_id > ? ORDER BY run_id LIMIT ?",
                (*_TERMINAL, cutoff, after, batch),
            )
            if not rows:
                return deleted
            after = rows[-1][0]
            done = []
            for run_id, data in rows:
                run = WorkflowRun.model_validate_json(data)
                finished = run.completed_at or run.updated_at
                if finished is not None and (to_db_time(finished) or "") < cutoff:
                    done.append(run_id)
            if done:
                marks = ", ".join("?" for _ in done)
                async with self._transaction() as tx:
                    for table in ("events", "hooks", "runs"):
                        await tx.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", done)
                deleted += len(done)


async def resolve_password(provider: PasswordProvider | None) -> str | None:
    """The provider's current password (sync or async), or None."""
    if provider is None:
        return None
    value = provider()
    if isinstance(value, Awaitable):
        return await value
    return value


def translate_placeholders(sql: str, style: Callable[[int], str]) -> str:
    """``?`` -> the driver's placeholders (``$1``.. / ``%s``); the shared SQL has no ``?`` in
    its literals."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(style(i))
        out.append(part)
    return "".join(out)

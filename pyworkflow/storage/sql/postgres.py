"""PostgreSQL storage (also Aurora PostgreSQL and RDS): the dialect of ``sql/base.py`` on asyncpg.

Why asyncpg: the most used and best maintained asyncio driver for PostgreSQL, binary protocol,
prepared statements cached per connection (each of the shared statements is parsed once per
connection), its own pool, and a ``password`` that may be a callable run for every new
connection, which is what RDS IAM tokens need.

What this dialect adds to the shared SQL: ``$n`` placeholders; text columns ``COLLATE "C"``
(the shared SQL compares keys and times as text, so their order must be code point order as
in Python, not the locale's, which ignores punctuation); ``SELECT .. FOR UPDATE`` for the
compare-and-set under READ COMMITTED; ``FOR UPDATE SKIP LOCKED`` on the due-run query, so a
poller passes over the runs another worker is writing; migrations under
``pg_advisory_lock``. ``schema=`` keeps the tables in their own schema (created if missing).

URL: ``postgresql://user:password@host:5432/db?schema=pyworkflow&pool_size=20``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage.sql.base import SQLConnection
from pyworkflow.storage.sql.server import (
    LOCK_KEY,
    MIGRATIONS_TABLE,
    SCHEMA_VERSION,
    PasswordProvider,
    ServerConnection,
    ServerSQLStorageBackend,
    translate_placeholders,
)

try:
    import asyncpg
except ImportError:  # pragma: no cover - the extra is missing; the constructor says so
    asyncpg = None

__all__ = ["PostgresStorageBackend"]

_TEXT = 'TEXT COLLATE "C"'
_CONFLICTS: tuple[type[BaseException], ...] = (
    (
        asyncpg.exceptions.DeadlockDetectedError,
        asyncpg.exceptions.SerializationError,
        asyncpg.exceptions.LockNotAvailableError,
    )
    if asyncpg is not None
    else ()
)


class _Connection(ServerConnection):
    """``SQLConnection`` over one asyncpg connection."""

    __slots__ = ()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        status: str = await self._conn.execute(self._sql(sql), *params)
        count = status.rpartition(" ")[2]  # "UPDATE 1", "INSERT 0 1", "CREATE TABLE"
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(self._sql(sql), rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        row: Sequence[Any] | None = await self._conn.fetchrow(self._sql(sql), *params)
        return row


class PostgresStorageBackend(ServerSQLStorageBackend):
    """The storage contract on PostgreSQL (see the module docstring)."""

    NAME: ClassVar[str] = "postgres"
    TITLE: ClassVar[str] = "PostgreSQL"
    TYPES: ClassVar[dict[str, str]] = {
        "key": _TEXT,
        "time": _TEXT,
        "int": "BIGINT",
        "json": "TEXT",
    }
    UNIQUE_VIOLATION: ClassVar[tuple[type[BaseException], ...]] = (
        (asyncpg.exceptions.UniqueViolationError,) if asyncpg is not None else ()
    )

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 10,
        schema: str | None = None,
        password: PasswordProvider | None = None,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if asyncpg is None:
            raise ConfigurationError(
                "PostgreSQL storage needs asyncpg: pip install 'pyworkflow-durable[postgres]'"
            )
        dsn, options = _split_options(dsn)
        super().__init__(
            dsn, options, pool_size=pool_size, password=password, connect_kwargs=connect_kwargs
        )
        self.schema = schema or options.get("schema")
        if self.schema is not None and not self.schema.replace("_", "").isalnum():
            raise ConfigurationError(f"schema must be letters, digits and _, got {self.schema!r}")

    # --- pool and migrations ------------------------------------------------------------------
    async def _create_pool(self) -> Any:
        kwargs: dict[str, Any] = dict(self._connect_kwargs)
        settings = dict(kwargs.pop("server_settings", None) or {})
        if self.schema:
            settings["search_path"] = self.schema
        if self._password is not None:
            kwargs["password"] = self._password  # asyncpg calls it for each new connection
        return await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self.pool_size,
            server_settings=settings,
            **kwargs,
        )

    async def _close_pool(self, pool: Any, *, same_loop: bool) -> None:
        if same_loop:
            await pool.close()
        else:
            pool.terminate()

    async def _migrate(self, pool: Any) -> None:
        async with pool.acquire() as conn:
            with contextlib.suppress(asyncpg.exceptions.UndefinedTableError):
                current = await conn.fetchval(f"SELECT MAX(version) FROM {MIGRATIONS_TABLE}")
                if current == SCHEMA_VERSION:  # up to date: no lock taken
                    self.schema_version = current
                    return
            await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            try:
                async with conn.transaction():
                    if self.schema:
                        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                    await self.apply_migrations(_Connection(conn, self))
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)

    # --- the dialect ---------------------------------------------------------------------------
    def _translate(self, sql: str) -> str:
        return translate_placeholders(sql, lambda i: f"${i}")

    @contextlib.asynccontextmanager
    async def _begin(self, pool: Any) -> AsyncIterator[SQLConnection]:
        async with pool.acquire() as conn, conn.transaction():
            yield _Connection(conn, self)

    async def _fetch_rows(self, pool: Any, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = await pool.fetch(sql, *params)
        return rows

    def _is_conflict(self, exc: Exception) -> bool:
        return isinstance(exc, _CONFLICTS)


def _split_options(dsn: str) -> tuple[str, dict[str, str]]:
    """Our options (``schema``, ``pool_size``) out of the URL's query; the rest stays for
    asyncpg (which sends unknown ones to the server as settings)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigurationError(f"not a PostgreSQL URL: {dsn!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in ("schema", "pool_size")}
    rest = [(k, v) for k, v in query if k not in ours]
    return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(rest))), ours

"""MySQL and MariaDB storage (also Aurora MySQL): the dialect of ``sql/base.py`` on aiomysql.

Why aiomysql: the asyncio driver of the aio-libs (PyMySQL underneath, pure Python, so no
client library to build), with a pool, maintained and released this year; asyncmy is faster
but ships compiled wheels for fewer platforms and has had long gaps between releases.

What this dialect adds to the shared SQL: ``%s`` placeholders; ``VARCHAR`` keys (MySQL cannot
index ``TEXT``) in ``utf8mb4_bin``, so text order is code point order as in Python;
``CONCAT()``; ``ON DUPLICATE KEY UPDATE``; indexes declared inside ``CREATE TABLE IF NOT
EXISTS`` (MySQL 8 has no ``CREATE INDEX IF NOT EXISTS``); READ COMMITTED sessions with
``SELECT .. FOR UPDATE`` for the compare-and-set (fewer gap locks, so fewer deadlocks); rows
*found* counted for ``UPDATE`` (``CLIENT.FOUND_ROWS``); ``FOR UPDATE SKIP LOCKED`` on the due
query (MySQL 8.0+, MariaDB 10.6+); migrations under ``GET_LOCK``. The database of the URL is
created if it does not exist.

URL: ``mysql://user:password@host:3306/pyworkflow?pool_size=20`` (``mariadb://`` too).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage.sql.base import TABLES, SQLConnection
from pyworkflow.storage.sql.server import (
    MIGRATIONS_TABLE,
    SCHEMA_VERSION,
    PasswordProvider,
    ServerConnection,
    ServerSQLStorageBackend,
    resolve_password,
    translate_placeholders,
)

try:
    import aiomysql
    import pymysql
    from pymysql.constants import CLIENT
except ImportError:  # pragma: no cover - the extra is missing; the constructor says so
    aiomysql = None

__all__ = ["MySQLStorageBackend"]

_LOCK_NAME = "pyworkflow_migrate"
_UNKNOWN_DATABASE = 1049
_CONFLICT_CODES = (1205, 1213)  # lock wait timeout, deadlock: the transaction was rolled back
_TABLE = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


class _Connection(ServerConnection):
    """``SQLConnection`` over one aiomysql connection."""

    __slots__ = ()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._conn.cursor() as cur:
            count: int = await cur.execute(self._sql(sql), tuple(params) or None)
            return count

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._conn.cursor() as cur:
            await cur.executemany(self._sql(sql), [tuple(r) for r in rows])

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        async with self._conn.cursor() as cur:
            await cur.execute(self._sql(sql), tuple(params) or None)
            row: Sequence[Any] | None = await cur.fetchone()
            return row


class MySQLStorageBackend(ServerSQLStorageBackend):
    """The storage contract on MySQL 8 / MariaDB 10.6+ (see the module docstring)."""

    NAME: ClassVar[str] = "mysql"
    TITLE: ClassVar[str] = "MySQL"
    TYPES: ClassVar[dict[str, str]] = {
        "key": "VARCHAR(255)",
        "time": "VARCHAR(40)",
        "int": "BIGINT",
        "json": "LONGTEXT",
    }
    TABLE_OPTIONS: ClassVar[dict[str, str]] = dict.fromkeys(TABLES, _TABLE)
    INLINE_INDEXES: ClassVar[bool] = True
    UNIQUE_VIOLATION: ClassVar[tuple[type[BaseException], ...]] = (
        (pymysql.err.IntegrityError,) if aiomysql is not None else ()
    )

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 10,
        password: PasswordProvider | None = None,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if aiomysql is None:
            raise ConfigurationError(
                "MySQL storage needs aiomysql: pip install 'pyworkflow-durable[mysql]'"
            )
        self._params, options = _parse_url(dsn)
        super().__init__(
            dsn, options, pool_size=pool_size, password=password, connect_kwargs=connect_kwargs
        )
        self._params.update(self._connect_kwargs)

    # --- schema ------------------------------------------------------------------------------
    def concat(self, *parts: str) -> str:
        return f"CONCAT({', '.join(parts)})"

    def upsert(self, table: str, columns: Sequence[str], key: str) -> str:
        updates = ", ".join(f"{c} = VALUES({c})" for c in columns if c != key)
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            f" ON DUPLICATE KEY UPDATE {updates}"
        )

    # --- pool and migrations ------------------------------------------------------------------
    async def _connect_params(self) -> dict[str, Any]:
        params = dict(self._params)
        token = await resolve_password(self._password)
        if token is not None:
            params["password"] = token
        return params

    async def _create_pool(self) -> Any:
        params = await self._connect_params()
        try:
            return await self._new_pool(params)
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != _UNKNOWN_DATABASE:
                raise
        # the URL's database does not exist yet: create it, as the schema is
        db = params.pop("db")
        conn = await aiomysql.connect(**params)
        try:
            async with conn.cursor() as cur:
                await cur.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{db}`"
                    " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
        finally:
            conn.close()
        return await self._new_pool({**params, "db": db})

    async def _new_pool(self, params: dict[str, Any]) -> Any:
        return await aiomysql.create_pool(
            minsize=1,
            maxsize=self.pool_size,
            autocommit=True,
            charset="utf8mb4",
            client_flag=CLIENT.FOUND_ROWS,
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            **params,
        )

    async def _close_pool(self, pool: Any, *, same_loop: bool) -> None:
        pool.close()
        if same_loop:
            await pool.wait_closed()

    async def _refresh_password(self, pool: Any) -> None:
        """An IAM token for the pool's next new connections (the provider caches it)."""
        if self._password is not None:
            pool._conn_kwargs["password"] = await resolve_password(self._password)

    async def _migrate(self, pool: Any) -> None:
        async with pool.acquire() as conn:
            tx = _Connection(conn, self)
            with contextlib.suppress(pymysql.err.ProgrammingError):  # no table yet
                row = await tx.fetchone(f"SELECT MAX(version) FROM {MIGRATIONS_TABLE}")
                if row and row[0] == SCHEMA_VERSION:  # up to date: no lock taken
                    self.schema_version = SCHEMA_VERSION
                    return
            # DDL commits implicitly in MySQL: the lock, not a transaction, keeps processes
            # from interleaving; every step is IF NOT EXISTS, so a crashed step can rerun
            await tx.fetchone("SELECT GET_LOCK(?, 120)", (_LOCK_NAME,))
            await tx.execute("SET SESSION sql_notes = 0")  # no "already exists" warnings
            try:
                await self.apply_migrations(tx)
            finally:
                await tx.execute("SET SESSION sql_notes = 1")
                await tx.fetchone("SELECT RELEASE_LOCK(?)", (_LOCK_NAME,))

    # --- the dialect ---------------------------------------------------------------------------
    def _translate(self, sql: str) -> str:
        return translate_placeholders(sql.replace("%", "%%"), lambda _: "%s")

    @contextlib.asynccontextmanager
    async def _begin(self, pool: Any) -> AsyncIterator[SQLConnection]:
        async with pool.acquire() as conn:
            await conn.begin()
            try:
                yield _Connection(conn, self)
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def _fetch_rows(self, pool: Any, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, tuple(params) or None)
            rows: list[Sequence[Any]] = list(await cur.fetchall())
            return rows

    def _is_conflict(self, exc: Exception) -> bool:
        return (
            isinstance(exc, pymysql.err.OperationalError)
            and bool(exc.args)
            and exc.args[0] in _CONFLICT_CODES
        )


def _parse_url(dsn: str) -> tuple[dict[str, Any], dict[str, str]]:
    """aiomysql's connect arguments and our options from ``mysql://user:pw@host:port/db``."""
    parts = urlsplit(dsn)
    scheme = parts.scheme.split("+")[0]
    if scheme not in ("mysql", "mariadb"):
        raise ConfigurationError(f"not a MySQL URL: {dsn!r}")
    db = parts.path.lstrip("/")
    if not db or not db.replace("_", "").isalnum():
        raise ConfigurationError(
            f"the MySQL URL must name a database (letters, digits, _): {dsn!r}"
        )
    options = dict(parse_qsl(parts.query))
    params: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "db": db,
    }
    if options.get("ssl") in ("1", "true", "required"):
        import ssl

        params["ssl"] = ssl.create_default_context()
    return params, options

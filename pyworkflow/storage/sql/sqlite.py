"""SQLite storage: the embedded default. One file, safe to share between processes.

The SQL is ``sql/base.py``'s; this is the SQLite dialect: the connection (stdlib ``sqlite3``,
``?`` placeholders as is), the write transaction, the schema version in ``PRAGMA user_version``
and ``WITHOUT ROWID`` for the events table.

Why stdlib ``sqlite3`` called synchronously from async methods: every call is a short indexed
statement on a local file (microseconds), far cheaper than hopping to a thread per call. The
connection's awaitables never suspend, so no method yields while a transaction is open and
asyncio tasks sharing one backend can never interleave inside a transaction.

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
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage.sql.base import SQLStorageBackend, to_db_time

__all__ = ["SCHEMA_VERSION", "SQLiteStorageBackend", "to_db_time"]

#: bump when the schema changes, and add a migration step in ``_migrate``
SCHEMA_VERSION = 1


class _Transaction:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``, and the ``SQLConnection`` used inside it."""

    __slots__ = ("_backend", "_db")

    def __init__(self, backend: SQLiteStorageBackend) -> None:
        self._backend = backend
        self._db: sqlite3.Connection | None = None

    async def __aenter__(self) -> _Transaction:
        db = self._backend._conn()
        lock = self._backend._lock
        lock.acquire()
        try:
            db.execute("BEGIN IMMEDIATE")
        except BaseException:
            lock.release()
            raise
        self._db = db
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db = self._db
        try:
            if db is None:
                return
            if kind is None:
                try:
                    db.execute("COMMIT")
                    return
                except BaseException:
                    if db.in_transaction:  # a failed COMMIT too, so the next BEGIN works
                        db.execute("ROLLBACK")
                    raise
            if db.in_transaction:
                db.execute("ROLLBACK")
        finally:
            self._db = None
            self._backend._lock.release()

    def _live(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the SQLite transaction is over")
        return self._db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._live().execute(sql, params).rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._live().executemany(sql, rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        row: Sequence[Any] | None = self._live().execute(sql, params).fetchone()
        return row


class SQLiteStorageBackend(SQLStorageBackend):
    """The contract of ``StorageBackend`` on one SQLite file (see module docstring for why)."""

    TABLE_OPTIONS: ClassVar[dict[str, str]] = {"events": " WITHOUT ROWID"}
    UNIQUE_VIOLATION: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.IntegrityError,)

    def __init__(self, db_path: str | Path = ".pyworkflow/pyworkflow.db") -> None:
        super().__init__()
        self.db_path = Path(db_path)
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
            for statement in self.schema_statements():
                db.execute(statement)
            # future: `if current < 2: ...` steps go here, before the version is bumped
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _transaction(self) -> _Transaction:
        """One write transaction. Any exception rolls everything back, so nothing half-written."""
        return _Transaction(self)

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        db = self._conn()
        with self._lock:
            return db.execute(sql, params).fetchall()

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

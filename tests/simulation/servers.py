"""Simulating on a database server (PostgreSQL, MariaDB): the stores and their round trips.

A server's reply arrives after no fixed number of event-loop turns, so the driver's ``settle``
cannot count turns: it waits for the stores' in-flight operations (``wait_idle``) instead. That
alone lets replies come back in any order while other drives run, so a seed may take another
path each time. ``RoundTrips`` makes it reproducible: a storage operation starts only when the
driver grants it, and the driver grants the next one (first asked, first granted) only when
nothing else can run. While it is under way nothing else runs, so its reply changes nothing but
its own drive: same seed, same trace, as on SQLite.

Configurations: ``postgres``/``mysql`` take turns (reproducible); ``postgres-concurrent``/
``mysql-concurrent`` let round trips overlap as real workers' do (row locks, ``SKIP LOCKED`` and
the server's conflict aborts come into play; a seed is not guaranteed to replay exactly).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from pyworkflow.storage.sql.mysql import MySQLStorageBackend
from pyworkflow.storage.sql.postgres import PostgresStorageBackend
from pyworkflow.storage.sql.server import ServerSQLStorageBackend

SERVER_CONFIGS = ("postgres", "mysql", "postgres-concurrent", "mysql-concurrent")
POOL_SIZE = 4  # connections per worker's pool: up to 8 workers and the observer per seed


class RoundTrips:
    """The turns of one seed's storage operations, granted by the driver (see the module)."""

    def __init__(self) -> None:
        self.asking: collections.deque[asyncio.Future[None]] = collections.deque()
        self.current: asyncio.Future[None] | None = None  # done when the granted one ends
        self.environment: asyncio.Task[object] | None = None  # its reads need no turn

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and task is self.environment:
            yield  # the driver reads only while everything else is settled
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.asking.append(granted)
        try:
            await granted
            yield
        finally:
            # a drive cancelled while it asked cancelled ``granted`` too: ``step`` skips it
            if granted.done() and not granted.cancelled():
                ended, self.current = self.current, None
                if ended is not None and not ended.done():
                    ended.set_result(None)

    async def step(self) -> bool:
        """Nothing can run: wait for the operation under way, or grant the next one; whether
        there was one."""
        if self.current is not None:
            await asyncio.shield(self.current)
            return True
        while self.asking:
            granted = self.asking.popleft()
            if not granted.cancelled():  # its drive was cancelled while it waited
                self.current = asyncio.get_running_loop().create_future()
                granted.set_result(None)
                return True
        return False


class _TurnTaking:
    """A server store whose every operation waits for its turn (inside ``in_flight``)."""

    round_trips: RoundTrips | None = None

    @contextlib.asynccontextmanager
    async def _busy(self) -> AsyncIterator[None]:
        async with super()._busy():  # type: ignore[misc]
            if self.round_trips is None:
                yield
            else:
                async with self.round_trips.turn():
                    yield


class SimPostgres(_TurnTaking, PostgresStorageBackend):
    pass


class SimMySQL(_TurnTaking, MySQLStorageBackend):
    pass


def kind_of(config: str) -> str:
    return config.split("-")[0]


def store_url(kind: str, name: str) -> str:
    """The URL of a store of its own (schema / database ``name``) on the session's server of
    ``kind`` (``tests/storage/sql_servers.py``: started on first use, stopped at exit)."""
    from tests.storage.sql_servers import server

    url = server(kind).url
    if kind == "postgres":
        return f"{url}?schema={name}"
    return url.rsplit("/", 1)[0] + "/" + name


def make_server_store(
    config: str, url: str, round_trips: RoundTrips | None
) -> ServerSQLStorageBackend:
    cls = SimPostgres if kind_of(config) == "postgres" else SimMySQL
    store = cls(url, pool_size=POOL_SIZE)
    store.round_trips = round_trips
    return store


async def drop_store(store: ServerSQLStorageBackend) -> None:
    """Drop the simulation's schema / database, so a sweep of many seeds leaves nothing."""
    if isinstance(store, PostgresStorageBackend):
        statement = f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE'
    else:
        statement = f"DROP DATABASE IF EXISTS `{store.dsn.rsplit('/', 1)[1]}`"
    async with store._transaction() as tx:
        await tx.execute(statement)

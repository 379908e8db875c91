"""Quiescence of the PostgreSQL/MySQL backends: ``in_flight`` counts the operations awaiting the
server and ``wait_idle()`` returns once none does. The deterministic simulation settles on it
(``tests/simulation/driver.py``): a server's reply comes after no fixed number of loop turns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pyworkflow.exceptions import ConcurrencyError
from tests.storage.sql_servers import SQL_SERVERS, make_sql_backend
from tests.storage.test_contract import make_events, make_run


@pytest.mark.parametrize("kind", SQL_SERVERS)
async def test_wait_idle_returns_once_no_read_or_write_awaits_the_server(
    kind: str, tmp_path: Path
) -> None:
    backend = make_sql_backend(kind, tmp_path)
    try:
        await backend.migrate()
        assert backend.in_flight == 0
        await backend.wait_idle()  # nothing in flight: returns at once
        write = asyncio.ensure_future(backend.create_run(make_run("r1"), make_events("r1", 1, 1)))
        read = asyncio.ensure_future(backend.get_run("absent"))
        await asyncio.sleep(0)  # both ran up to their first round trip
        assert backend.in_flight == 2
        await backend.wait_idle()
        assert write.done() and read.done() and backend.in_flight == 0
        assert await read is None
        assert (await write).run_id == "r1"
    finally:
        await backend.close()


@pytest.mark.parametrize("kind", SQL_SERVERS)
async def test_a_failed_operation_leaves_the_in_flight_count(kind: str, tmp_path: Path) -> None:
    """A write the server refuses (a taken run id) still ends its count, or settling would
    wait for it forever."""
    backend = make_sql_backend(kind, tmp_path)
    try:
        await backend.create_run(make_run("r1"), make_events("r1", 1, 1))
        with pytest.raises(ConcurrencyError):
            await backend.create_run(make_run("r1"), make_events("r1", 1, 1))
        assert backend.in_flight == 0
        await backend.wait_idle()
    finally:
        await backend.close()

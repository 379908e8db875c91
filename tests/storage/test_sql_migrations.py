"""Migrations and retention on the PostgreSQL/MySQL servers: versions applied once under the
server's lock even when processes start together, a newer schema refused, finished runs purged."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pyworkflow.core.models import RunStatus
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage.sql.server import MIGRATIONS_TABLE, SCHEMA_VERSION
from tests.storage.sql_servers import SQL_SERVERS, database_url, make_sql_backend
from tests.storage.test_contract import make_events, make_run

REPO = Path(__file__).resolve().parents[2]
OPEN = """
import asyncio, sys
from pyworkflow.storage.sql.urls import backend_from_url
async def main():
    b = backend_from_url(sys.argv[1])
    print(await b.migrate())
    await b.close()
asyncio.run(main())
"""


async def versions(kind: str, tmp_path: Path) -> list[int]:
    backend = make_sql_backend(kind, tmp_path)
    try:
        rows = await backend._fetch(f"SELECT version FROM {MIGRATIONS_TABLE} ORDER BY version")
        return [int(r[0]) for r in rows]
    finally:
        await backend.close()


@pytest.mark.parametrize("kind", SQL_SERVERS)
def test_processes_starting_together_apply_each_migration_once(kind: str, tmp_path: Path) -> None:
    url = database_url(kind, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1][-800:] for o in outputs]
    assert {o[0].decode().strip() for o in outputs} == {str(SCHEMA_VERSION)}
    assert asyncio.run(versions(kind, tmp_path)) == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.parametrize("kind", SQL_SERVERS)
async def test_reopening_an_up_to_date_database_changes_nothing(kind: str, tmp_path: Path) -> None:
    for _ in range(2):
        backend = make_sql_backend(kind, tmp_path)
        assert await backend.migrate() == SCHEMA_VERSION
        await backend.close()
    assert await versions(kind, tmp_path) == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.parametrize("kind", SQL_SERVERS)
async def test_a_newer_schema_is_refused(kind: str, tmp_path: Path) -> None:
    first = make_sql_backend(kind, tmp_path)
    await first.migrate()
    async with first._transaction() as tx:
        await tx.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, applied_at) VALUES (?, ?)",
            (SCHEMA_VERSION + 1, "later"),
        )
    await first.close()
    second = make_sql_backend(kind, tmp_path)
    with pytest.raises(ConfigurationError, match="newer"):
        await second.get_run("x")
    await second.close()


@pytest.mark.parametrize("kind", SQL_SERVERS)
async def test_purge_deletes_runs_finished_before_the_cutoff(kind: str, tmp_path: Path) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    backend = make_sql_backend(kind, tmp_path)
    try:
        for run_id, status, finished in (
            ("old-done", RunStatus.COMPLETED, now - timedelta(days=40)),
            ("old-failed", RunStatus.FAILED, now - timedelta(days=31)),
            ("recent-done", RunStatus.COMPLETED, now - timedelta(days=2)),
            ("old-running", RunStatus.RUNNING, None),
        ):
            run = make_run(run_id, created=now - timedelta(days=50))
            stored = await backend.create_run(run, make_events(run_id, 1, 2))
            await backend.update_run(
                stored.model_copy(update={"status": status, "completed_at": finished}),
                expected_version=stored.version,
            )
        deleted = await backend.purge_finished(now - timedelta(days=30), batch=2)
        assert deleted == 2
        assert await backend.get_run("old-done") is None
        assert await backend.get_events("old-failed") == []
        assert await backend.get_run("recent-done") is not None
        assert await backend.get_run("old-running") is not None
        assert len(await backend.get_events("old-running")) == 2
    finally:
        await backend.close()

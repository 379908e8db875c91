"""Four worker processes on one PostgreSQL/MySQL database drive 500 runs: each run completes
exactly once (one ending event, one completed status), every step's result is recorded once,
and the processes really shared the work."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyworkflow.core.events import EventType
from pyworkflow.core.models import RunStatus
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.storage.sql.urls import backend_from_url
from tests.faults import sql_worker
from tests.faults.harness import QueuedLocalRuntime
from tests.storage.sql_servers import SQL_SERVERS, database_url

RUNS = 500
WORKERS = 4
REPO = Path(__file__).resolve().parents[2]


async def create_runs(url: str) -> list[str]:
    rt = QueuedLocalRuntime(backend_from_url(url))
    defn = get_workflow_by_func(sql_worker.two_steps)
    assert defn is not None
    try:
        return [(await rt.executor.create(defn, (f"k{i}",), {}))[0].run_id for i in range(RUNS)]
    finally:
        await rt.storage.close()


async def histories(url: str, run_ids: list[str]) -> dict[str, tuple[RunStatus, list[EventType]]]:
    storage = backend_from_url(url)
    try:
        out = {}
        for run_id in run_ids:
            run = await storage.get_run(run_id)
            assert run is not None
            out[run_id] = (run.status, [e.type for e in await storage.get_events(run_id)])
        return out
    finally:
        await storage.close()


@pytest.mark.parametrize("kind", SQL_SERVERS)
def test_four_worker_processes_complete_each_run_once(kind: str, tmp_path: Path) -> None:
    url = database_url(kind, tmp_path)
    run_ids = asyncio.run(create_runs(url))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    outs = [tmp_path / f"worker{i}.json" for i in range(WORKERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.faults.sql_worker", url, str(out)], env=env, cwd=REPO
        )
        for out in outs
    ]
    for p in procs:
        assert p.wait(timeout=600) == 0
    reports = [json.loads(out.read_text()) for out in outs]
    assert [r["errors"] for r in reports] == [[]] * WORKERS
    # steps each process executed (a run seen already completed is not work done)
    shares = [sum(r["executed"].values()) for r in reports]
    print(f"\n{kind}: {RUNS} runs, step executions per process: {shares}")
    assert sum(1 for n in shares if n > 0) >= 2  # the work was shared

    found = asyncio.run(histories(url, run_ids))
    for run_id, (status, types) in found.items():
        assert status == RunStatus.COMPLETED, run_id
        assert types.count(EventType.WORKFLOW_COMPLETED) == 1, (run_id, types)
        assert types.count(EventType.STEP_COMPLETED) == 2, (run_id, types)
    executed: dict[str, int] = {}
    for r in reports:
        for name, n in r["executed"].items():
            executed[name] = executed.get(name, 0) + n
    assert len(executed) == 2 * RUNS  # every step ran ...
    assert max(executed.values()) == 1  # ... once: the leases kept the other processes out

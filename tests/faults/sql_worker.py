"""One worker process of ``test_sql_workers``: ``python -m tests.faults.sql_worker URL OUT``.

Drives due runs of ``sqlw_two_steps`` on the database at URL until none has been due for a few
passes, and writes (run id, step executions) of what it ran to OUT as JSON: the test adds up
every process's executions and completions."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

from pyworkflow import step, workflow
from pyworkflow.runtime.local import LocalRuntime
from pyworkflow.runtime.worker import WorkerStats, run_once
from pyworkflow.storage.sql.urls import backend_from_url

EXECUTED: Counter[str] = Counter()


@step
async def sqlw_add(run_key: str, i: int, total: int) -> int:
    EXECUTED[f"{run_key}:{i}"] += 1
    await asyncio.sleep(0)
    return total + i


@workflow(name="sqlw_two_steps")
async def two_steps(run_key: str) -> int:
    total = await sqlw_add(run_key, 1, 0)
    return await sqlw_add(run_key, 2, total)


class _Queued(LocalRuntime):
    def spawn(self, run_id: str) -> None:  # only worker passes drive runs
        return None


async def main(url: str, out: str) -> None:
    rt = _Queued(backend_from_url(url, pool_size=8), lease_seconds=60)
    stats = WorkerStats()
    idle = 0
    while idle < 5:
        before = stats.driven
        await run_once(rt, stats)
        idle = idle + 1 if stats.driven == before else 0
        await asyncio.sleep(0.02 if idle else 0)
    await rt.storage.close()
    report = {"executed": EXECUTED, "errors": stats.errors}
    await asyncio.to_thread(Path(out).write_text, json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))

"""Versioning: deploy a change while runs are in flight, with ``patched()`` and ``replay``.

    python examples/patching.py [--db PATH]

What to notice:

* version 1 of ``order`` is deployed; run A starts and waits in ``sleep("1h")``;
* version 2 adds a fraud check before the sleep. Written plainly it would break run A (its
  history has the sleep where v2 calls the new step): ``replay_history`` shows the
  nondeterminism, as ``pyworkflow replay`` does in CI, before anything is deployed;
* written with ``if patched("fraud-check"):`` it replays run A fine: A keeps the old path
  (``patched`` is False where A's history has the sleep), while a new run B takes the new one
  and records a ``patch.applied`` marker;
* each run records the workflow ``version`` it started with.

Runs on the embedded SQLite storage (a fresh file under .pyworkflow/ unless --db is given).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pyworkflow
from pyworkflow import (
    SQLiteStorageBackend,
    get_workflow_events,
    get_workflow_run,
    patched,
    replay_history,
    resume,
    sleep,
    start,
    step,
    workflow,
)

DEFAULT_DB = Path(".pyworkflow/examples/patching.db")


@step
async def reserve(order_id: str) -> str:
    print(f"  step reserve({order_id})")
    return f"res-{order_id}"


@step
async def fraud_check(order_id: str) -> str:
    print(f"  step fraud_check({order_id})")
    return "clear"


@step
async def ship(order_id: str) -> str:
    print(f"  step ship({order_id})")
    return f"shipped-{order_id}"


def deploy(version: str):
    """Define ``order`` as the given version of the code (a deploy, in one process)."""

    @workflow(name="order", version=version)
    async def order(order_id: str) -> list[str]:
        steps = [await reserve(order_id)]
        if version == "2-plain":
            steps.append(await fraud_check(order_id))
        elif version == "2" and patched("fraud-check"):
            steps.append(await fraud_check(order_id))
        await sleep("1s")
        steps.append(await ship(order_id))
        return steps

    return order


async def check(run_id: str, label: str) -> None:
    report = await replay_history(await get_workflow_events(run_id),
                                  run=await get_workflow_run(run_id))
    if report.ok:
        print(f"  replay of run A against {label}: ok ({report.ending})")
    else:
        d = report.divergence
        assert d is not None
        print(f"  replay of run A against {label}: NONDETERMINISM at operation #{d.op}: "
              f"history {d.expected}, code {d.found}")


async def wait_done(run_id: str) -> None:
    """The embedded runtime's timer resumes the run after its 1 s sleep."""
    for _ in range(300):
        if (await get_workflow_run(run_id)).status.is_terminal:
            return
        await asyncio.sleep(0.1)
    await resume(run_id)


async def main(db: Path) -> None:
    pyworkflow.configure(storage=SQLiteStorageBackend(db))
    print("deploy version 1")
    v1 = deploy("1")
    run_a = await start(v1, "A")
    print(f"script: run A {run_a} is {(await get_workflow_run(run_a)).status} at the sleep")

    print("deploy candidate 2-plain (fraud check added without patched()): check first")
    deploy("2-plain")
    await check(run_a, "2-plain")
    print("deploy candidate 2 (fraud check behind patched('fraud-check')): check first")
    v2 = deploy("2")
    await check(run_a, "version 2")
    print("version 2 deployed; new run B starts")
    run_b = await start(v2, "B")
    await wait_done(run_a)
    await wait_done(run_b)

    print()
    for label, run_id in (("A", run_a), ("B", run_b)):
        run = await get_workflow_run(run_id)
        kinds = [e.type.value for e in await get_workflow_events(run_id)]
        print(f"Run {label} {run_id}: status {run.status}, version {run.metadata.get('version')}, "
              f"result {run.get_result()}, patch.applied recorded: {'patch.applied' in kinds}")
    print(f"Check a saved history in CI: pyworkflow --db {db} runs logs {run_a} -o json > a.json;"
          " pyworkflow -m myapp replay a.json")


def parse_db(default: Path) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None,
                        help=f"SQLite file to use (default: a fresh {default})")
    args = parser.parse_args()
    if args.db is not None:
        return args.db
    default.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{default}{suffix}").unlink(missing_ok=True)
    return default


if __name__ == "__main__":
    asyncio.run(main(parse_db(DEFAULT_DB)))

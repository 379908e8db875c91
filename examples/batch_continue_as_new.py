"""Batch processing with continue_as_new: one short run per batch, each with a fresh history.

    python examples/batch_continue_as_new.py [--db PATH]

The batch-processor pattern of the pyworkflow-engine docs: ``batch_processor(offset=0,
batch_size=...)`` fetches and processes one batch through steps, then calls
``continue_as_new(offset=offset + batch_size, ...)``. That ends the run (status
``continued_as_new``) and starts a new run of the same workflow with the new arguments and an
empty history, so however many records there are, no single history grows past a few events.
``get_workflow_chain`` lists the linked runs, oldest first.

Runs on the embedded SQLite storage (a fresh file under .pyworkflow/ unless --db is given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path

import pyworkflow
from pyworkflow import (
    SQLiteStorageBackend,
    continue_as_new,
    get_workflow_chain,
    get_workflow_events,
    get_workflow_run,
    start,
    step,
    workflow,
)

DEFAULT_DB = Path(".pyworkflow/examples/batch_continue_as_new.db")

RECORDS = [f"record-{i:02d}" for i in range(10)]  # stands in for a table or an API to page


@step
async def fetch_batch(offset: int, batch_size: int) -> list[str]:
    items = RECORDS[offset:offset + batch_size]
    print(f"  step fetch_batch(offset={offset}): {len(items)} item(s)")
    return items


@step
async def process_batch(items: list[str]) -> int:
    print(f"  step process_batch: processed {items[0]} .. {items[-1]}")
    return len(items)


@workflow
async def batch_processor(offset: int = 0, batch_size: int = 4, processed: int = 0) -> dict:
    print(f"run of batch_processor(offset={offset}, batch_size={batch_size}, "
          f"processed={processed})")
    items = await fetch_batch(offset, batch_size)
    if not items:
        print("  nothing left: returning the total")
        return {"total_processed": processed, "batches": offset // batch_size}
    count = await process_batch(items)
    print(f"  continue_as_new(offset={offset + batch_size}, ...)")
    continue_as_new(offset=offset + batch_size, batch_size=batch_size, processed=processed + count)


async def main(db: Path) -> None:
    pyworkflow.configure(storage=SQLiteStorageBackend(db))
    print(f"script: start(batch_processor, offset=0, batch_size=4) on {db}; "
          f"{len(RECORDS)} records to process")
    print()
    run_id = await start(batch_processor, offset=0, batch_size=4)
    print()
    print(f"script: start() returned the first run's id {run_id}; it drove the whole chain inline")

    chain = await get_workflow_chain(run_id)
    print()
    print(f"The chain: {len(chain)} runs, oldest first (each history starts empty):")
    print(f"  {'#':>2}  {'run id':<22} {'status':<17} {'offset':>6}  events")
    for i, run in enumerate(chain, 1):
        events = await get_workflow_events(run.run_id)
        offset = json.loads(run.input_kwargs).get("offset")
        kinds = Counter(e.type.value for e in events)
        summary = ", ".join(f"{t}" + (f" x{n}" if n > 1 else "") for t, n in kinds.items())
        print(f"  {i:>2}  {run.run_id:<22} {run.status.value:<17} {offset:>6}  "
              f"{len(events)}: {summary}")
    links = " -> ".join(r.run_id for r in chain)
    print(f"Linked by continued_to_run_id / continued_from_run_id: {links}")

    last = await get_workflow_run(chain[-1].run_id)
    print()
    print(f"Run {last.run_id} (last of the chain): status {last.status}")
    print(f"Result: {last.get_result()}")
    print(f"Inspect it: pyworkflow --db {db} runs chain {run_id}")
    print(f"       and: pyworkflow --db {db} runs logs {last.run_id}")


def parse_db(default: Path) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None,
                        help=f"SQLite file to use (default: a fresh {default})")
    args = parser.parse_args()
    if args.db is not None:
        return args.db
    for suffix in ("", "-wal", "-shm"):  # the example's own file: start from scratch each time
        Path(f"{default}{suffix}").unlink(missing_ok=True)
    return default


if __name__ == "__main__":
    asyncio.run(main(parse_db(DEFAULT_DB)))

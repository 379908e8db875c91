"""Cancellation with compensation: cleanup inside ``shield()`` runs before the run is cancelled.

    python examples/cancellation.py [--db PATH]

What to notice:

* the workflow reserves inventory, then waits (``sleep("1h")``): the run is suspended;
* ``cancel_workflow(run_id)`` wakes it with ``CancellationError`` raised at that ``sleep``; the
  workflow's ``except CancellationError`` block releases the reservation inside
  ``async with shield():`` (so the cleanup step itself is not cancelled) and re-raises;
* the run is marked ``cancelled`` only after that cleanup has run (see the event log);
* ``cancel_workflow`` on a run that already ended returns False and changes nothing.

Runs on the embedded SQLite storage (a fresh file under .pyworkflow/ unless --db is given).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pyworkflow
from pyworkflow import (
    CancellationError,
    SQLiteStorageBackend,
    cancel_workflow,
    get_workflow_events,
    get_workflow_run,
    shield,
    sleep,
    start,
    step,
    workflow,
)

DEFAULT_DB = Path(".pyworkflow/examples/cancellation.db")

watched: dict[str, str] = {}  # the run about to be cancelled, so cleanup can show its status


@step
async def reserve_inventory(order_id: str, qty: int) -> str:
    reservation = f"res-{order_id}"
    print(f"  step reserve_inventory: reserved {qty} unit(s) as {reservation}")
    return reservation


@step
async def charge_payment(order_id: str) -> str:
    print(f"  step charge_payment: charged {order_id}")
    return f"ch-{order_id}"


@step
async def release_inventory(reservation: str) -> str:
    status = ""
    if "run_id" in watched:
        status = f" (run status meanwhile: {(await get_workflow_run(watched['run_id'])).status})"
    print(f"  cleanup step release_inventory: released {reservation}{status}")
    return reservation


@workflow
async def fulfil_order(order_id: str, qty: int) -> dict:
    reservation = await reserve_inventory(order_id, qty)
    try:
        print("  workflow: reached sleep('1h') (waiting for the payment window)")
        await sleep("1h")
        charge = await charge_payment(order_id)
        return {"order_id": order_id, "reservation": reservation, "charge": charge}
    except CancellationError as exc:
        print(f"  workflow: CancellationError raised at the sleep (reason: {exc.reason!r}); "
              "compensating inside shield()")
        async with shield():
            await release_inventory(reservation)
        raise


@workflow
async def quick_order(order_id: str) -> str:
    await reserve_inventory(order_id, 1)
    return "done"


async def main(db: Path) -> None:
    pyworkflow.configure(storage=SQLiteStorageBackend(db))
    print(f"script: start(fulfil_order, 'o-77', 3) on {db}")
    run_id = await start(fulfil_order, "o-77", 3)
    watched["run_id"] = run_id
    run = await get_workflow_run(run_id)
    print(f"script: run {run_id} is {run.status} at the sleep")

    print("script: cancel_workflow(run_id, reason='customer cancelled the order'): the run "
          "replays (reserve_inventory returns its recorded result without running) and gets "
          "CancellationError at the sleep")
    cancelled = await cancel_workflow(run_id, reason="customer cancelled the order")
    run = await get_workflow_run(run_id)
    print(f"script: cancel_workflow returned {cancelled}; run {run_id} is now {run.status}")

    print()
    print("Event log (the cleanup step completed before workflow.cancelled):")
    print(f"  {'seq':>3}  {'type':<24} step/name")
    for event in await get_workflow_events(run_id):
        name = event.data.get("step_name") or event.data.get("name") or ""
        print(f"  {event.sequence:>3}  {event.type.value:<24} {name}")

    print()
    print("Cancelling a run that already completed:")
    done_id = await start(quick_order, "o-78")
    again = await cancel_workflow(done_id)
    done = await get_workflow_run(done_id)
    print(f"script: cancel_workflow({done_id}) returned {again}; "
          f"it is still {done.status} with result {done.get_result()!r}")

    print()
    print(f"Run {run_id}: status {run.status}")
    print(f"Result: none (cancelled: {run.error or run.cancel_reason})")
    print(f"Inspect it: pyworkflow --db {db} runs logs {run_id}")


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

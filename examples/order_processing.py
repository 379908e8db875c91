"""Order processing: steps, a retried flaky step, a durable sleep and a typed approval hook.

    python examples/order_processing.py [--db PATH]

What to notice:

* every step's result is recorded once; when the run resumes (after the retry back-off, the
  sleep, the approval) the workflow function runs again from the top, and the steps that already
  ran return their recorded results instead of running again;
* the payment step fails once, records ``step.retrying`` and the run suspends; a timer in this
  process wakes it 1 s later and the second attempt succeeds;
* ``sleep("2s")`` suspends the run: nothing executes while it waits;
* the approval hook hands a one-time token to ``on_created``; this script plays the approver
  and calls ``resume_hook(token, {...})``, the payload is validated into ``Approval``.

Runs on the embedded SQLite storage (a fresh file under .pyworkflow/ unless --db is given).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel

import pyworkflow
from pyworkflow import (
    SQLiteStorageBackend,
    define_hook,
    get_workflow_events,
    get_workflow_run,
    resume_hook,
    sleep,
    start,
    step,
    workflow,
)

DEFAULT_DB = Path(".pyworkflow/examples/order_processing.db")

executions: Counter[str] = Counter()  # how many times each step's code really ran
tokens: dict[str, str] = {}           # hook tokens, handed over by on_created
started_at = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - started_at:5.2f}s] {message}", flush=True)


# --- steps -----------------------------------------------------------------------------------
@step
async def validate_order(order_id: str, items: list[dict]) -> dict:
    executions["validate_order"] += 1
    total = round(sum(i["qty"] * i["price"] for i in items), 2)
    say(f"  step validate_order: {order_id} has {len(items)} line(s), total {total}")
    return {"order_id": order_id, "total": total}


@step
async def reserve_inventory(order_id: str, items: list[dict]) -> str:
    executions["reserve_inventory"] += 1
    reservation = f"res-{order_id}"
    say(f"  step reserve_inventory: reserved {sum(i['qty'] for i in items)} unit(s) "
        f"as {reservation}")
    return reservation


@step(max_retries=3, retry_delay=1)
async def charge_payment(order_id: str, amount: float) -> dict:
    executions["charge_payment"] += 1
    attempt = executions["charge_payment"]
    if attempt == 1:
        say(f"  step charge_payment: attempt {attempt} -> payment gateway timed out "
            "(raising; retry in 1 s)")
        raise ConnectionError("payment gateway timed out")
    say(f"  step charge_payment: attempt {attempt} -> charged {amount}")
    return {"charge_id": f"ch-{order_id}", "amount": amount}


@step
async def ship_order(order_id: str, reservation: str, approver: str) -> str:
    executions["ship_order"] += 1
    tracking = f"TRACK-{order_id.upper()}"
    say(f"  step ship_order: shipped {reservation} (approved by {approver}), "
        f"tracking {tracking}")
    return tracking


# --- the approval hook -----------------------------------------------------------------------
class Approval(BaseModel):
    approved: bool
    approver: str
    note: str = ""


approval = define_hook("approval", Approval)


# --- the workflow ----------------------------------------------------------------------------
passes = 0


@workflow
async def process_order(order_id: str, items: list[dict]) -> dict:
    global passes
    passes += 1
    if passes == 1:
        say("workflow process_order: pass 1")
    else:
        say(f"workflow process_order: pass {passes}, resumed: the function replays from the "
            "top and recorded steps return their saved results without running")
    order = await validate_order(order_id, items)
    reservation = await reserve_inventory(order_id, items)
    charge = await charge_payment(order_id, order["total"])

    await sleep("2s")  # e.g. a cooling-off period; the run is suspended meanwhile

    decision = await approval(
        timeout="1h", on_created=lambda token: tokens.__setitem__(order_id, token)
    )
    if not decision.approved:
        return {"order_id": order_id, "status": "rejected", "by": decision.approver}
    tracking = await ship_order(order_id, reservation, decision.approver)
    return {"order_id": order_id, "status": "shipped", "charge_id": charge["charge_id"],
            "tracking": tracking, "approved_by": decision.approver}


# --- the script ------------------------------------------------------------------------------
async def wait_until_done(run_id: str, order_id: str):
    """Keep this event loop alive (its timers resume the run) and play the approver."""
    approved = False
    async with asyncio.timeout(30):  # far more than it needs: fail loudly rather than hang
        while True:
            run = await get_workflow_run(run_id)
            if run.status.is_terminal:
                return run
            if not approved and order_id in tokens:
                approved = True
                say(f"script: the approval hook is waiting (status {run.status}); "
                    "calling resume_hook(token, {approved: true, approver: 'dana'})")
                result = await resume_hook(
                    tokens[order_id], {"approved": True, "approver": "dana", "note": "looks good"}
                )
                say(f"script: resume_hook -> {result.status}")
            await asyncio.sleep(0.05)


async def main(db: Path) -> None:
    pyworkflow.configure(storage=SQLiteStorageBackend(db))
    order_id = "order-1001"
    items = [{"sku": "widget", "qty": 2, "price": 9.5}, {"sku": "gadget", "qty": 1, "price": 24.0}]

    say(f"script: start(process_order, {order_id!r}) on {db}")
    run_id = await start(process_order, order_id, items)
    run = await get_workflow_run(run_id)
    say(f"script: start() returned {run_id}: status {run.status} "
        "(the run waits for the payment retry; a timer in this process resumes it)")

    run = await wait_until_done(run_id, order_id)

    print()
    print("Step executions (real calls, not replays):")
    for name in ("validate_order", "reserve_inventory", "charge_payment", "ship_order"):
        print(f"  {name:<18} ran {executions[name]} time(s)")
    print(f"The workflow function ran {passes} times; validate_order and reserve_inventory "
          "ran once: on every later pass their recorded results were used.")

    print()
    print("Event log:")
    print(f"  {'seq':>3}  {'type':<26} step/name")
    for event in await get_workflow_events(run_id):
        name = event.data.get("step_name") or event.data.get("name") or ""
        extra = f"  (attempt {event.data['attempt']})" if "attempt" in event.data else ""
        print(f"  {event.sequence:>3}  {event.type.value:<26} {name}{extra}")

    print()
    print(f"Run {run_id}: status {run.status}")
    print(f"Result: {run.get_result()}")
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

"""Child workflows: wait for a child's result, handle a failed child, fire-and-forget children.

    python examples/child_workflows.py [--db PATH]

What to notice:

1. ``await start_child_workflow(charge_card, ...)`` runs the child as its own run (own id and
   history, ``parent_run_id`` set) and returns its result to the parent;
2. when the child fails, the parent gets ``ChildWorkflowFailedError`` and can handle it;
3. ``wait_for_completion=False`` returns a ``ChildWorkflowHandle`` at once: the parent completes
   while the child is still waiting, and the child finishes later on its own
   (``parent_close_policy="abandon"``, the default);
4. with ``parent_close_policy="cancel"`` the child is cancelled when its parent ends; its
   ``except CancellationError`` block runs first.

Runs on the embedded SQLite storage (a fresh file under .pyworkflow/ unless --db is given).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pyworkflow
from pyworkflow import (
    CancellationError,
    ChildWorkflowFailedError,
    EventType,
    FatalError,
    SQLiteStorageBackend,
    get_workflow_events,
    get_workflow_run,
    shield,
    sleep,
    start,
    start_child_workflow,
    step,
    workflow,
)

DEFAULT_DB = Path(".pyworkflow/examples/child_workflows.db")


# --- the child workflows ---------------------------------------------------------------------
@step
async def authorize(card: str, amount: float) -> str:
    if card.endswith("0002"):
        print(f"    child step authorize: card {card} declined (FatalError: no retry)")
        raise FatalError("card declined")
    print(f"    child step authorize: {amount} on card {card} authorized")
    return f"auth-{card[-4:]}"


@workflow
async def charge_card(card: str, amount: float) -> dict:
    auth = await authorize(card, amount)
    return {"auth": auth, "amount": amount}


@step
async def send_email(order_id: str) -> str:
    print(f"    child step send_email: follow-up e-mail for {order_id} sent")
    return "sent"


@step
async def log_skipped(order_id: str) -> None:
    print(f"    child cleanup: follow-up for {order_id} skipped (cancelled with its parent)")


@workflow
async def send_followup(order_id: str) -> str:
    try:
        await sleep("1s")  # the child waits; its parent is long done by now
        return await send_email(order_id)
    except CancellationError:
        async with shield():
            await log_skipped(order_id)
        raise


# --- the parents -----------------------------------------------------------------------------
@workflow
async def checkout(order_id: str, card: str, amount: float) -> dict:
    try:
        payment = await start_child_workflow(charge_card, card, amount)
    except ChildWorkflowFailedError as exc:
        print(f"  parent checkout: caught ChildWorkflowFailedError from {exc.child_run_id}: "
              f"{exc.error!r}")
        return {"order_id": order_id, "status": "payment_failed", "error": exc.error}
    print(f"  parent checkout: child returned {payment}")
    return {"order_id": order_id, "status": "paid", "auth": payment["auth"]}


@workflow
async def place_order(order_id: str, policy: str) -> dict:
    handle = await start_child_workflow(
        send_followup, order_id, wait_for_completion=False, parent_close_policy=policy
    )
    print(f"  parent place_order: started {handle.child_run_id} "
          f"(wait_for_completion=False, parent_close_policy={policy!r}) and returns at once")
    return {"order_id": order_id, "followup_run_id": handle.child_run_id}


# --- the script ------------------------------------------------------------------------------
async def wait_until_done(run_id: str):
    """Keep the event loop alive (its timers drive the child) until the run has ended."""
    async with asyncio.timeout(20):  # far more than it needs: fail loudly rather than hang
        while True:
            run = await get_workflow_run(run_id)
            if run.status.is_terminal:
                return run
            await asyncio.sleep(0.05)


async def child_of(parent_run_id: str) -> str:
    """The child's run id, as recorded in the parent's history."""
    for event in await get_workflow_events(parent_run_id):
        if event.type == EventType.CHILD_WORKFLOW_STARTED:
            return event.data["child_run_id"]
    raise LookupError(f"{parent_run_id} started no child")


async def main(db: Path) -> None:
    pyworkflow.configure(storage=SQLiteStorageBackend(db))
    print(f"script: using {db}")

    print("\n1. A parent that waits for its child's result")
    run = await get_workflow_run(await start(checkout, "o-1", "4242-4242-4242-0001", 25.0))
    print(f"  -> parent {run.run_id}: status {run.status}, result {run.get_result()}")
    first_parent = run.run_id

    print("\n2. The child fails: the parent handles ChildWorkflowFailedError")
    run = await get_workflow_run(await start(checkout, "o-2", "4000-0000-0000-0002", 25.0))
    print(f"  -> parent {run.run_id}: status {run.status}, result {run.get_result()}")
    second_parent = run.run_id
    child = await get_workflow_run(await child_of(run.run_id))
    print(f"  -> child {child.run_id}: status {child.status} ({child.error_type}: {child.error}),"
          f" parent_run_id {child.parent_run_id}")

    print("\n3. A fire-and-forget child outlives its parent (parent_close_policy='abandon')")
    parent = await get_workflow_run(await start(place_order, "o-3", "abandon"))
    child_id = parent.get_result()["followup_run_id"]
    third_parent = parent.run_id
    child = await get_workflow_run(child_id)
    print(f"  -> parent {parent.run_id}: status {parent.status}; "
          f"child {child_id}: status {child.status}")
    child = await wait_until_done(child_id)
    print(f"  -> child {child_id}: status {child.status}, result {child.get_result()!r}, "
          f"finished {(child.completed_at - parent.completed_at).total_seconds():.1f}s "
          "after its parent")

    print("\n4. parent_close_policy='cancel': the child ends with its parent")
    parent = await get_workflow_run(await start(place_order, "o-4", "cancel"))
    child_id = parent.get_result()["followup_run_id"]
    print(f"  -> parent {parent.run_id}: status {parent.status}")
    child = await wait_until_done(child_id)
    print(f"  -> child {child_id}: status {child.status} (reason: {child.cancel_reason})")

    print("\nAll runs (parents and their children):")
    for label, run_id in [("1 parent", first_parent), ("1 child", await child_of(first_parent)),
                          ("2 parent", second_parent), ("2 child", await child_of(second_parent)),
                          ("3 parent", third_parent), ("3 child", await child_of(third_parent)),
                          ("4 parent", parent.run_id), ("4 child", child_id)]:
        r = await get_workflow_run(run_id)
        outcome = r.get_result() if r.result is not None else r.error or r.cancel_reason
        print(f"  {label:<9} {run_id:<25} {r.status.value:<10} {outcome}")

    run = await get_workflow_run(first_parent)
    print()
    print(f"Run {run.run_id}: status {run.status}")
    print(f"Result: {run.get_result()}")
    print(f"Inspect it: pyworkflow --db {db} runs children {run.run_id}")
    print(f"       and: pyworkflow --db {db} runs logs {run.run_id}")


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

"""A live owner keeps its run (audit behaviour 3) — also when a cancel is requested while a step
longer than the lease runs. ``RunJournal.renew_lease`` retries a renewal that lost the
compare-and-set through ``adopt_latest``, which answers False as soon as the record carries a
cancel request the execution has not recorded: the renewal gives up WITHOUT renewing, and every
later heartbeat does the same (``pyworkflow/runtime/journal.py``). The lease lapses while the
owner is alive; another worker takes the run, delivers the cancellation and runs the workflow's
cleanup while the first step is still running in the owner — here the 'release' compensation
runs 2 s before the 'reserve' it undoes has even finished."""

import asyncio
import time

from pyworkflow import CancellationError, RunStatus, shield, step, workflow
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.runtime.journal import request_cancel
from pyworkflow.runtime.worker import run_once
from pyworkflow.storage import SQLiteStorageBackend
from tests.faults.harness import QueuedLocalRuntime

LEASE = 1.0
LOG: list[tuple[str, float]] = []


@step(max_retries=0)
async def lc_reserve() -> str:
    LOG.append(("reserve started", time.monotonic()))
    await asyncio.sleep(3 * LEASE)
    LOG.append(("reserve ended", time.monotonic()))
    return "reserved"


@step
async def lc_release() -> str:
    LOG.append(("release", time.monotonic()))
    return "released"


@workflow
async def lc_order() -> str:
    try:
        return await lc_reserve()
    except CancellationError:
        async with shield():
            await lc_release()
        raise


async def test_a_cancel_request_during_a_long_step_does_not_lose_the_live_owners_lease(tmp_path):
    LOG.clear()
    db = tmp_path / "runs.db"
    owner = QueuedLocalRuntime(SQLiteStorageBackend(db), lease_seconds=LEASE)
    other = QueuedLocalRuntime(SQLiteStorageBackend(db), lease_seconds=LEASE)
    run, history = await owner.executor.create(get_workflow_by_func(lc_order), (), {}, lease=True)
    driving = asyncio.create_task(owner.executor.execute(run, history))
    await asyncio.sleep(LEASE / 2)
    await request_cancel(other.storage, other.clock, run.run_id, "customer changed their mind")
    holders = set()
    while not driving.done():  # a second worker passing over due runs meanwhile
        await run_once(other)
        holders.add((await other.storage.get_run(run.run_id)).lease_owner)
        await asyncio.sleep(LEASE / 4)
    try:
        await driving
    except BaseException:  # noqa: BLE001 - now: RestartSignal (the owner lost its run)
        pass
    await asyncio.sleep(0.1)
    await run_once(other)
    final = await other.storage.get_run(run.run_id)
    assert final.status in (RunStatus.CANCELLED, RunStatus.COMPLETED)  # cancelled at its next
    order = [name for name, _ in sorted(LOG, key=lambda x: x[1])]  # await, or too late
    # Now: ['reserve started', 'release', 'reserve ended'] and the other worker held the run.
    assert order[:2] == ["reserve started", "reserve ended"], order
    assert holders <= {owner.executor.owner, None}, "another worker took the run"

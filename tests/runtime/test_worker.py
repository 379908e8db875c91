"""The worker: every due run in one pass, and runs handed back when a drive is stopped."""

import asyncio

from pyworkflow import RunStatus, get_workflow_run, sleep, start, step, workflow
from pyworkflow.runtime.local import LocalRuntime, get_runtime
from pyworkflow.runtime.worker import run_once


@workflow
async def napper(i: int) -> int:
    await sleep("1m")
    return i


async def test_one_pass_drives_every_due_run_beyond_one_page(storage, clock):
    ids = [await start(napper, i) for i in range(130)]
    clock.advance(61)
    stats = await run_once(get_runtime())
    assert stats.completed == 130
    assert {(await get_workflow_run(i)).status for i in ids} == {RunStatus.COMPLETED}


hold: dict[str, asyncio.Event] = {}


@step
async def stuck() -> str:
    if "entered" in hold:  # the first execution blocks until it is cancelled
        hold.pop("entered").set()
        await asyncio.Event().wait()
    return "second time"


@workflow
async def interruptible() -> str:
    return await stuck()


async def test_a_cancelled_drive_hands_the_run_back_at_once(storage):
    hold["entered"] = asyncio.Event()
    entered = hold["entered"]
    task = asyncio.create_task(start(interruptible))
    await entered.wait()
    [run] = (await storage.list_runs_page()).items
    assert run.lease_owner is not None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    run = await get_workflow_run(run.run_id)
    assert run.lease_owner is None  # released, not left to expire in 60 s
    other = LocalRuntime(storage)  # another process, in effect: it may drive the run right away
    finished = await other.drive(run.run_id)
    assert finished.status == RunStatus.COMPLETED
    assert finished.get_result() == "second time"


async def test_a_stale_wake_up_costs_one_read_and_an_early_timer_is_armed_again(storage, clock):
    rt = get_runtime()
    run_id = await start(napper, 1)
    run = await get_workflow_run(run_id)
    armed: list[tuple[str, object, str]] = []

    async def record_wake_at(rid, when, *, key=""):
        armed.append((rid, when, key))

    rt.wake_at = record_wake_at  # the dispatcher the executor calls
    reads = storage.reads
    same = await rt.executor.drive(run_id, only_if_due=True, timer_key="some-old-wait")
    assert same.status == RunStatus.SUSPENDED and same.version == run.version  # untouched
    assert storage.reads - reads == 1 and armed == []  # no history read, no new timer

    await rt.executor.drive(run_id, only_if_due=True, timer_key=run.wake_key)
    assert armed == [(run_id, run.wake_at, run.wake_key)]  # fired early: armed again

    clock.advance(61)
    done = await rt.executor.drive(run_id, only_if_due=True, timer_key=run.wake_key)
    assert done.status == RunStatus.COMPLETED

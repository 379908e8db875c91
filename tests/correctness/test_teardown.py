"""Shutdown is not failure (audit behaviour 6): a run whose in-process drive is torn down — its
task garbage-collected, its loop closed, its loop's tasks cancelled at exit — is never recorded
as failed (before: "Token ... was created in a different Context"); it stays resumable and the
next worker finishes it."""

import asyncio
import gc

import pyworkflow
from pyworkflow import RunStatus, step, workflow
from pyworkflow.core.clock import ManualClock
from pyworkflow.runtime.local import get_runtime
from pyworkflow.runtime.worker import run_once
from pyworkflow.storage import SQLiteStorageBackend

CALLS: list[str] = []


@step
async def td_slow() -> str:
    CALLS.append("slow")
    if len(CALLS) == 1:
        await asyncio.sleep(3600)  # the first attempt is cut off mid-step
    return "done"


@workflow
async def td_flow() -> str:
    return await td_slow()


def _stored(db) -> tuple:
    async def read():
        store = SQLiteStorageBackend(db)
        runs = (await store.list_runs_page()).items
        events = await store.get_events(runs[0].run_id)
        await store.close()
        return runs[0], [e.type.value for e in events]

    return asyncio.run(read())


def _finish_with_a_worker(db, clock) -> pyworkflow.WorkflowRun:
    async def work():
        pyworkflow.configure(storage=SQLiteStorageBackend(db), clock=clock)
        await run_once(get_runtime())
        return (await pyworkflow.get_storage().list_runs_page()).items[0]

    return asyncio.run(work())


def _torn_down(tmp_path, teardown) -> tuple:
    CALLS.clear()
    db = tmp_path / "runs.db"
    clock = ManualClock()
    pyworkflow.configure(storage=SQLiteStorageBackend(db), clock=clock)
    loop = asyncio.new_event_loop()
    tasks = [loop.create_task(pyworkflow.start(td_flow))]  # the only reference to the task
    loop.run_until_complete(asyncio.sleep(0.05))  # the step is running
    teardown(loop, tasks)
    run, types = _stored(db)
    assert run.status != RunStatus.FAILED and run.error is None
    assert types == ["workflow.started"]
    clock.advance(120)  # past the lease of the drive that was cut off
    pyworkflow.reset_config()
    run = _finish_with_a_worker(db, clock)
    assert run.status == RunStatus.COMPLETED and run.get_result() == "done"
    assert CALLS == ["slow", "slow"]  # cut off mid-step, so run again: at least once


def test_a_drive_whose_task_is_garbage_collected_stays_resumable(tmp_path):
    def collect(loop, tasks):
        loop.close()
        tasks.clear()
        gc.collect()

    _torn_down(tmp_path, collect)


def test_a_drive_cancelled_when_its_loop_shuts_down_stays_resumable(tmp_path):
    def shut_down(loop, tasks):
        tasks[0].cancel()  # what asyncio.run does to the tasks left at exit
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    _torn_down(tmp_path, shut_down)

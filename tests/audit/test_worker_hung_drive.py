"""One bad run never takes a worker down (audit behaviours 2 and 4): ``pyworkflow worker`` drives
the due runs of a pass one after another (``pyworkflow/runtime/worker.py`` ``run_once`` awaits
each ``_drive`` in turn). A run whose step never returns (an ``async def`` step awaiting a reply
that never comes, without a timeout — the default) holds the pass forever: no other due run is
ever driven by that worker, and the loop never gets to its next pass. Only drives that *raise*
are isolated."""

import asyncio

from pyworkflow import RunStatus, get_workflow_run, step, workflow
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.runtime.local import get_runtime
from pyworkflow.runtime.worker import run_worker


@step
async def wh_wait_for_reply() -> str:
    await asyncio.Event().wait()  # the reply never comes
    return "reply"


@step
async def wh_add(x: int) -> int:
    return x + 1


@workflow
async def wh_stuck() -> str:
    return await wh_wait_for_reply()


@workflow
async def wh_fine(x: int) -> int:
    return await wh_add(x)


async def test_a_run_whose_step_never_returns_does_not_stop_the_worker_serving_others(storage):
    rt = get_runtime()
    stuck, _ = await rt.executor.create(get_workflow_by_func(wh_stuck), (), {})
    fine, _ = await rt.executor.create(get_workflow_by_func(wh_fine), (1,), {})
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(rt, poll_interval=0.05, stop=stop))
    try:
        for _ in range(40):  # 2 s
            if (await get_workflow_run(fine.run_id)).status.is_terminal:
                break
            await asyncio.sleep(0.05)
        run = await get_workflow_run(fine.run_id)
        # Now: 'pending' — the pass is stuck in the first run's step.
        assert run.status == RunStatus.COMPLETED, f"the other run is {run.status.value}"
    finally:
        stop.set()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

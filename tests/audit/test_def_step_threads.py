"""One bad run never takes a worker down (audit behaviours 2 and 10): a plain ``def`` step runs
in a worker thread via ``asyncio.to_thread`` (``pyworkflow/core/step.py`` ``_invoke``), i.e. the
event loop's DEFAULT executor, which has min(32, cpu_count + 4) threads (6 on a 2-core machine).
A timed-out thread cannot be killed and keeps its executor slot. After that many def steps of
ONE bad workflow hang past their timeout, every plain def step of every other run in the process
queues behind them and "times out" without ever starting: the worker is down for def steps (and
for anything else using the default executor: getaddrinfo, blob offload)."""

import os
import threading

from pyworkflow import start, step, workflow

RELEASE = threading.Event()


@step(max_retries=0, timeout=0.2)
def dt_hangs() -> str:
    RELEASE.wait(30)  # a socket read that never returns
    return "late"


@step(max_retries=0, timeout=2)
def dt_quick() -> str:
    return "quick"


@workflow
async def dt_bad() -> str:
    return await dt_hangs()


@workflow
async def dt_good() -> str:
    return await dt_quick()


async def test_def_steps_that_hang_past_their_timeout_do_not_stop_other_runs_def_steps(storage):
    RELEASE.clear()
    try:
        for _ in range(min(32, (os.cpu_count() or 1) + 4)):
            try:
                await start(dt_bad)
            except TimeoutError:
                pass  # that run fails: its step timed out, as it should
        # Now: TimeoutError "Step 'dt_quick' timed out after 2s": it never got a thread.
        run_id = await start(dt_good)
        from pyworkflow import get_workflow_run

        assert (await get_workflow_run(run_id)).get_result() == "quick"
    finally:
        RELEASE.set()

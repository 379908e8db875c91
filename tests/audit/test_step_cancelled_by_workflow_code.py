"""A step cancelled by the workflow's own code (``asyncio.wait_for(step(), t)`` or
``asyncio.timeout``, common ways to bound a call) records nothing: its op number is a hole in the
history. Every later execution of the run reaches that op again, finds nothing recorded and runs
the step AGAIN (side effects on each resume); and ``pyworkflow replay`` of the completed run
reports a divergence for unchanged code (audit behaviour 1: never a false alarm).
(``pyworkflow/core/step.py`` ``execute_step``: ``CancelledError`` passes through without an
outcome; ``pyworkflow/runtime/replay.py`` then sees a "new operation" at #0.)"""

import asyncio
from collections import Counter

from pyworkflow import (
    RunStatus,
    get_workflow_events,
    get_workflow_run,
    resume,
    sleep,
    start,
    step,
    workflow,
)
from pyworkflow.runtime.replay import replay_history

CALLS: Counter[str] = Counter()


@step
async def sc_slow() -> str:
    CALLS["slow"] += 1
    await asyncio.sleep(0.3)
    return "slow"


@step
async def sc_fallback() -> str:
    CALLS["fallback"] += 1
    return "fallback"


@workflow
async def sc_bounded() -> str:
    try:
        got = await asyncio.wait_for(sc_slow(), 0.05)
    except TimeoutError:
        got = await sc_fallback()
    await sleep(10)
    await sleep(10)
    return got


async def test_a_step_the_workflow_cancelled_is_not_run_again_on_every_resume(clock):
    CALLS.clear()
    run_id = await start(sc_bounded)
    clock.advance(11)
    await resume(run_id)
    clock.advance(11)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED and run.get_result() == "fallback"
    report = await replay_history(await get_workflow_events(run_id), run=run)
    # Now: CALLS['slow'] == 3 (once per execution) and report.ok is False ("#0" new operation).
    assert CALLS["slow"] == 1, f"the cancelled step ran {CALLS['slow']} times"
    assert report.ok, report.divergence

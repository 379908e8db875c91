"""Nothing is written after a run's ending event (audit behaviour 5). A durable call made from a
task the workflow started but did not await (``asyncio.ensure_future(step(...))``, a
``create_task`` that had not reached its first durable call when the workflow returned) is not in
``ctx.side_tasks`` when the execution settles (``pyworkflow/runtime/executor.py`` ``_settle``
only knows tasks that already allocated an op), so the run is completed, and then the task's step
runs and appends ``step.completed`` AFTER ``workflow.completed`` (the context stays usable after
the ending: nothing closes it)."""

import asyncio

from pyworkflow import get_workflow_events, start, step, workflow


@step
async def nw_note(text: str) -> str:
    return text


@workflow
async def nw_flow() -> str:
    asyncio.ensure_future(nw_note("background"))  # fire and forget
    return "done"


async def test_a_call_from_an_unawaited_task_is_never_written_after_the_ending(storage):
    run_id = await start(nw_flow)
    await asyncio.sleep(0.2)
    types = [e.type.value for e in await get_workflow_events(run_id)]
    # Now: ['workflow.started', 'workflow.completed', 'step.completed'].
    assert types[-1] == "workflow.completed", types

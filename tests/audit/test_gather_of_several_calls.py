"""``asyncio.gather`` of coroutines that each make SEVERAL durable calls (audit behaviour 5).
The README says this is unsupported (use ``parallel()``); what matters is whether misuse is loud.
It is silent: gather numbers operations in the order its coroutines reach them, which depends on
timing in the first execution (``fetch`` awaits I/O) but not on replay (recorded steps return
without yielding, so one coroutine replays all its calls before the other starts). The op numbers
then belong to the other coroutine, the names match (same step), and each coroutine receives
the other's results: the workflow continues on swapped values with no error
(``pyworkflow/core/context.py`` ``ExecutionContext.allocate``: top-level ops are numbered by a
shared counter and only kind and name are checked)."""

import asyncio

from pyworkflow import (
    NonDeterminismError,
    RunStatus,
    get_workflow_run,
    resume,
    sleep,
    start,
    step,
    workflow,
)


@step
async def gs_fetch(key: str) -> str:
    await asyncio.sleep(0.01)  # real I/O: the two coroutines interleave in the first execution
    return key


async def gs_both(prefix: str) -> list[str]:
    return [await gs_fetch(prefix + "1"), await gs_fetch(prefix + "2")]


@workflow
async def gs_flow() -> list:
    first = await asyncio.gather(gs_both("a"), gs_both("b"))
    await sleep(10)  # the rest runs in a second execution, which replays the gather
    return first


async def test_gather_of_multi_call_coroutines_never_replays_swapped_results(clock):
    run_id = await start(gs_flow)
    clock.advance(11)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    if run.status == RunStatus.FAILED:  # loud is acceptable
        assert run.error_type == NonDeterminismError.__name__
        return
    # Now: completed with [['a1', 'b1'], ['a2', 'b2']]: coroutine "a" got b's first result.
    assert run.get_result() == [["a1", "a2"], ["b1", "b2"]]

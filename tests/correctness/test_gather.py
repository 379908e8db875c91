"""``asyncio.gather`` of steps is safe (audit behaviour 5): when one gathered branch fails or
must wait, the execution lets its siblings finish their current step — recorded once — before
it writes the run's ending or its suspension. Before, a sibling's ``step.completed`` could land
after ``workflow.failed``, and a sibling still running when the run suspended ran again in the
next execution."""

import asyncio

from pyworkflow import (
    FatalError,
    RunStatus,
    get_workflow_events,
    get_workflow_run,
    hook,
    resume,
    sleep,
    start,
    step,
    workflow,
)
from pyworkflow.api import resume_hook_by_name
from tests.runtime.conftest import start_failing

CALLS: list[str] = []


@step(max_retries=0)
async def ga_fails_fast() -> None:
    CALLS.append("fast")
    raise FatalError("no")


@step
async def ga_slow(tag: str) -> str:
    CALLS.append(tag)
    await asyncio.sleep(0.05)  # real time: still running when its sibling gives up
    return tag


@step(retry_delay=60)
async def ga_flaky() -> str:
    CALLS.append("flaky")
    if CALLS.count("flaky") == 1:
        raise ValueError("first attempt fails; the retry is a minute away")
    return "flaky"


async def ga_sleeps() -> str:
    await sleep(60)
    return "slept"


async def ga_waits() -> str:
    return (await hook("go"))["v"]


@workflow
async def ga_failing() -> list:
    return await asyncio.gather(ga_fails_fast(), ga_slow("slow"))


@workflow
async def ga_suspending(kind: str) -> list:
    first = {"retry": ga_flaky, "sleep": ga_sleeps, "hook": ga_waits}[kind]
    return await asyncio.gather(first(), ga_slow("a"), ga_slow("b"))


def _types(events) -> list[str]:
    return [e.type.value for e in events]


async def test_a_failing_gathered_step_lets_its_sibling_finish_before_the_run_fails(storage):
    CALLS.clear()
    run = await start_failing(ga_failing)
    await asyncio.sleep(0.2)  # a sibling left running would write by now
    types = _types(await get_workflow_events(run.run_id))
    assert types[-1] == "workflow.failed"
    assert types.count("step.completed") == 1 and CALLS.count("slow") == 1


async def test_siblings_of_a_gathered_step_that_must_wait_run_once(clock):
    for kind in ("retry", "sleep", "hook"):
        CALLS.clear()
        run_id = await start(ga_suspending, kind)
        assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
        types = _types(await get_workflow_events(run_id))
        assert types.count("step.completed") == 2, kind  # both siblings recorded
        await asyncio.sleep(0.2)
        assert _types(await get_workflow_events(run_id)) == types  # nothing written later
        clock.advance(61)
        if kind == "hook":
            await resume_hook_by_name(run_id, "go", {"v": "hooked"})
        else:
            await resume(run_id)
        run = await get_workflow_run(run_id)
        assert run.status == RunStatus.COMPLETED, kind
        assert run.get_result()[1:] == ["a", "b"]
        assert CALLS.count("a") == 1 and CALLS.count("b") == 1, (kind, CALLS)

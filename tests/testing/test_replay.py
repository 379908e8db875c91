"""env.replay: a recorded run re-executed from its history against the code as it is now."""

import pytest

from pyworkflow import NonDeterminismError, sleep, step, workflow
from pyworkflow.testing import WorkflowEnvironment

ran: list[str] = []
variant = {"first": "a", "audit": False}


@step
async def kit_fetch(key: str) -> str:
    ran.append(key)
    return key.upper()


@step
async def kit_audit() -> None:
    ran.append("audit")


@workflow
async def kit_pipeline() -> list[str]:
    out = [await kit_fetch(variant["first"])]
    await sleep("12h")
    if variant["audit"]:
        await kit_audit()  # a new step where the history has kit_fetch
    out.append(await kit_fetch("b"))
    return out


@pytest.fixture(autouse=True)
def _reset():
    ran.clear()
    variant.update(first="a", audit=False)


async def test_a_finished_run_replays_without_running_a_step(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_pipeline)
    assert await env.result(run_id) == ["A", "B"]
    assert ran == ["a", "b"]
    report = await env.replay(run_id)
    assert report.ok and report.operations == 3
    assert ran == ["a", "b"]  # replay returned the recorded results
    assert await env.replay_all() == 1


async def test_a_suspended_run_replays_up_to_its_wait(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_pipeline)
    assert (await env.replay(run_id)).ok


async def test_a_new_step_in_the_middle_is_reported_as_nondeterminism():
    async with WorkflowEnvironment() as env:
        run_id = await env.start(kit_pipeline)
        await env.result(run_id)
        variant["audit"] = True  # the "next version" adds a step where history has another
        with pytest.raises(NonDeterminismError, match=r"#2.*step 'kit_fetch'.*step 'kit_audit'"):
            await env.replay(run_id)
        assert ran == ["a", "b"]  # nothing ran during the replay


async def test_other_step_arguments_alone_keep_the_recorded_results(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_pipeline)
    await env.result(run_id)
    variant["first"] = "z"  # steps are matched by position and name, not by arguments
    assert (await env.replay(run_id)).ok
    assert ran == ["a", "b"]

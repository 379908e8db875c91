"""Versioning: patched() / deprecate_patch() keep runs in flight on the code they started with,
and the workflow's version is recorded on each run."""

from collections import Counter

import pytest

import pyworkflow
from pyworkflow import (
    EventType,
    NonDeterminismError,
    RunStatus,
    deprecate_patch,
    get_workflow_events,
    get_workflow_run,
    patched,
    resume,
    sleep,
    start,
    step,
    workflow,
)
from tests.runtime.conftest import start_failing

calls: Counter[str] = Counter()
NAME = "patched_order"


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    yield
    deploy("v1")


@step
async def act(tag: str) -> str:
    calls[tag] += 1
    return tag


def deploy(version: str):
    """(Re)define the workflow NAME as a given version of the code: same name, same qualname,
    so the registry takes the new definition, as a deploy would."""

    @workflow(name=NAME, version=version)
    async def flow() -> list[str]:
        out = [await act("reserve")]
        if version == "v2":
            if patched("receipt"):
                out.append(await act("receipt"))
        elif version == "v3":
            deprecate_patch("receipt")
            out.append(await act("receipt"))
        elif version == "v-removed":
            out.append(await act("receipt"))  # patched() removed without deprecate_patch
        await sleep("1h")
        out.append(await act("ship"))
        return out

    return flow


async def test_a_run_recorded_before_the_patch_keeps_the_old_path(storage, clock):
    v1 = deploy("v1")
    run_id = await start(v1)  # waits in sleep("1h") with the old history
    deploy("v2")
    clock.advance(3600)
    assert await resume(run_id) == ["reserve", "ship"]
    assert calls["receipt"] == 0
    types = [e.type for e in await get_workflow_events(run_id)]
    assert EventType.PATCH_APPLIED not in types


async def test_a_new_run_takes_the_patch_and_replays_it(storage, clock):
    v2 = deploy("v2")
    run_id = await start(v2)
    events = await get_workflow_events(run_id)
    [marker] = [e for e in events if e.type == EventType.PATCH_APPLIED]
    assert marker.data == {"op": 1, "name": "receipt"}
    clock.advance(3600)
    assert await resume(run_id) == ["reserve", "receipt", "ship"]
    assert calls["receipt"] == 1  # replayed, not re-run


async def test_deprecate_patch_steps_over_old_markers_and_records_nothing(storage, clock):
    v2 = deploy("v2")
    patched_run = await start(v2)  # has the marker
    v3 = deploy("v3")
    fresh_run = await start(v3)  # has none
    clock.advance(3600)
    assert await resume(patched_run) == ["reserve", "receipt", "ship"]
    assert await resume(fresh_run) == ["reserve", "receipt", "ship"]
    fresh = [e.type for e in await get_workflow_events(fresh_run)]
    assert EventType.PATCH_APPLIED not in fresh
    assert calls["receipt"] == 2


async def test_removing_a_patch_check_without_deprecating_it_is_nondeterminism(storage, clock):
    v2 = deploy("v2")
    run_id = await start(v2)
    deploy("v-removed")
    clock.advance(3600)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_type == NonDeterminismError.__name__
    assert "history recorded patch 'receipt'" in run.error
    assert "deprecate_patch()" in run.error


async def test_a_run_reaching_the_patch_after_the_deploy_takes_it(storage, clock):
    @workflow(name="late_patch")
    async def late() -> list[str]:
        await sleep("1h")
        return ["new" if patched("late") else "old"]

    run_id = await start(late)  # the history ends before the patch point
    clock.advance(3600)
    assert await resume(run_id) == ["new"]


async def test_patched_outside_a_workflow_is_true_and_ids_are_checked():
    assert patched("anything") is True
    deprecate_patch("anything")
    with pytest.raises(ValueError, match="change id"):
        patched("")


async def test_the_workflow_version_is_recorded_on_each_run(storage, clock):
    v2 = deploy("v2")
    run_id = await start(v2)
    assert (await get_workflow_run(run_id)).metadata["version"] == "v2"
    deploy("v3")
    clock.advance(3600)
    await resume(run_id)
    # the record keeps the version the run started with
    assert (await get_workflow_run(run_id)).metadata["version"] == "v2"

    @workflow(name="unversioned_flow")
    async def plain() -> int:
        return 1

    plain_id = await start(plain)
    assert "version" not in (await get_workflow_run(plain_id)).metadata


async def test_a_patched_check_failing_after_the_deploy_names_itself(storage, clock):
    @workflow(name="patch_then_fail")
    async def failing() -> None:
        if patched("x"):
            raise ValueError("new code fails")

    run = await start_failing(failing)
    assert run.error == "new code fails"
    assert pyworkflow.get_workflow("patch_then_fail") is not None

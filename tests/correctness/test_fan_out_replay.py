"""Replay checks every recorded operation, fan-out included (audit behaviour 1). A deploy that
changes a fan-out under a waiting run — more or fewer items, a branch with a durable call more
or less — is a NonDeterminismError naming the operation, at run time and in ``pyworkflow
replay``. Before, a fan-out grown from 3 to 4 items numbered the new branch's op over the
recorded hook after it: the hook's payload was never used and the run waited forever."""

import pytest

import pyworkflow
from pyworkflow import (
    NonDeterminismError,
    RunStatus,
    get_workflow_events,
    get_workflow_run,
    hook,
    patched,
    start,
    step,
    workflow,
)
from pyworkflow.api import resume_hook_by_name
from pyworkflow.core.events import Event, EventType
from pyworkflow.runtime.replay import replay_history

CODE = {"items": 3, "calls": 1, "patch": False}  # what a deploy changes under the run


@pytest.fixture(autouse=True)
def _deployed():
    CODE.update(items=3, calls=1, patch=False)


@step
async def fo_work(tag: str) -> str:
    return tag


async def fo_branch(i: int) -> str:
    out = await fo_work(f"{i}a")
    if CODE["patch"] and patched("extra-note"):
        out += await fo_work(f"{i}p")
    if CODE["calls"] > 1:
        out += await fo_work(f"{i}b")
    return out


@workflow
async def fo_map_then_wait() -> list:
    res = await pyworkflow.map(fo_work, [str(i) for i in range(CODE["items"])])
    approval = await hook("approval")
    return [*res.raise_if_failed(), approval["ok"]]


@workflow
async def fo_branches_then_wait() -> list:
    res = await pyworkflow.parallel(*(fo_branch(i) for i in range(3)))
    approval = await hook("approval")
    return [*res.raise_if_failed(), approval["ok"]]


async def _waiting(workflow_fn) -> str:
    run_id = await start(workflow_fn)
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    return run_id


async def _resumed(run_id: str):
    await resume_hook_by_name(run_id, "approval", {"ok": True})
    return await get_workflow_run(run_id)


async def _replayed(run_id: str):
    return await replay_history(
        await get_workflow_events(run_id), run=await get_workflow_run(run_id)
    )


@pytest.mark.parametrize("items", [4, 2])
async def test_a_fan_out_whose_item_count_changed_under_a_waiting_run_is_nondeterminism(
    storage, items
):
    run_id = await _waiting(fo_map_then_wait)
    CODE["items"] = items  # the deploy
    report = await _replayed(run_id)  # what `pyworkflow replay RUN_ID` says before resuming
    assert not report.ok
    assert report.divergence.op == "0"
    assert report.divergence.expected == "map:fo_work of 3 item(s)"
    assert report.divergence.found == f"map:fo_work of {items} item(s)"
    run = await _resumed(run_id)
    assert run.status == RunStatus.FAILED  # never left waiting forever
    assert run.error_type == NonDeterminismError.__name__
    assert "operation #0" in run.error and "3 item(s)" in run.error


async def test_a_branch_that_gained_a_durable_call_is_nondeterminism(storage):
    run_id = await _waiting(fo_branches_then_wait)
    CODE["calls"] = 2
    report = await _replayed(run_id)
    assert not report.ok and report.divergence.op in ("0.0.1", "0.1.1", "0.2.1")
    assert report.divergence.found == "step 'fo_work'"
    run = await _resumed(run_id)
    assert run.status == RunStatus.FAILED and run.error_type == NonDeterminismError.__name__
    assert "in a branch that had ended" in run.error


async def test_a_branch_that_lost_a_durable_call_is_nondeterminism(storage):
    CODE["calls"] = 2
    run_id = await _waiting(fo_branches_then_wait)
    CODE["calls"] = 1
    report = await _replayed(run_id)
    assert not report.ok and report.divergence.op in ("0.0.1", "0.1.1", "0.2.1")
    assert report.divergence.expected == "step 'fo_work'"
    assert report.divergence.found == "the branch's end"
    run = await _resumed(run_id)
    assert run.status == RunStatus.FAILED and run.error_type == NonDeterminismError.__name__


async def test_a_history_from_before_the_item_count_was_recorded_is_checked_too(storage):
    run_id = await _waiting(fo_map_then_wait)
    events = [e for e in await get_workflow_events(run_id) if e.type != "parallel.started"]
    old = [Event(**{**e.model_dump(), "sequence": i}) for i, e in enumerate(events, 1)]
    CODE["items"] = 4
    report = await replay_history(old, run=await get_workflow_run(run_id))
    assert not report.ok and report.divergence.op == "0.3.0"  # the new item's first call
    CODE["items"] = 2
    report = await replay_history(old, run=await get_workflow_run(run_id))
    assert not report.ok and report.divergence.expected == "map:fo_work of at least 3 item(s)"


async def test_a_patch_added_in_a_branch_the_run_had_finished_takes_the_old_path(storage):
    run_id = await _waiting(fo_branches_then_wait)
    CODE["patch"] = True  # patched() inside branches that already ended in the recorded run
    assert (await _replayed(run_id)).ok
    run = await _resumed(run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == ["0a", "1a", "2a", True]
    new_run = await _waiting(fo_branches_then_wait)  # a new run takes the new path
    assert (await _resumed(new_run)).get_result() == ["0a0p", "1a1p", "2a2p", True]


async def test_the_item_count_rides_with_the_first_write(storage):
    run_id = await _waiting(fo_map_then_wait)
    events = await get_workflow_events(run_id)
    started = [e for e in events if e.type == EventType.PARALLEL_STARTED]
    assert [e.data["total"] for e in started] == [3]
    assert [e.type.value for e in events][:3] == [
        "workflow.started",
        "parallel.started",
        "step.completed",
    ]

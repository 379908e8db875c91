"""Replay checks fan-outs (audit behaviour 1), nested case: a fan-out that is the LAST operation
of an outer branch. The outer fan-out was finished in the recorded run (a hook was recorded after
it), so nothing new may be recorded inside it, but the inner fan-out's branches are not treated
as settled: ``settled = ctx.recorded_past(op)`` only looks for ops after the inner fan-out inside
its own branch, and the inner branches never inherit the outer branch's ``settled_in_history``
(``pyworkflow/core/parallel.py`` ``_fan_out`` / ``_Runner._start``).

Consequences under a deploy:
* a durable call added to an inner branch is not a NonDeterminismError: the new steps run, take
  op numbers past the recorded hook, and the hook is asked for again as a NEW hook: the run waits
  forever, the payload already delivered is never used, and ``pyworkflow replay`` says ok;
* ``patched()`` added in an inner branch returns True (new path) and records a marker with a new
  op number: same shift, the run hangs although the patch API was used as documented.
"""

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
from pyworkflow.runtime.replay import replay_history

CODE = {"calls": 1, "patch": False}


@pytest.fixture(autouse=True)
def _deployed():
    CODE.update(calls=1, patch=False)


@step
async def nf_work(tag: str) -> str:
    return tag


async def nf_inner(tag: str) -> str:
    out = await nf_work(tag)
    if CODE["patch"] and patched("nf-extra"):
        out += "+p"
    if CODE["calls"] > 1:
        out += await nf_work(tag + "b")
    return out


async def nf_outer(i: int) -> list:
    res = await pyworkflow.map(nf_inner, [f"{i}.{j}" for j in range(2)])
    return res.results  # the inner fan-out is this branch's last operation


@workflow
async def nf_nested_then_wait() -> list:
    res = await pyworkflow.map(nf_outer, range(2))
    approval = await hook("approval")
    return [res.results, approval["ok"]]


async def _replayed(run_id: str):
    return await replay_history(
        await get_workflow_events(run_id), run=await get_workflow_run(run_id)
    )


async def test_a_durable_call_added_in_a_nested_fan_out_branch_is_nondeterminism(storage):
    run_id = await start(nf_nested_then_wait)
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    CODE["calls"] = 2  # the deploy: every inner branch gains a step
    report = await _replayed(run_id)
    await resume_hook_by_name(run_id, "approval", {"ok": True})
    run = await get_workflow_run(run_id)
    # Now: report.ok is True, and the run is 'suspended' on a second 'approval' hook forever.
    assert not report.ok, "pyworkflow replay did not notice the added call"
    assert run.status == RunStatus.FAILED, f"run is {run.status.value}"
    assert run.error_type == NonDeterminismError.__name__


async def test_patched_added_in_a_nested_fan_out_branch_keeps_the_recorded_run_going(storage):
    run_id = await start(nf_nested_then_wait)
    CODE["patch"] = True  # patched() in branches the recorded run had finished: old path
    await resume_hook_by_name(run_id, "approval", {"ok": True})
    run = await get_workflow_run(run_id)
    # Now: the run is 'suspended' forever (patch markers took op numbers past the hook).
    assert run.status == RunStatus.COMPLETED, f"run is {run.status.value}"
    assert run.get_result() == [[["0.0", "0.1"], ["1.0", "1.1"]], True]

"""A hook payload stored by a caller that died before waking the run: the caller's retry gets
``HookAlreadyReceivedError`` (the payload is in) and wakes the run, which would otherwise wait
forever (nothing else wakes a run waiting on a hook without a timeout)."""

from __future__ import annotations

import pytest

import pyworkflow
from pyworkflow import RunStatus, get_workflow_run, hook, workflow
from pyworkflow.api import resume_hook
from pyworkflow.core import context as _ctx
from pyworkflow.exceptions import HookAlreadyReceivedError
from pyworkflow.runtime.faults import Faults, FaultyStorage, InjectedCrash
from pyworkflow.runtime.local import LocalRuntime
from pyworkflow.service.hooks import deliver_hook
from pyworkflow.storage import SQLiteStorageBackend

TOKENS: dict[str, str] = {}


@workflow(name="faults_approval")
async def approval() -> int:
    async def keep(token: str) -> None:
        ctx = _ctx.current()
        assert ctx is not None
        TOKENS[ctx.run_id] = token

    payload = await hook("approve", on_created=keep)
    return int(payload["n"])


async def test_a_retried_delivery_wakes_the_run_its_crashed_first_call_did_not(tmp_path) -> None:
    store = SQLiteStorageBackend(tmp_path / "runs.db")
    pyworkflow.configure(storage=store)
    run_id = await pyworkflow.start(approval)
    token = TOKENS[run_id]
    faults = Faults(crash_at=2)  # 1: before update_hook, 2: after it, before the run's touch
    dying = LocalRuntime(FaultyStorage(SQLiteStorageBackend(tmp_path / "runs.db"), faults))
    stored = await store.find_hook(run_id, name="approve")
    assert stored is not None
    with pytest.raises(InjectedCrash):
        await deliver_hook(dying, stored, {"n": 7})
    assert faults.crashed == "after update_hook(received)"
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.SUSPENDED and run.wake_at is None  # nothing would wake it
    with pytest.raises(HookAlreadyReceivedError):
        await resume_hook(token, {"n": 8})
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == 7  # the payload that got in, not the retry's


async def test_a_duplicate_delivery_to_a_run_that_took_the_payload_only_raises(tmp_path) -> None:
    store = SQLiteStorageBackend(tmp_path / "runs.db")
    pyworkflow.configure(storage=store)
    run_id = await pyworkflow.start(approval)
    await resume_hook(TOKENS[run_id], {"n": 1})
    before = await get_workflow_run(run_id)
    with pytest.raises(HookAlreadyReceivedError):
        await resume_hook(TOKENS[run_id], {"n": 2})
    after = await get_workflow_run(run_id)
    assert after.version == before.version and after.get_result() == 1

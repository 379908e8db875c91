"""A child that ended while its process died before waking its parent: the redelivered wake-up
of the child (SQS delivers it again: its first handling failed) wakes the parent instead of
being dropped as a no-op for a finished run."""

from __future__ import annotations

import pytest

import pyworkflow
from pyworkflow import RunStatus, get_workflow_run, hook, start_child_workflow, workflow
from pyworkflow.core import context as _ctx
from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.runtime.faults import Faults, InjectedCrash, inject
from pyworkflow.runtime.local import LocalRuntime, get_runtime
from pyworkflow.service.hooks import deliver_hook
from pyworkflow.storage import SQLiteStorageBackend

TOKENS: dict[str, str] = {}


@workflow(name="faults_waiting_child")
async def waiting_child() -> int:
    async def keep(token: str) -> None:
        ctx = _ctx.current()
        assert ctx is not None
        TOKENS[ctx.run_id] = token

    return int((await hook("go", on_created=keep))["n"])


@workflow(name="faults_waiting_parent")
async def waiting_parent() -> int:
    return await start_child_workflow(waiting_child) + 1


async def test_a_redelivered_wake_up_of_an_ended_child_wakes_its_parent(tmp_path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStorageBackend(db)
    pyworkflow.configure(storage=store)
    parent_id = await pyworkflow.start(waiting_parent)
    child_id = f"{parent_id}-c0"
    assert (await get_workflow_run(parent_id)).status == RunStatus.SUSPENDED
    # The child's payload arrives; its process dies right after the child's last write.
    faults = Faults(crash_on="after append_events(workflow.completed)")
    dying = inject(LocalRuntime(SQLiteStorageBackend(db)), faults)
    hook_record = await store.find_hook(child_id, name="go")
    assert hook_record is not None
    with pytest.raises(InjectedCrash):
        await deliver_hook(dying, hook_record, {"n": 41})
    LIVE_OWNERS.discard(dying.executor.owner)
    assert (await get_workflow_run(child_id)).status == RunStatus.COMPLETED
    parent = await get_workflow_run(parent_id)
    # nobody told it: it is due only at the worker's later check (LocalRuntime's child_check)
    assert parent.status == RunStatus.SUSPENDED
    assert parent.wake_at is not None and parent.wake_at > parent.updated_at
    # SQS delivers the child's wake-up again (its handler died): drive it in a new process.
    fresh = LocalRuntime(SQLiteStorageBackend(db))
    await fresh.executor.drive(child_id, only_if_due=True)
    await fresh.drain()
    parent = await get_workflow_run(parent_id)
    assert parent.status == RunStatus.COMPLETED
    assert parent.get_result() == 42


async def test_a_redelivered_wake_up_leaves_a_parent_that_has_the_outcome_alone(tmp_path):
    store = SQLiteStorageBackend(tmp_path / "runs.db")
    pyworkflow.configure(storage=store)
    parent_id = await pyworkflow.start(waiting_parent)
    child_id = f"{parent_id}-c0"
    await pyworkflow.resume_hook(TOKENS[child_id], {"n": 1})
    await get_runtime(store).drain()  # the parent is woken in the background
    parent = await get_workflow_run(parent_id)
    assert parent.status == RunStatus.COMPLETED
    await LocalRuntime(store).executor.drive(child_id)
    assert (await get_workflow_run(parent_id)).version == parent.version

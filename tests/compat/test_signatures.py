"""Exception and handle signatures of pyworkflow-engine 0.1.9, and the wording code matches on."""

from datetime import UTC, datetime, timedelta

import pytest

import pyworkflow
from pyworkflow import (
    ChildWorkflowHandle,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    MaxNestingDepthError,
    RetryableError,
    workflow,
)
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.storage import InMemoryStorageBackend


def test_retryable_error_keeps_kwargs_as_metadata():
    error = RetryableError("rate limited", "60s", status=429)
    assert error.message == "rate limited"
    assert error.retry_after == "60s"
    assert error.metadata == {"status": 429}


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(None, None), (30, 30), ("5m", 300), (timedelta(seconds=90), 90), (0.5, 0.5)],
)
def test_retryable_error_get_retry_delay_seconds(retry_after, expected):
    assert RetryableError("x", retry_after=retry_after).get_retry_delay_seconds() == expected


def test_retryable_error_delay_until_a_datetime():
    error = RetryableError("x", retry_after=datetime.now(UTC) + timedelta(seconds=60))
    assert 55 <= error.get_retry_delay_seconds() <= 60
    past = RetryableError("x", retry_after=datetime.now(UTC) - timedelta(seconds=60))
    assert past.get_retry_delay_seconds() == 0


def test_hook_errors_keep_engine_attributes():
    assert HookNotFoundError("tok").token == "tok"
    assert "tok" not in str(HookNotFoundError("tok"))  # ours never repeats a token
    assert HookAlreadyReceivedError("hook_1").hook_id == "hook_1"
    assert HookExpiredError("hook_1").hook_id == "hook_1"
    assert "hook_1" in str(HookExpiredError("hook_1"))


def test_max_nesting_depth_message_matches_engine():
    error = MaxNestingDepthError(3)
    assert str(error).startswith("Maximum nesting depth of 3 exceeded. Current depth: 3.")
    assert (error.current_depth, error.max_depth) == (3, 3)


async def test_not_registered_message_matches_engine():
    async def plain():
        return 1

    with pytest.raises(ValueError, match="Function plain is not registered as a workflow"):
        await pyworkflow.start(plain)


async def test_child_workflow_handle_built_the_engine_way():
    @workflow(name="compat_child_handle")
    async def child() -> int:
        return 1

    storage = InMemoryStorageBackend()
    await storage.create_run(WorkflowRun("child_run", "compat_child_handle", RunStatus.RUNNING), [])
    handle = ChildWorkflowHandle(
        child_id="child_x",
        child_run_id="child_run",
        child_workflow_name="compat_child_handle",
        parent_run_id="parent_run",
        _storage=storage,
    )
    assert handle.child_id == "child_x" and handle._storage is storage
    assert handle.parent_run_id == "parent_run"
    assert await handle.get_status() == RunStatus.RUNNING
    assert await handle.is_running()


async def test_get_workflow_chain_of_an_unknown_run_is_empty(tmp_path):
    import pyworkflow
    from pyworkflow.storage import InMemoryStorageBackend

    pyworkflow.configure(storage=InMemoryStorageBackend())
    try:
        assert await pyworkflow.get_workflow_chain("run_missing") == []
    finally:
        pyworkflow.reset_config()

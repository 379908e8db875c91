"""The public surface: names pyworkflow-engine users import, and nothing private leaking."""

import inspect

import pyworkflow
from pyworkflow import EventType, RunStatus

ENGINE_NAMES = {
    "configure", "reset_config", "get_config", "workflow", "step", "sleep", "hook", "define_hook",
    "resume_hook", "shield", "continue_as_new", "start_child_workflow", "ChildWorkflowHandle",
    "start", "resume", "cancel_workflow", "get_workflow_run", "get_workflow_events",
    "get_workflow_chain", "scheduled_workflow", "create_schedule", "list_schedules",
    "pause_schedule", "resume_schedule", "delete_schedule", "trigger_schedule",
    "backfill_schedule", "StepContext", "get_step_context", "set_step_context", "WorkflowError",
    "FatalError", "RetryableError", "CancellationError", "WorkflowNotFoundError",
    "HookNotFoundError", "HookExpiredError", "HookAlreadyReceivedError", "InvalidTokenError",
    "ChildWorkflowFailedError", "MaxNestingDepthError", "NonDeterminismError",
    "EventLimitExceededError", "RunStatus", "WorkflowRun", "InMemoryStorageBackend",
    "FileStorageBackend", "SQLiteStorageBackend",
}


def test_all_lists_the_engine_api_and_resolves():
    assert ENGINE_NAMES <= set(pyworkflow.__all__)
    for name in pyworkflow.__all__:
        assert hasattr(pyworkflow, name), name


def test_string_values_match_pyworkflow_engine():
    assert EventType.WORKFLOW_STARTED == "workflow.started"
    assert EventType.STEP_COMPLETED.value == "step.completed"
    assert EventType.WORKFLOW_CONTINUED_AS_NEW.value == "workflow.continued_as_new"
    assert RunStatus.CONTINUED_AS_NEW.value == "continued_as_new"
    assert {s.value for s in RunStatus} >= {"pending", "running", "suspended", "completed",
                                             "failed", "cancelled"}


def test_signatures_match_the_engine():
    assert list(inspect.signature(pyworkflow.step).parameters)[:4] == [
        "name", "max_retries", "retry_delay", "timeout"]
    params = inspect.signature(pyworkflow.cancel_workflow).parameters
    assert list(params)[:4] == ["run_id", "reason", "wait", "timeout"]
    assert "idempotency_key" in inspect.signature(pyworkflow.start).parameters


def test_control_flow_signals_cannot_be_swallowed_by_except_exception():
    assert not issubclass(pyworkflow.SuspensionSignal, Exception)
    from pyworkflow.exceptions import ContinueAsNewSignal

    assert not issubclass(ContinueAsNewSignal, Exception)


def test_decorators_work_with_and_without_parentheses():
    @pyworkflow.step
    async def bare_step() -> None: ...

    @pyworkflow.step(max_retries=1)
    async def called_step() -> None: ...

    @pyworkflow.workflow
    async def bare_wf() -> None: ...

    @pyworkflow.workflow(name="named_wf_api_test")
    async def called_wf() -> None: ...

    assert bare_step.__step_name__ == "bare_step"
    assert called_step.__step_name__ == "called_step"
    assert pyworkflow.get_workflow("bare_wf") is not None
    assert pyworkflow.get_workflow("named_wf_api_test") is not None


def test_workflow_decorator_rejects_a_sync_function_with_a_clear_message():
    import pytest

    with pytest.raises(TypeError, match="async def"):
        @pyworkflow.workflow
        def sync_workflow() -> None: ...


def test_fan_out_and_versioning_are_public():
    names = {"parallel", "map", "FanOutResult", "FanOutError", "ItemStatus", "CompletionReason",
             "patched", "deprecate_patch", "replay_history", "ReplayReport"}
    assert names <= set(pyworkflow.__all__)
    assert not inspect.iscoroutinefunction(pyworkflow.patched)  # `if patched(...)` must work
    assert inspect.iscoroutinefunction(pyworkflow.map)

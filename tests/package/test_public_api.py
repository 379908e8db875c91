"""The public surface: names pyworkflow-engine users import, and nothing private leaking."""

import builtins
import importlib
import inspect

import pytest

import pyworkflow
from pyworkflow import EventType, NonDeterminismError, RunStatus

# ``pyworkflow.__all__``, sorted. A name added to or dropped from the public API must be added to
# or dropped from this list too, so every change to the surface is a deliberate one.
PUBLIC_API = [
    "CalendarSpec",
    "CancellationError",
    "ChildWorkflowError",
    "ChildWorkflowFailedError",
    "ChildWorkflowHandle",
    "CompletionReason",
    "ConcurrencyError",
    "ConditionNotMetError",
    "ConfigurationError",
    "DiscoveryError",
    "Event",
    "EventLimitExceededError",
    "EventType",
    "FanOutConfigError",
    "FanOutError",
    "FanOutResult",
    "FatalError",
    "FileStorageBackend",
    "HookAlreadyReceivedError",
    "HookExpiredError",
    "HookFailedError",
    "HookHeartbeatTimeoutError",
    "HookNotFoundError",
    "HookPayloadError",
    "HookStatus",
    "InMemoryStorageBackend",
    "InvalidArgumentsError",
    "InvalidResultError",
    "InvalidTokenError",
    "ItemStatus",
    "Jitter",
    "LocalContext",
    "LocalRuntime",
    "LocalScheduler",
    "MaxNestingDepthError",
    "MockContext",
    "NonDeterminismError",
    "OverlapPolicy",
    "PayloadTooLargeError",
    "ReplayReport",
    "ResumeResult",
    "RetryPolicy",
    "RetryableError",
    "RunStatus",
    "Runtime",
    "SQLiteStorageBackend",
    "Schedule",
    "ScheduleSpec",
    "ScheduleStatus",
    "ScheduledWorkflowMetadata",
    "SerializationError",
    "StepContext",
    "StepInterruptedError",
    "StorageBackend",
    "SuspensionSignal",
    "TerminationMode",
    "TypedHook",
    "WaitStrategy",
    "WorkflowAlreadyRunningError",
    "WorkflowContext",
    "WorkflowError",
    "WorkflowNotFoundError",
    "WorkflowRun",
    "__version__",
    "activate_scheduled_workflows",
    "backfill_schedule",
    "bind_step_context",
    "bind_workflow_context",
    "cancel_workflow",
    "configure",
    "configure_from_yaml",
    "configure_logging",
    "continue_as_new",
    "create_schedule",
    "define_hook",
    "delete_schedule",
    "deprecate_patch",
    "discover_workflows",
    "fail_hook",
    "get_config",
    "get_context",
    "get_logger",
    "get_runtime",
    "get_schedule",
    "get_scheduled_workflow",
    "get_step",
    "get_step_context",
    "get_storage",
    "get_workflow",
    "get_workflow_chain",
    "get_workflow_events",
    "get_workflow_run",
    "has_context",
    "has_step_context",
    "heartbeat_hook",
    "hook",
    "list_scheduled_workflows",
    "list_schedules",
    "list_steps",
    "list_workflows",
    "parallel",
    "patched",
    "pause_schedule",
    "register_runtime",
    "replay_history",
    "reset_config",
    "reset_context",
    "resume",
    "resume_hook",
    "resume_schedule",
    "scheduled_workflow",
    "set_context",
    "set_step_context",
    "shield",
    "sleep",
    "start",
    "start_child_workflow",
    "step",
    "trigger_schedule",
    "update_schedule",
    "wait_for_condition",
    "workflow",
]

# Subpackages used as public modules; each has an ``__all__`` of its own.
PUBLIC_SUBPACKAGES = [
    "pyworkflow.client",
    "pyworkflow.testing",
    "pyworkflow.storage",
    "pyworkflow.cli",
]

ENGINE_NAMES = {
    "configure",
    "reset_config",
    "get_config",
    "workflow",
    "step",
    "sleep",
    "hook",
    "define_hook",
    "resume_hook",
    "shield",
    "continue_as_new",
    "start_child_workflow",
    "ChildWorkflowHandle",
    "start",
    "resume",
    "cancel_workflow",
    "get_workflow_run",
    "get_workflow_events",
    "get_workflow_chain",
    "scheduled_workflow",
    "create_schedule",
    "list_schedules",
    "pause_schedule",
    "resume_schedule",
    "delete_schedule",
    "trigger_schedule",
    "backfill_schedule",
    "StepContext",
    "get_step_context",
    "set_step_context",
    "WorkflowError",
    "FatalError",
    "RetryableError",
    "CancellationError",
    "WorkflowNotFoundError",
    "HookNotFoundError",
    "HookExpiredError",
    "HookAlreadyReceivedError",
    "InvalidTokenError",
    "ChildWorkflowFailedError",
    "MaxNestingDepthError",
    "NonDeterminismError",
    "EventLimitExceededError",
    "RunStatus",
    "WorkflowRun",
    "InMemoryStorageBackend",
    "FileStorageBackend",
    "SQLiteStorageBackend",
}


def test_all_is_the_pinned_list_without_duplicates():
    assert sorted(pyworkflow.__all__) == PUBLIC_API
    assert len(set(pyworkflow.__all__)) == len(pyworkflow.__all__)


def test_all_lists_the_engine_api_and_resolves():
    assert ENGINE_NAMES <= set(pyworkflow.__all__)
    for name in pyworkflow.__all__:
        assert hasattr(pyworkflow, name), name


def test_star_import_shadows_no_builtin():
    namespace: dict[str, object] = {}
    exec("from pyworkflow import *", namespace)
    exported = set(namespace) - {"__builtins__"}
    assert exported == set(PUBLIC_API)
    assert not exported & set(dir(builtins))


def test_map_is_importable_by_name_but_not_by_star():
    from pyworkflow import map as fan_out_map
    from pyworkflow.core.parallel import map as parallel_map

    assert fan_out_map is parallel_map is pyworkflow.map
    assert "map" not in pyworkflow.__all__


@pytest.mark.parametrize("module_name", PUBLIC_SUBPACKAGES)
def test_public_subpackages_have_an_all_that_resolves_and_shadows_no_builtin(module_name):
    module = importlib.import_module(module_name)
    names = module.__all__
    assert names and len(set(names)) == len(names)
    for name in names:
        assert hasattr(module, name), f"{module_name}.{name}"
    assert not set(names) & set(dir(builtins))


def test_string_values_match_pyworkflow_engine():
    assert EventType.WORKFLOW_STARTED == "workflow.started"
    assert EventType.STEP_COMPLETED.value == "step.completed"
    assert EventType.WORKFLOW_CONTINUED_AS_NEW.value == "workflow.continued_as_new"
    assert RunStatus.CONTINUED_AS_NEW.value == "continued_as_new"
    assert {s.value for s in RunStatus} >= {
        "pending",
        "running",
        "suspended",
        "completed",
        "failed",
        "cancelled",
    }


def test_signatures_match_the_engine():
    assert list(inspect.signature(pyworkflow.step).parameters)[:4] == [
        "name",
        "max_retries",
        "retry_delay",
        "timeout",
    ]
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
    names = {
        "parallel",
        "FanOutResult",
        "FanOutError",
        "ItemStatus",
        "CompletionReason",
        "patched",
        "deprecate_patch",
        "replay_history",
        "ReplayReport",
    }
    assert names <= set(pyworkflow.__all__)
    assert not inspect.iscoroutinefunction(pyworkflow.patched)  # `if patched(...)` must work
    assert inspect.iscoroutinefunction(pyworkflow.map)


def test_exception_details_are_declared_and_given_at_creation():
    from pyworkflow.client.errors import rebuild
    from pyworkflow.exceptions import OpMismatch

    mismatch = OpMismatch(3, "step 'charge'", "sleep")
    assert NonDeterminismError("diverged", mismatch=mismatch).mismatch is mismatch
    assert pyworkflow.SerializationError("bad", path="[0]").path == "[0]"
    assert pyworkflow.InvalidArgumentsError("bad", path="['x']").path == "['x']"
    # Rebuilt from a server's message alone (no __init__): the details read as unknown.
    for cls in (
        NonDeterminismError,
        pyworkflow.SerializationError,
        pyworkflow.InvalidArgumentsError,
    ):
        error = rebuild(cls, "from the server")
        assert str(error) == "from the server"
        assert getattr(error, "mismatch", None) is None and getattr(error, "path", None) is None

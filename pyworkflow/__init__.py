"""pyworkflow: durable, event-sourced workflows — embedded on SQLite, serverless on AWS.

    import pyworkflow
    from pyworkflow import workflow, step, sleep, start

    @step
    async def charge(order_id: str) -> dict: ...

    @workflow
    async def order(order_id: str) -> dict:
        receipt = await charge(order_id)
        await sleep("1d")
        return receipt

    run_id = await start(order, "o-1")

The programming model follows pyworkflow-engine's public API, so its examples run unchanged.
"""

# Names load on first use (PEP 562): ``import pyworkflow`` costs next to nothing, and a Lambda
# cold start or a ``from pyworkflow import workflow, step`` pays only for what it touches.
# The imports below are for type checkers and readers; ``_LAZY`` is what runs.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyworkflow.api import (
        ResumeResult,
        activate_scheduled_workflows,
        backfill_schedule,
        cancel_workflow,
        create_schedule,
        delete_schedule,
        fail_hook,
        get_schedule,
        get_workflow_chain,
        get_workflow_events,
        get_workflow_run,
        heartbeat_hook,
        list_schedules,
        pause_schedule,
        resume,
        resume_hook,
        resume_schedule,
        start,
        trigger_schedule,
        update_schedule,
    )
    from pyworkflow.config import (
        configure,
        configure_from_yaml,
        get_config,
        get_storage,
        reset_config,
    )
    from pyworkflow.core.child import ChildWorkflowHandle, start_child_workflow
    from pyworkflow.core.condition import WaitStrategy, wait_for_condition
    from pyworkflow.core.continue_as_new import continue_as_new
    from pyworkflow.core.events import Event, EventType
    from pyworkflow.core.hook import TypedHook, define_hook, hook
    from pyworkflow.core.mock_context import MockContext
    from pyworkflow.core.models import (
        CalendarSpec,
        HookStatus,
        OverlapPolicy,
        RunStatus,
        Schedule,
        ScheduleSpec,
        ScheduleStatus,
        WorkflowRun,
    )
    from pyworkflow.core.parallel import (
        CompletionReason,
        FanOutConfigError,
        FanOutError,
        FanOutResult,
        ItemStatus,
        TerminationMode,
        parallel,
    )

    # `map` shadows the builtin, so it is importable by name (``from pyworkflow import map``,
    # ``pyworkflow.map``: pyworkflow-engine's spelling) but left out of ``__all__``: a
    # ``from pyworkflow import *`` must not replace the builtin ``map`` in the importing module.
    from pyworkflow.core.parallel import map as map
    from pyworkflow.core.patching import deprecate_patch, patched
    from pyworkflow.core.registry import get_step, get_workflow, list_steps, list_workflows
    from pyworkflow.core.retry_policy import Jitter, RetryPolicy
    from pyworkflow.core.shield import shield
    from pyworkflow.core.sleep import sleep
    from pyworkflow.core.step import step
    from pyworkflow.core.step_context import (
        StepContext,
        get_step_context,
        has_step_context,
        set_step_context,
    )
    from pyworkflow.core.workflow import workflow
    from pyworkflow.core.workflow_context import (
        LocalContext,
        WorkflowContext,
        get_context,
        has_context,
        reset_context,
        set_context,
    )
    from pyworkflow.discovery import discover_workflows
    from pyworkflow.exceptions import (
        CancellationError,
        ChildWorkflowError,
        ChildWorkflowFailedError,
        ConcurrencyError,
        ConditionNotMetError,
        ConfigurationError,
        DiscoveryError,
        EventLimitExceededError,
        FatalError,
        HookAlreadyReceivedError,
        HookExpiredError,
        HookFailedError,
        HookHeartbeatTimeoutError,
        HookNotFoundError,
        HookPayloadError,
        InvalidArgumentsError,
        InvalidResultError,
        InvalidTokenError,
        MaxNestingDepthError,
        NonDeterminismError,
        PayloadTooLargeError,
        RetryableError,
        SerializationError,
        StepInterruptedError,
        SuspensionSignal,
        WorkflowAlreadyRunningError,
        WorkflowError,
        WorkflowNotFoundError,
    )
    from pyworkflow.observability.logging import (
        bind_step_context,
        bind_workflow_context,
        configure_logging,
        get_logger,
    )
    from pyworkflow.runtime.registry import LocalRuntime, Runtime, get_runtime, register_runtime
    from pyworkflow.runtime.replay import ReplayReport, replay_history
    from pyworkflow.runtime.schedules import (
        ScheduledWorkflowMetadata,
        get_scheduled_workflow,
        list_scheduled_workflows,
        scheduled_workflow,
    )
    from pyworkflow.scheduler import LocalScheduler
    from pyworkflow.storage import (
        FileStorageBackend,
        InMemoryStorageBackend,
        SQLiteStorageBackend,
        StorageBackend,
    )

_LAZY: dict[str, tuple[str, str]] = {
    "ResumeResult": ("pyworkflow.api", "ResumeResult"),
    "activate_scheduled_workflows": ("pyworkflow.api", "activate_scheduled_workflows"),
    "backfill_schedule": ("pyworkflow.api", "backfill_schedule"),
    "cancel_workflow": ("pyworkflow.api", "cancel_workflow"),
    "create_schedule": ("pyworkflow.api", "create_schedule"),
    "delete_schedule": ("pyworkflow.api", "delete_schedule"),
    "get_schedule": ("pyworkflow.api", "get_schedule"),
    "get_workflow_chain": ("pyworkflow.api", "get_workflow_chain"),
    "get_workflow_events": ("pyworkflow.api", "get_workflow_events"),
    "get_workflow_run": ("pyworkflow.api", "get_workflow_run"),
    "list_schedules": ("pyworkflow.api", "list_schedules"),
    "pause_schedule": ("pyworkflow.api", "pause_schedule"),
    "resume": ("pyworkflow.api", "resume"),
    "resume_hook": ("pyworkflow.api", "resume_hook"),
    "fail_hook": ("pyworkflow.api", "fail_hook"),
    "heartbeat_hook": ("pyworkflow.api", "heartbeat_hook"),
    "resume_schedule": ("pyworkflow.api", "resume_schedule"),
    "start": ("pyworkflow.api", "start"),
    "trigger_schedule": ("pyworkflow.api", "trigger_schedule"),
    "update_schedule": ("pyworkflow.api", "update_schedule"),
    "configure": ("pyworkflow.config", "configure"),
    "configure_from_yaml": ("pyworkflow.config", "configure_from_yaml"),
    "get_config": ("pyworkflow.config", "get_config"),
    "get_storage": ("pyworkflow.config", "get_storage"),
    "reset_config": ("pyworkflow.config", "reset_config"),
    "ChildWorkflowHandle": ("pyworkflow.core.child", "ChildWorkflowHandle"),
    "start_child_workflow": ("pyworkflow.core.child", "start_child_workflow"),
    "continue_as_new": ("pyworkflow.core.continue_as_new", "continue_as_new"),
    "Event": ("pyworkflow.core.events", "Event"),
    "EventType": ("pyworkflow.core.events", "EventType"),
    "TypedHook": ("pyworkflow.core.hook", "TypedHook"),
    "define_hook": ("pyworkflow.core.hook", "define_hook"),
    "hook": ("pyworkflow.core.hook", "hook"),
    "MockContext": ("pyworkflow.core.mock_context", "MockContext"),
    "CalendarSpec": ("pyworkflow.core.models", "CalendarSpec"),
    "HookStatus": ("pyworkflow.core.models", "HookStatus"),
    "OverlapPolicy": ("pyworkflow.core.models", "OverlapPolicy"),
    "RunStatus": ("pyworkflow.core.models", "RunStatus"),
    "Schedule": ("pyworkflow.core.models", "Schedule"),
    "ScheduleSpec": ("pyworkflow.core.models", "ScheduleSpec"),
    "ScheduleStatus": ("pyworkflow.core.models", "ScheduleStatus"),
    "WorkflowRun": ("pyworkflow.core.models", "WorkflowRun"),
    "CompletionReason": ("pyworkflow.core.parallel", "CompletionReason"),
    "FanOutError": ("pyworkflow.core.parallel", "FanOutError"),
    "FanOutConfigError": ("pyworkflow.core.parallel", "FanOutConfigError"),
    "TerminationMode": ("pyworkflow.core.parallel", "TerminationMode"),
    "FanOutResult": ("pyworkflow.core.parallel", "FanOutResult"),
    "ItemStatus": ("pyworkflow.core.parallel", "ItemStatus"),
    "parallel": ("pyworkflow.core.parallel", "parallel"),
    "map": ("pyworkflow.core.parallel", "map"),
    "deprecate_patch": ("pyworkflow.core.patching", "deprecate_patch"),
    "patched": ("pyworkflow.core.patching", "patched"),
    "get_step": ("pyworkflow.core.registry", "get_step"),
    "get_workflow": ("pyworkflow.core.registry", "get_workflow"),
    "list_steps": ("pyworkflow.core.registry", "list_steps"),
    "list_workflows": ("pyworkflow.core.registry", "list_workflows"),
    "Jitter": ("pyworkflow.core.retry_policy", "Jitter"),
    "RetryPolicy": ("pyworkflow.core.retry_policy", "RetryPolicy"),
    "shield": ("pyworkflow.core.shield", "shield"),
    "WaitStrategy": ("pyworkflow.core.condition", "WaitStrategy"),
    "wait_for_condition": ("pyworkflow.core.condition", "wait_for_condition"),
    "sleep": ("pyworkflow.core.sleep", "sleep"),
    "step": ("pyworkflow.core.step", "step"),
    "StepContext": ("pyworkflow.core.step_context", "StepContext"),
    "get_step_context": ("pyworkflow.core.step_context", "get_step_context"),
    "has_step_context": ("pyworkflow.core.step_context", "has_step_context"),
    "set_step_context": ("pyworkflow.core.step_context", "set_step_context"),
    "workflow": ("pyworkflow.core.workflow", "workflow"),
    "LocalContext": ("pyworkflow.core.workflow_context", "LocalContext"),
    "WorkflowContext": ("pyworkflow.core.workflow_context", "WorkflowContext"),
    "get_context": ("pyworkflow.core.workflow_context", "get_context"),
    "has_context": ("pyworkflow.core.workflow_context", "has_context"),
    "reset_context": ("pyworkflow.core.workflow_context", "reset_context"),
    "set_context": ("pyworkflow.core.workflow_context", "set_context"),
    "discover_workflows": ("pyworkflow.discovery", "discover_workflows"),
    "CancellationError": ("pyworkflow.exceptions", "CancellationError"),
    "ChildWorkflowError": ("pyworkflow.exceptions", "ChildWorkflowError"),
    "ConditionNotMetError": ("pyworkflow.exceptions", "ConditionNotMetError"),
    "ChildWorkflowFailedError": ("pyworkflow.exceptions", "ChildWorkflowFailedError"),
    "ConcurrencyError": ("pyworkflow.exceptions", "ConcurrencyError"),
    "ConfigurationError": ("pyworkflow.exceptions", "ConfigurationError"),
    "DiscoveryError": ("pyworkflow.exceptions", "DiscoveryError"),
    "EventLimitExceededError": ("pyworkflow.exceptions", "EventLimitExceededError"),
    "FatalError": ("pyworkflow.exceptions", "FatalError"),
    "HookAlreadyReceivedError": ("pyworkflow.exceptions", "HookAlreadyReceivedError"),
    "HookExpiredError": ("pyworkflow.exceptions", "HookExpiredError"),
    "HookFailedError": ("pyworkflow.exceptions", "HookFailedError"),
    "HookHeartbeatTimeoutError": ("pyworkflow.exceptions", "HookHeartbeatTimeoutError"),
    "HookNotFoundError": ("pyworkflow.exceptions", "HookNotFoundError"),
    "HookPayloadError": ("pyworkflow.exceptions", "HookPayloadError"),
    "InvalidArgumentsError": ("pyworkflow.exceptions", "InvalidArgumentsError"),
    "InvalidResultError": ("pyworkflow.exceptions", "InvalidResultError"),
    "InvalidTokenError": ("pyworkflow.exceptions", "InvalidTokenError"),
    "MaxNestingDepthError": ("pyworkflow.exceptions", "MaxNestingDepthError"),
    "NonDeterminismError": ("pyworkflow.exceptions", "NonDeterminismError"),
    "PayloadTooLargeError": ("pyworkflow.exceptions", "PayloadTooLargeError"),
    "RetryableError": ("pyworkflow.exceptions", "RetryableError"),
    "SerializationError": ("pyworkflow.exceptions", "SerializationError"),
    "StepInterruptedError": ("pyworkflow.exceptions", "StepInterruptedError"),
    "SuspensionSignal": ("pyworkflow.exceptions", "SuspensionSignal"),
    "WorkflowAlreadyRunningError": ("pyworkflow.exceptions", "WorkflowAlreadyRunningError"),
    "WorkflowError": ("pyworkflow.exceptions", "WorkflowError"),
    "WorkflowNotFoundError": ("pyworkflow.exceptions", "WorkflowNotFoundError"),
    "bind_step_context": ("pyworkflow.observability.logging", "bind_step_context"),
    "bind_workflow_context": ("pyworkflow.observability.logging", "bind_workflow_context"),
    "configure_logging": ("pyworkflow.observability.logging", "configure_logging"),
    "get_logger": ("pyworkflow.observability.logging", "get_logger"),
    "LocalRuntime": ("pyworkflow.runtime.registry", "LocalRuntime"),
    "Runtime": ("pyworkflow.runtime.registry", "Runtime"),
    "get_runtime": ("pyworkflow.runtime.registry", "get_runtime"),
    "register_runtime": ("pyworkflow.runtime.registry", "register_runtime"),
    "ReplayReport": ("pyworkflow.runtime.replay", "ReplayReport"),
    "replay_history": ("pyworkflow.runtime.replay", "replay_history"),
    "ScheduledWorkflowMetadata": ("pyworkflow.runtime.schedules", "ScheduledWorkflowMetadata"),
    "get_scheduled_workflow": ("pyworkflow.runtime.schedules", "get_scheduled_workflow"),
    "list_scheduled_workflows": ("pyworkflow.runtime.schedules", "list_scheduled_workflows"),
    "scheduled_workflow": ("pyworkflow.runtime.schedules", "scheduled_workflow"),
    "LocalScheduler": ("pyworkflow.scheduler", "LocalScheduler"),
    "FileStorageBackend": ("pyworkflow.storage", "FileStorageBackend"),
    "InMemoryStorageBackend": ("pyworkflow.storage", "InMemoryStorageBackend"),
    "SQLiteStorageBackend": ("pyworkflow.storage", "SQLiteStorageBackend"),
    "StorageBackend": ("pyworkflow.storage", "StorageBackend"),
}

__version__ = "0.1.0"

# The curated public API, pinned by tests/package/test_public_api.py: adding a name here is a
# deliberate change to that test too. Not listed on purpose: ``map`` (see its import above).
__all__ = [
    "__version__",
    # configuration
    "configure",
    "configure_from_yaml",
    "get_config",
    "get_storage",
    "reset_config",
    "discover_workflows",
    # logging
    "configure_logging",
    "get_logger",
    # decorators and primitives
    "workflow",
    "step",
    "RetryPolicy",
    "Jitter",
    "sleep",
    "wait_for_condition",
    "WaitStrategy",
    "hook",
    "define_hook",
    "TypedHook",
    "shield",
    "continue_as_new",
    "start_child_workflow",
    "ChildWorkflowHandle",
    "StepContext",
    "get_step_context",
    "has_step_context",
    "set_step_context",
    # the workflow context (pyworkflow-engine's context API)
    "WorkflowContext",
    "LocalContext",
    "MockContext",
    "get_context",
    "has_context",
    "set_context",
    "reset_context",
    # fan-out and versioning
    "parallel",
    "FanOutResult",
    "FanOutError",
    "ItemStatus",
    "CompletionReason",
    "TerminationMode",
    "FanOutConfigError",
    "patched",
    "deprecate_patch",
    "replay_history",
    "ReplayReport",
    # running and inspecting
    "start",
    "resume",
    "cancel_workflow",
    "resume_hook",
    "fail_hook",
    "heartbeat_hook",
    "ResumeResult",
    "get_workflow_run",
    "get_workflow_events",
    "get_workflow_chain",
    "get_workflow",
    "list_workflows",
    "get_step",
    "list_steps",
    # schedules
    "scheduled_workflow",
    "create_schedule",
    "get_schedule",
    "list_schedules",
    "update_schedule",
    "pause_schedule",
    "resume_schedule",
    "delete_schedule",
    "trigger_schedule",
    "backfill_schedule",
    "LocalScheduler",
    "activate_scheduled_workflows",
    "get_scheduled_workflow",
    "list_scheduled_workflows",
    "ScheduledWorkflowMetadata",
    # records
    "WorkflowRun",
    "RunStatus",
    "Event",
    "EventType",
    "HookStatus",
    "Schedule",
    "ScheduleSpec",
    "CalendarSpec",
    "ScheduleStatus",
    "OverlapPolicy",
    # runtimes by name
    "Runtime",
    "LocalRuntime",
    "get_runtime",
    "register_runtime",
    # logging
    "bind_workflow_context",
    "bind_step_context",
    # storage
    "StorageBackend",
    "InMemoryStorageBackend",
    "FileStorageBackend",
    "SQLiteStorageBackend",
    # exceptions
    "WorkflowError",
    "FatalError",
    "RetryableError",
    "CancellationError",
    "ConditionNotMetError",
    "WorkflowNotFoundError",
    "WorkflowAlreadyRunningError",
    "ConfigurationError",
    "DiscoveryError",
    "HookNotFoundError",
    "HookExpiredError",
    "HookHeartbeatTimeoutError",
    "HookFailedError",
    "HookAlreadyReceivedError",
    "HookPayloadError",
    "InvalidTokenError",
    "ChildWorkflowError",
    "ChildWorkflowFailedError",
    "MaxNestingDepthError",
    "NonDeterminismError",
    "PayloadTooLargeError",
    "EventLimitExceededError",
    "SerializationError",
    "StepInterruptedError",
    "InvalidArgumentsError",
    "InvalidResultError",
    "ConcurrencyError",
    "SuspensionSignal",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pyworkflow' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

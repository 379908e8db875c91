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

from pyworkflow.api import (
    ResumeResult,
    activate_scheduled_workflows,
    backfill_schedule,
    cancel_workflow,
    create_schedule,
    delete_schedule,
    get_schedule,
    get_workflow_chain,
    get_workflow_events,
    get_workflow_run,
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
    FanOutError,
    FanOutResult,
    ItemStatus,
    parallel,
)

# `map` shadows the builtin, so it is importable by name (``from pyworkflow import map``,
# ``pyworkflow.map``: pyworkflow-engine's spelling) but left out of ``__all__``: a
# ``from pyworkflow import *`` must not replace the builtin ``map`` in the importing module.
from pyworkflow.core.parallel import map as map
from pyworkflow.core.patching import deprecate_patch, patched
from pyworkflow.core.registry import get_step, get_workflow, list_steps, list_workflows
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
    ConfigurationError,
    DiscoveryError,
    EventLimitExceededError,
    FatalError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    HookPayloadError,
    InvalidArgumentsError,
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
    "sleep",
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
    "patched",
    "deprecate_patch",
    "replay_history",
    "ReplayReport",
    # running and inspecting
    "start",
    "resume",
    "cancel_workflow",
    "resume_hook",
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
    "WorkflowNotFoundError",
    "WorkflowAlreadyRunningError",
    "ConfigurationError",
    "DiscoveryError",
    "HookNotFoundError",
    "HookExpiredError",
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
    "ConcurrencyError",
    "SuspensionSignal",
]

"""pyworkflow-engine's module-level API on the embedded runtime: thin callers of
``pyworkflow.service`` (re-exported by ``pyworkflow`` itself)."""

from pyworkflow.api.runs import (
    ResumeResult,
    cancel_workflow,
    get_workflow_chain,
    get_workflow_events,
    get_workflow_run,
    resume,
    resume_hook,
    resume_hook_by_name,
    start,
    wait_for_run,
)
from pyworkflow.api.schedules import (
    activate_scheduled_workflows,
    backfill_schedule,
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
    trigger_schedule,
    update_schedule,
)

__all__ = [
    "ResumeResult",
    "activate_scheduled_workflows",
    "backfill_schedule",
    "cancel_workflow",
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "get_workflow_chain",
    "get_workflow_events",
    "get_workflow_run",
    "list_schedules",
    "pause_schedule",
    "resume",
    "resume_hook",
    "resume_hook_by_name",
    "resume_schedule",
    "start",
    "trigger_schedule",
    "update_schedule",
    "wait_for_run",
]

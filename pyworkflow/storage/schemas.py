"""pyworkflow-engine 0.1.9's records module, by its import path: ``from
pyworkflow.storage.schemas import WorkflowRun, RunStatus`` keeps working.

The records are this package's (``pyworkflow/core/models.py``), re-exported: the same names,
fields and enum values as 0.1.9's dataclasses, as pydantic models (``to_dict``/``from_dict``
kept). Storage keeps no ``StepExecution`` records: ``list_steps``/``get_step`` derive them from
a run's step events.
"""

from pyworkflow.core.models import (
    CalendarSpec,
    Hook,
    HookStatus,
    OverlapPolicy,
    RunStatus,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
    StepExecution,
    StepStatus,
    WorkflowRun,
)

__all__ = [
    "RunStatus",
    "StepStatus",
    "HookStatus",
    "OverlapPolicy",
    "ScheduleStatus",
    "WorkflowRun",
    "StepExecution",
    "Hook",
    "CalendarSpec",
    "ScheduleSpec",
    "Schedule",
]

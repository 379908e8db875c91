"""``pyworkflow.context``: pyworkflow-engine's import path for the context API, so
``from pyworkflow.context import get_context, MockContext`` works unchanged. The definitions
live in ``pyworkflow.core.workflow_context``, ``pyworkflow.core.step_context`` and
``pyworkflow.core.mock_context``."""

from pyworkflow.core.mock_context import MockContext
from pyworkflow.core.step_context import (
    StepContext,
    get_step_context,
    has_step_context,
    set_step_context,
)
from pyworkflow.core.workflow_context import (
    LocalContext,
    WorkflowContext,
    get_context,
    has_context,
    reset_context,
    set_context,
)

__all__ = [
    "WorkflowContext",
    "get_context",
    "has_context",
    "set_context",
    "reset_context",
    "StepContext",
    "get_step_context",
    "has_step_context",
    "set_step_context",
    "LocalContext",
    "MockContext",
]

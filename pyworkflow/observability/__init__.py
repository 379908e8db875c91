"""Logging helpers with pyworkflow-engine's names (``pyworkflow.observability.logging``)."""

from pyworkflow.observability.logging import (
    bind_step_context,
    bind_workflow_context,
    configure_logging,
    get_logger,
)

__all__ = ["bind_step_context", "bind_workflow_context", "configure_logging", "get_logger"]

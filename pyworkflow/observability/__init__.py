"""Observability: pyworkflow-engine's logging helpers, instrumentation plugins (called by every
runtime for runs, operations and step attempts) and OpenTelemetry tracing
(``pyworkflow.observability.otel``, the ``[otel]`` extra). See docs/observability.md."""

from pyworkflow.core.instrumentation import (
    ErrorInfo,
    Instrumentation,
    OperationInfo,
    OperationKind,
    Outcome,
    OutcomeStatus,
    RunInfo,
)
from pyworkflow.observability.logging import (
    bind_step_context,
    bind_workflow_context,
    configure_logging,
    get_logger,
)

__all__ = [
    "ErrorInfo",
    "Instrumentation",
    "OperationInfo",
    "OperationKind",
    "Outcome",
    "OutcomeStatus",
    "RunInfo",
    "bind_step_context",
    "bind_workflow_context",
    "configure_logging",
    "get_logger",
]

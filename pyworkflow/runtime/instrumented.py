"""The runtime's side of instrumentation: one ``ExecutionReport`` per execution tells the
plugins that it started and how it ended (the operations are reported by the replay context
itself, see ``pyworkflow.core.instrumentation``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyworkflow.core.clock import Clock
from pyworkflow.core.events import Event
from pyworkflow.core.instrumentation import ErrorInfo, Instruments, RunInfo
from pyworkflow.core.models import WorkflowRun

#: the status an execution reports when it stopped without an outcome (a conflicting write, a
#: store outage, a teardown): the run is driven again from its history
INTERRUPTED = "interrupted"


def recorded_trace(history: list[Event]) -> Mapping[str, Any] | None:
    """The trace context a run's ``workflow.started`` event recorded, if any."""
    if not history:
        return None
    value = history[0].data.get("trace_context")
    return value if isinstance(value, dict) and value else None


class ExecutionReport:
    """Tells the plugins about one execution of a run; created as it starts."""

    __slots__ = ("clock", "info", "instruments")

    def __init__(
        self, instruments: Instruments, run: WorkflowRun, history: list[Event], clock: Clock
    ) -> None:
        self.instruments = instruments
        self.clock = clock
        self.info = RunInfo(
            run_id=run.run_id,
            workflow=run.workflow_name,
            first_execution=not any(e.op is not None for e in history),
            created_at=run.created_at,
            execution_started_at=clock.now(),
            parent_run_id=run.parent_run_id,
            continued_from_run_id=run.continued_from_run_id,
            trace_context=recorded_trace(history) or {},
            input_args=run.input_args,
            input_kwargs=run.input_kwargs,
        )
        instruments.run_started(self.info)

    def ended(self, run: WorkflowRun) -> None:
        failed = run.error is not None and run.status.is_terminal
        error = ErrorInfo(run.error_type, run.error or "") if failed else None
        self._end(run.status.value, error)

    def interrupted(self, exc: BaseException) -> None:
        self._end(INTERRUPTED, ErrorInfo(type(exc).__name__, str(exc)))

    def _end(self, status: str, error: ErrorInfo | None) -> None:
        duration = self.clock.now() - self.info.execution_started_at
        self.instruments.run_ended(self.info, status, error, duration)


__all__ = ["INTERRUPTED", "ExecutionReport", "recorded_trace"]

"""OpenTelemetry tracing for pyworkflow runs (the ``[otel]`` extra: opentelemetry-api/-sdk).

Turned on by ``configure(tracing="otel")`` or ``PYWORKFLOW_OTEL=1``; or registered by hand,
``configure(instrumentation=[OtelInstrumentation(tracer_provider=...)])``. Without a provider
it uses the global one: on Lambda, the one the ADOT layer (or your own setup code) installed,
so spans go wherever that exports (X-Ray, an OTLP collector).

The spans (docs/observability.md has the whole story):

- ``workflow <name>``: the run's root, made when the run is created, in the trace of the code
  that started it (its active span, if any) or a new trace. Its context is recorded in the
  run's ``workflow.started`` event, so every later execution, on any machine, continues that
  trace. A child run and a continued run start a trace of their own, with a span link to the
  parent's (previous run's) root.
- ``execution <name>``: one per execution (a drive; a Lambda invocation on AWS), child of the
  root, with the wake-up message's sender as a link when it came over SQS/Scheduler.
- ``<kind> <name>`` (``step charge``, ``sleep sleep``, ``hook approval``...): one per operation
  reached in the execution, from its recorded start; an operation still waited for when the
  execution suspends ends there with ``pyworkflow.outcome=suspended`` and the execution that
  finishes it exports it again, ``pyworkflow.replayed=true``. Operations the history holds
  finished are replayed without a span (they were exported by the execution that ran them).
- ``step <name> #<attempt>``: each attempt of a step, current while the step's function runs,
  so spans the function makes (an HTTP client's) are its children.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pyworkflow.core.instrumentation import (
    ErrorInfo,
    Instrumentation,
    OperationInfo,
    Outcome,
    OutcomeStatus,
    RunInfo,
)

SCOPE = "pyworkflow"
_W3C = TraceContextTextMapPropagator()
_FAILED_RUN = frozenset({"failed"})


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000_000)


def _span_context(carrier: Mapping[str, Any]) -> trace.SpanContext | None:
    span = trace.get_current_span(_W3C.extract(dict(carrier)))
    context = span.get_span_context()
    return context if context.is_valid else None


@dataclass
class _Execution:
    span: Span
    token: object
    ops: dict[str, Span] = field(default_factory=dict)
    attempts: dict[str, tuple[Span, object]] = field(default_factory=dict)


class OtelInstrumentation(Instrumentation):
    """Spans for runs, executions, operations and step attempts (see the module docstring)."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        self._executions: dict[str, _Execution] = {}

    # --- propagation (wake-up messages; pyworkflow.observability.plugins calls these) ------
    def inject(self) -> dict[str, str] | None:
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)
        return carrier or None

    @contextlib.contextmanager
    def attach(self, carrier: Mapping[str, Any]) -> Iterator[None]:
        token = otel_context.attach(_W3C.extract(dict(carrier)))
        try:
            yield
        finally:
            otel_context.detach(token)

    # --- runs ---------------------------------------------------------------------------------
    def trace_context(self, run_id: str, workflow: str, links: list[Mapping[str, Any]]) -> Any:
        linked = [c for c in (_span_context(link) for link in links) if c is not None]
        # a child or continued run: a trace of its own, linked; else the caller's trace
        parent = otel_context.Context() if links else None
        span = self.tracer.start_span(
            f"workflow {workflow}",
            context=parent,
            kind=SpanKind.PRODUCER,
            links=[Link(c, {"pyworkflow.link": "parent"}) for c in linked],
            attributes={"pyworkflow.run_id": run_id, "pyworkflow.workflow": workflow},
        )
        span.end()
        carrier: dict[str, str] = {}
        _W3C.inject(carrier, context=trace.set_span_in_context(span))
        return carrier or None

    def run_started(self, run: RunInfo) -> None:
        current = trace.get_current_span().get_span_context()
        recorded = _span_context(run.trace_context) if run.trace_context else None
        links = []
        if recorded is not None:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(recorded))
            if current.is_valid and current.span_id != recorded.span_id:
                links.append(Link(current, {"pyworkflow.link": "wake-up"}))
        else:
            parent = None  # the current context: the wake-up's sender, a caller's span
        span = self.tracer.start_span(
            f"execution {run.workflow}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            start_time=_ns(run.execution_started_at),
            attributes={
                "pyworkflow.run_id": run.run_id,
                "pyworkflow.workflow": run.workflow,
                "pyworkflow.first_execution": run.first_execution,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        previous = self._executions.pop(run.run_id, None)
        if previous is not None:  # an execution that never told its end (should not happen)
            previous.span.end()
        self._executions[run.run_id] = _Execution(span, token)

    def run_ended(
        self, run: RunInfo, status: str, error: ErrorInfo | None, duration: timedelta
    ) -> None:
        execution = self._executions.pop(run.run_id, None)
        if execution is None:
            return
        end = _ns(run.execution_started_at + duration)
        for span, token in reversed(list(execution.attempts.values())):
            _detach(token)
            span.set_attribute("pyworkflow.outcome", status)
            span.end(end_time=end)
        for span in execution.ops.values():
            span.set_attribute("pyworkflow.outcome", status)
            span.end(end_time=end)
        span = execution.span
        span.set_attribute("pyworkflow.status", status)
        if error is not None and status in _FAILED_RUN:
            _set_error(span, error)
        _detach(execution.token)
        span.end(end_time=end)

    # --- operations ---------------------------------------------------------------------------
    def operation_started(self, op: OperationInfo) -> None:
        execution = self._executions.get(op.run_id)
        if execution is None:
            return
        attributes: dict[str, Any] = {
            "pyworkflow.run_id": op.run_id,
            "pyworkflow.workflow": op.workflow,
            "pyworkflow.operation": op.kind,
            "pyworkflow.operation_id": op.op_id,
            "pyworkflow.name": op.name,
            "pyworkflow.replayed": op.replayed,
        }
        if op.kind == "step":
            attributes["pyworkflow.step"] = op.name
        if op.parent_id is not None:
            attributes["pyworkflow.parent_operation_id"] = op.parent_id
        execution.ops[op.op_id] = self.tracer.start_span(
            f"{op.kind} {op.name}",
            context=trace.set_span_in_context(execution.span),
            start_time=_ns(op.started_at),
            attributes=attributes,
        )

    def operation_ended(self, op: OperationInfo, outcome: Outcome, duration: timedelta) -> None:
        execution = self._executions.get(op.run_id)
        span = execution.ops.pop(op.op_id, None) if execution is not None else None
        if span is None:
            return
        span.set_attribute("pyworkflow.attempt", op.attempt)
        _set_outcome(span, outcome)
        span.end(end_time=_ns(op.started_at + duration))

    def attempt_started(self, op: OperationInfo) -> None:
        execution = self._executions.get(op.run_id)
        parent = execution.ops.get(op.op_id) if execution is not None else None
        if execution is None or parent is None:
            return
        span = self.tracer.start_span(
            f"{op.kind} {op.name} #{op.attempt}",
            context=trace.set_span_in_context(parent),
            start_time=_ns(op.started_at),
            attributes={
                "pyworkflow.run_id": op.run_id,
                "pyworkflow.step": op.name,
                "pyworkflow.operation_id": op.op_id,
                "pyworkflow.attempt": op.attempt,
            },
        )
        # current while the step's function runs: its own spans nest under the attempt
        token = otel_context.attach(trace.set_span_in_context(span))
        execution.attempts[op.op_id] = (span, token)

    def attempt_ended(self, op: OperationInfo, outcome: Outcome, duration: timedelta) -> None:
        execution = self._executions.get(op.run_id)
        found = execution.attempts.pop(op.op_id, None) if execution is not None else None
        if found is None:
            return
        span, token = found
        _detach(token)
        _set_outcome(span, outcome)
        span.end(end_time=_ns(op.started_at + duration))


def _set_outcome(span: Span, outcome: Outcome) -> None:
    span.set_attribute("pyworkflow.outcome", outcome.status.value)
    if outcome.status == OutcomeStatus.FAILED and outcome.error is not None:
        _set_error(span, outcome.error)
    elif outcome.status == OutcomeStatus.CANCELLED and outcome.error is not None:
        span.set_attribute("error.type", outcome.error.type or "CancelledError")


def _set_error(span: Span, error: ErrorInfo) -> None:
    span.set_attribute("error.type", error.type or "Error")
    span.set_status(Status(StatusCode.ERROR, error.message))


def _detach(token: object) -> None:
    # A token made in another context (a task torn down mid-attempt) cannot be reset there;
    # that context goes away with its task, so there is nothing to undo.
    with contextlib.suppress(ValueError, RuntimeError):
        otel_context.detach(token)  # type: ignore[arg-type]


__all__ = ["OtelInstrumentation"]

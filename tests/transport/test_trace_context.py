"""Wake-up messages carry the sender's W3C trace context when tracing is on, and only then; a
received one is current while the worker drives the run."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import pyworkflow
from pyworkflow.observability.otel import OtelInstrumentation
from pyworkflow.observability.plugins import active, incoming_trace
from pyworkflow.transport.messages import WakeMessage, parse_message, wake_body


def test_a_wake_up_carries_no_trace_context_without_tracing() -> None:
    assert "trace" not in wake_body("run_1", "timer", "run_1-3")


def test_a_wake_up_carries_the_current_trace_context_when_tracing() -> None:
    provider = TracerProvider()
    pyworkflow.configure(instrumentation=[OtelInstrumentation(tracer_provider=provider)])
    assert active() is not None
    with provider.get_tracer("t").start_as_current_span("execution") as span:
        body = wake_body("run_1", "timer", "run_1-3")
    message = parse_message(body)
    assert isinstance(message, WakeMessage) and message.trace is not None
    context = span.get_span_context()
    assert message.trace["traceparent"].startswith(
        f"00-{context.trace_id:032x}-{context.span_id:016x}-"
    )
    # received: that context is the current one while the run is driven
    with incoming_trace(message.trace):
        current = trace.get_current_span().get_span_context()
    assert (current.trace_id, current.span_id) == (context.trace_id, context.span_id)
    assert not trace.get_current_span().get_span_context().is_valid


def test_a_fresh_worker_takes_the_trace_context_of_its_first_message() -> None:
    pyworkflow.configure(instrumentation=[OtelInstrumentation(tracer_provider=TracerProvider())])
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    with incoming_trace(carrier):  # before anything else asked for the plugins
        current = trace.get_current_span().get_span_context()
    assert (current.trace_id, current.span_id) == (
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
    )

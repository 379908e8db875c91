"""Instrumentation and tracing on the AWS runtime (SQS worker, EventBridge Scheduler timers on
moto, DynamoDB Local or SQLite): a run whose sleep is woken by a Scheduler timer, in another
invocation, continues the same trace, and the execution it woke links to the one that armed the
timer; a plugin hears each invocation (first, then replayed) as on the embedded runtime."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import pyworkflow
from pyworkflow.core.clock import new_id
from pyworkflow.core.models import RunStatus
from pyworkflow.observability.otel import OtelInstrumentation
from pyworkflow.transport.scheduler import schedule_name
from tests.aws import workflows as wf
from tests.aws.conftest import Aws
from tests.observability.recording import Recording


async def _sleep_through_scheduler(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    """Start a 2 s sleeper with every sleep on Scheduler; run it to its timer; return the run
    id and the timer's target Input (the wake-up message)."""
    monkeypatch.setenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", "0")
    run_id = await aws.client.start(wf.sleeper, new_id("k"), 2)
    await aws.pump(idle_polls=1, wait_seconds=0)
    run = await aws.run(run_id)
    assert run.status == RunStatus.SUSPENDED and run.wake_at and run.wake_key
    schedule = await aws.scheduler.get_schedule(
        Name=schedule_name(run.wake_key), GroupName=aws.stack.scheduler_group
    )
    await asyncio.sleep(max(0.0, (run.wake_at - datetime.now(UTC)).total_seconds()) + 1.0)
    assert await aws.fire(datetime.now(UTC)) == [schedule_name(run.wake_key)]
    await aws.pump_until_done(run_id)
    assert (await aws.run(run_id)).status == RunStatus.COMPLETED
    return run_id, json.loads(schedule["Target"]["Input"])


async def test_a_run_woken_by_a_scheduler_timer_continues_its_trace(
    aws: Aws, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    pyworkflow.configure(instrumentation=[OtelInstrumentation(tracer_provider=provider)])
    run_id, message = await _sleep_through_scheduler(aws, monkeypatch)
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.name == "workflow aws_sleeper"]
    first, second = sorted(
        (s for s in spans if s.name == "execution aws_sleeper"), key=lambda s: s.start_time
    )
    trace_id = root.context.trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}
    assert first.parent.span_id == second.parent.span_id == root.context.span_id
    # the timer's message carried the trace context of the execution that armed it ...
    assert message["run_id"] == run_id
    version, sent_trace, sent_span, _ = message["trace"]["traceparent"].split("-")
    assert int(sent_trace, 16) == trace_id and int(sent_span, 16) == first.context.span_id
    # ... and the execution it woke, in another invocation, links back to that one
    assert [link.context.span_id for link in second.links] == [first.context.span_id]
    assert [dict(s.attributes)["pyworkflow.status"] for s in (first, second)] == [
        "suspended",
        "completed",
    ]
    assert len([s for s in spans if s.name == "step add"]) == 2
    provider.shutdown()


async def test_a_plugin_hears_every_invocation_of_a_run_on_aws(
    aws: Aws, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recording()
    pyworkflow.configure(instrumentation=[rec])
    _, message = await _sleep_through_scheduler(aws, monkeypatch)
    assert rec.of("run_started") == [
        ("run_started", "aws_sleeper", True),
        ("run_started", "aws_sleeper", False),
    ]
    assert [c[2] for c in rec.of("run_ended")] == ["suspended", "completed"]
    assert rec.of("operation_started") == [
        ("operation_started", "step", "add", "0", False),
        ("operation_started", "sleep", "sleep", "1", False),
        ("operation_started", "sleep", "sleep", "1", True),
        ("operation_started", "step", "add", "2", False),
    ]
    assert "trace" not in message  # no tracer: wake-ups carry no trace context

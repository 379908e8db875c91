"""OpenTelemetry spans of runs on the embedded runtime, checked with the in-memory exporter: a
trace per run, a span per execution, operation and step attempt, with their attributes; retries,
replay marking and failures; continue-as-new and child runs linked to the run they come from."""

from __future__ import annotations

from collections import Counter

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import pyworkflow
from pyworkflow import (
    RetryPolicy,
    continue_as_new,
    get_workflow_events,
    resume,
    sleep,
    start,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.core.clock import ManualClock
from pyworkflow.storage import InMemoryStorageBackend
from tests.observability.conftest import Spans

calls: Counter[str] = Counter()
providers: list[trace.TracerProvider] = []  # the test's, for the user code's own spans


@pytest.fixture(autouse=True)
def _store():
    calls.clear()
    pyworkflow.configure(storage=InMemoryStorageBackend())


@step
async def charge(amount: int) -> int:
    tracer = trace.get_tracer("user-code", tracer_provider=providers[-1])
    with tracer.start_as_current_span("http POST /charge"):
        return amount * 100


@step(retry=RetryPolicy(max_attempts=3, initial_delay=0))
async def flaky(key: str) -> str:
    calls[key] += 1
    if calls[key] < 3:
        raise ConnectionError("reset")
    return "ok"


@step(retry=RetryPolicy(max_attempts=1))
async def declined() -> None:
    raise ValueError("card declined")


@workflow(name="otel_order")
async def order(amount: int) -> int:
    cents = await charge(amount)
    await sleep(60)
    return cents


@workflow(name="otel_retry")
async def retried(key: str) -> str:
    return await flaky(key)


@workflow(name="otel_fail")
async def failing() -> None:
    await declined()


@workflow(name="otel_kid")
async def kid(n: int) -> int:
    return n * 2


@workflow(name="otel_parent")
async def parent(n: int) -> int:
    return await start_child_workflow(kid, n)


@workflow(name="otel_chain")
async def chain(n: int) -> int:
    if n < 1:
        continue_as_new(n + 1)
    return n


def attrs(span) -> dict:
    return dict(span.attributes or {})


async def test_a_run_is_one_trace_with_a_span_per_execution_operation_and_attempt(
    spans: Spans,
) -> None:
    clock = ManualClock()
    pyworkflow.configure(clock=clock)
    providers.append(spans.provider)
    run_id = await start(order, 5)
    clock.advance(61)
    assert await resume(run_id) == 500
    root = spans.one("workflow otel_order")
    assert {s.context.trace_id for s in spans.all()} == {root.context.trace_id}
    assert attrs(root)["pyworkflow.run_id"] == run_id
    executions = spans.named("execution otel_order")
    assert len(executions) == 2
    assert all(e.parent.span_id == root.context.span_id for e in executions)
    assert [attrs(e)["pyworkflow.status"] for e in executions] == ["suspended", "completed"]
    step_span = spans.one("step charge")
    assert {
        "pyworkflow.run_id": run_id,
        "pyworkflow.step": "charge",
        "pyworkflow.attempt": 1,
        "pyworkflow.replayed": False,
        "pyworkflow.outcome": "succeeded",
    }.items() <= attrs(step_span).items()
    assert step_span.parent.span_id == executions[0].context.span_id
    attempt = spans.one("step charge #1")
    assert attempt.parent.span_id == step_span.context.span_id
    # the step function's own span nests under its attempt
    assert spans.one("http POST /charge").parent.span_id == attempt.context.span_id


async def test_replayed_operations_are_not_exported_again_and_resumed_ones_are_marked(
    spans: Spans,
) -> None:
    clock = ManualClock()
    pyworkflow.configure(clock=clock)
    providers.append(spans.provider)
    run_id = await start(order, 1)
    clock.advance(61)
    await resume(run_id)
    assert len(spans.named("step charge")) == 1  # replayed from history: no second span
    suspended, resumed = sorted(spans.named("sleep sleep"), key=lambda s: s.end_time)
    assert attrs(suspended)["pyworkflow.outcome"] == "suspended"
    assert attrs(suspended)["pyworkflow.replayed"] is False
    assert attrs(resumed)["pyworkflow.replayed"] is True
    assert attrs(resumed)["pyworkflow.outcome"] == "succeeded"
    # the resumed span covers the whole wait, from the recorded start
    started = next(e for e in await get_workflow_events(run_id) if e.type == "sleep.started")
    assert resumed.start_time == int(started.timestamp.timestamp() * 1e9)
    assert resumed.end_time - resumed.start_time == 61 * 10**9


async def test_each_retry_is_an_attempt_span_and_the_step_counts_them(spans: Spans) -> None:
    assert await start(retried, "k1") is not None
    attempts = sorted(spans.named("step flaky #1") + spans.named("step flaky #2"), key=str)
    assert len(attempts) == 2
    assert all(a.status.status_code == StatusCode.ERROR for a in attempts)
    assert all(attrs(a)["error.type"] == "ConnectionError" for a in attempts)
    third = spans.one("step flaky #3")
    assert third.status.status_code == StatusCode.UNSET
    assert attrs(spans.one("step flaky"))["pyworkflow.attempt"] == 3


async def test_a_failure_marks_the_step_and_the_execution_as_errors(spans: Spans) -> None:
    with pytest.raises(ValueError, match="card declined"):
        await start(failing)
    step_span = spans.one("step declined")
    assert step_span.status.status_code == StatusCode.ERROR
    assert step_span.status.description == "card declined"
    assert attrs(step_span)["pyworkflow.outcome"] == "failed"
    execution = spans.one("execution otel_fail")
    assert execution.status.status_code == StatusCode.ERROR
    assert attrs(execution)["pyworkflow.status"] == "failed"
    assert attrs(execution)["error.type"] == "ValueError"


async def test_a_child_run_is_a_trace_of_its_own_linked_to_its_parent(spans: Spans) -> None:
    assert await start(parent, 4) is not None
    parent_root = spans.one("workflow otel_parent")
    kid_root = spans.one("workflow otel_kid")
    assert kid_root.context.trace_id != parent_root.context.trace_id
    assert [link.context.span_id for link in kid_root.links] == [parent_root.context.span_id]
    assert attrs(spans.one("child otel_kid"))["pyworkflow.outcome"] == "succeeded"
    kid_execution = spans.one("execution otel_kid")
    assert kid_execution.context.trace_id == kid_root.context.trace_id


async def test_continue_as_new_starts_a_trace_linked_to_the_previous_run(spans: Spans) -> None:
    assert await start(chain, 0) is not None
    first, second = sorted(spans.named("workflow otel_chain"), key=lambda s: s.start_time)
    assert second.context.trace_id != first.context.trace_id
    assert [link.context.trace_id for link in second.links] == [first.context.trace_id]
    statuses = [attrs(e)["pyworkflow.status"] for e in spans.named("execution otel_chain")]
    assert sorted(statuses) == ["completed", "continued_as_new"]


async def test_a_run_started_inside_a_span_joins_that_trace(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("caller")
    with tracer.start_as_current_span("POST /orders") as request:
        await start(retried, "k2")
    root = spans.one("workflow otel_retry")
    assert root.context.trace_id == request.get_span_context().trace_id
    assert root.parent.span_id == request.get_span_context().span_id


async def test_tracing_is_one_setting_on_the_global_provider(global_spans, monkeypatch) -> None:
    pyworkflow.configure(tracing="otel")
    await start(retried, "k3")
    assert global_spans.one("workflow otel_retry") is not None
    pyworkflow.reset_config()
    pyworkflow.configure(storage=InMemoryStorageBackend())
    await start(retried, "k4")
    assert len(global_spans.named("workflow otel_retry")) == 1  # off again
    monkeypatch.setenv("PYWORKFLOW_OTEL", "1")
    pyworkflow.reset_config()
    pyworkflow.configure(storage=InMemoryStorageBackend())
    await start(retried, "k5")
    assert len(global_spans.named("workflow otel_retry")) == 2

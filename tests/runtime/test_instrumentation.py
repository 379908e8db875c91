"""Instrumentation plugins on the embedded runtime (issue 17 item 9; AWS's plugin conformance
requirements 10.1-10.23 where they apply): what a plugin is told, in which order, with which
ids, outcomes and attempts; that finished operations are not reported again on replay; that a
failing plugin never changes a run; and that nothing is called when none is registered."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

import pyworkflow
from pyworkflow import (
    RetryPolicy,
    RunStatus,
    continue_as_new,
    get_workflow_run,
    resume,
    sleep,
    start,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.observability import Instrumentation
from tests.observability.recording import Faulty, Recording
from tests.runtime.conftest import start_failing

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_calls():
    calls.clear()


@step
async def greet(name: str) -> str:
    return f"hi {name}"


@step(retry=RetryPolicy(max_attempts=3, initial_delay=0))
async def flaky(key: str) -> str:
    calls[key] += 1
    if calls[key] < 2:
        raise ConnectionError("reset")
    return "ok"


@step(retry=RetryPolicy(max_attempts=1))
async def boom() -> str:
    raise ValueError("boom")


@step(retry=RetryPolicy(max_attempts=2, initial_delay=0))
async def always_down() -> str:
    raise ConnectionError("down")


@workflow(name="instr_exhausted")
async def exhausted() -> str:
    return await always_down()


@workflow(name="instr_demo")
async def demo(name: str) -> str:
    greeting = await greet(name)
    await sleep(60)
    return greeting + " " + await flaky(name)


@workflow(name="instr_failing")
async def failing() -> str:
    await greet("a")
    return await boom()


@workflow(name="instr_fan_out")
async def fan_out() -> list[str]:
    return await pyworkflow.parallel(greet("a"), greet("b"))


@workflow(name="instr_kid")
async def kid(n: int) -> int:
    return n + 1


@workflow(name="instr_parent")
async def parent(n: int) -> int:
    return await start_child_workflow(kid, n)


@workflow(name="instr_chain")
async def chain(n: int) -> int:
    if n < 1:
        continue_as_new(n + 1)
    return n


async def test_a_plugin_sees_runs_operations_and_attempts_in_order(storage, clock) -> None:
    rec = Recording()
    pyworkflow.configure(instrumentation=[rec])
    run_id = await start(demo, "bob")
    clock.advance(61)
    await resume(run_id)
    assert rec.calls == [
        ("run_started", "instr_demo", True),
        ("operation_started", "step", "greet", "0", False),
        ("attempt_started", "greet", 1),
        ("attempt_ended", "greet", 1, "succeeded"),
        ("operation_ended", "step", "greet", "0", "succeeded", 1),
        ("operation_started", "sleep", "sleep", "1", False),
        ("run_ended", "instr_demo", "suspended", None),
        # the second execution: the finished step is replayed silently, the open sleep is
        # reported again as replayed, then ends
        ("run_started", "instr_demo", False),
        ("operation_started", "sleep", "sleep", "1", True),
        ("operation_ended", "sleep", "sleep", "1", "succeeded", 1),
        ("operation_started", "step", "flaky", "2", False),
        ("attempt_started", "flaky", 1),
        ("attempt_ended", "flaky", 1, "failed"),
        ("attempt_started", "flaky", 2),
        ("attempt_ended", "flaky", 2, "succeeded"),
        ("operation_ended", "step", "flaky", "2", "succeeded", 2),
        ("run_ended", "instr_demo", "completed", None),
    ]
    assert (await get_workflow_run(run_id)).status == RunStatus.COMPLETED


async def test_operation_ends_carry_the_recorded_result_or_the_error(storage) -> None:
    rec = Recording()
    pyworkflow.configure(instrumentation=[rec])
    await start_failing(failing)
    assert rec.results == [("greet", "hi a", None), ("boom", None, "boom")]
    assert rec.of("run_ended") == [("run_ended", "instr_failing", "failed", "ValueError")]
    assert ("operation_ended", "step", "boom", "1", "failed", 1) in rec.calls


async def test_attempts_are_reported_until_retries_run_out_then_the_step_fails(storage) -> None:
    rec = Recording()
    pyworkflow.configure(instrumentation=[rec])
    await start_failing(exhausted)
    assert [c for c in rec.calls if c[0] != "run_started"] == [
        ("operation_started", "step", "always_down", "0", False),
        ("attempt_started", "always_down", 1),
        ("attempt_ended", "always_down", 1, "failed"),
        ("attempt_started", "always_down", 2),
        ("attempt_ended", "always_down", 2, "failed"),
        ("operation_ended", "step", "always_down", "0", "failed", 2),
        ("run_ended", "instr_exhausted", "failed", "ConnectionError"),
    ]


async def test_branch_operations_name_their_fan_out_as_parent(storage) -> None:
    seen = []

    class Parents(Recording):
        def operation_ended(self, op, outcome, duration):
            seen.append((op.kind, op.op_id, op.parent_id))

    pyworkflow.configure(instrumentation=[Parents()])
    await start(fan_out)
    assert sorted(seen) == [("parallel", "0", None), ("step", "0.0.0", "0"), ("step", "0.1.0", "0")]


async def test_a_failing_plugin_never_breaks_a_run_and_the_others_still_hear(
    storage, clock
) -> None:
    faulty, healthy = Faulty(), Recording()
    pyworkflow.configure(instrumentation=[faulty, healthy])
    run_id = await start(demo, "ann")
    clock.advance(61)
    assert await resume(run_id) == "hi ann ok"
    assert faulty.count == len(healthy.calls) + 1  # + trace_context when the run was created
    assert healthy.of("run_ended")[-1] == ("run_ended", "instr_demo", "completed", None)


async def test_children_and_continued_runs_are_reported_as_runs_of_their_own(storage) -> None:
    rec = Recording()
    pyworkflow.configure(instrumentation=[rec])
    await start(parent, 1)
    await start(chain, 0)
    started = [c[1] for c in rec.of("run_started")]
    assert Counter(started) == Counter(
        {"instr_parent": started.count("instr_parent"), "instr_kid": 1, "instr_chain": 2}
    )
    assert ("run_ended", "instr_chain", "continued_as_new", None) in rec.calls
    assert ("operation_ended", "child", "instr_kid", "0", "succeeded", 1) in rec.calls


async def test_without_plugins_the_engine_reports_nothing(storage, monkeypatch) -> None:
    from pyworkflow.runtime import executor

    def refuse(*args, **kwargs):
        raise AssertionError("an execution report was made without any plugin")

    monkeypatch.setattr(executor, "ExecutionReport", refuse)
    assert await start(demo, "zed") is not None
    pyworkflow.configure(instrumentation=[Recording()])
    with pytest.raises(AssertionError, match="without any plugin"):
        await start(demo, "eve")


def test_configure_refuses_what_is_not_a_plugin_or_a_tracer() -> None:
    with pytest.raises(ConfigurationError, match="instrumentation takes plugins"):
        pyworkflow.configure(instrumentation=[object()])
    with pytest.raises(ConfigurationError, match="tracing takes 'otel'"):
        pyworkflow.configure(tracing="zipkin")


class SeesInput(Instrumentation):
    def __init__(self) -> None:
        self.inputs: list[tuple[str, Any, Any]] = []

    def run_started(self, run):
        self.inputs.append((run.workflow, json.loads(run.input_args), json.loads(run.input_kwargs)))


async def test_a_plugin_sees_the_runs_recorded_input_in_every_execution(storage, clock) -> None:
    seen = SeesInput()
    pyworkflow.configure(instrumentation=[seen])
    run_id = await start(demo, name="ann")
    clock.advance(61)
    await resume(run_id)
    # the first execution and the one the sleep woke: the input as recorded (10.19)
    assert seen.inputs == [("instr_demo", [], {"name": "ann"})] * 2

"""``Annotated`` type hints are honoured: pydantic constraints and validators declared with
``Annotated`` apply to workflow arguments (checked before anything is written), to step results
(checked before they are recorded) and to a workflow's result, so to child results."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, Field

import pyworkflow
from pyworkflow import (
    ChildWorkflowFailedError,
    EventType,
    InvalidArgumentsError,
    RunStatus,
    get_workflow_events,
    get_workflow_run,
    resume,
    sleep,
    start,
    start_child_workflow,
    step,
    workflow,
)
from tests.runtime.conftest import calls, start_failing

PositiveInt = Annotated[int, Field(gt=0)]
Lower = Annotated[str, AfterValidator(str.lower)]


@workflow(name="annotated_positive")
async def positive(n: PositiveInt, label: Lower = "X") -> str:
    return f"{label}:{n}"


async def test_an_argument_outside_its_annotated_constraint_is_refused_before_any_run(storage):
    with pytest.raises(InvalidArgumentsError) as info:
        await start(positive, -5)
    assert "Argument 'n' of workflow 'annotated_positive'" in str(info.value)
    assert "does not fit Annotated[int, Gt(gt=0)]" in str(info.value)
    assert "Input should be greater than 0" in str(info.value)
    page = await storage.list_runs_page(workflow_name="annotated_positive")
    assert page.items == []


async def test_an_argument_inside_its_constraint_is_validated_by_its_validators(storage):
    run_id = await start(positive, 5, label="MiXeD")
    assert (await get_workflow_run(run_id)).get_result() == "mixed:5"


@step(max_retries=3, retry_delay=0)
async def balance(account: str) -> Annotated[int, Field(ge=0)]:
    calls[account] += 1
    return -10 if account == "overdrawn" else 10


@step
async def shout(text: str) -> Annotated[str, AfterValidator(str.upper)]:
    calls["shout"] += 1
    return text


@workflow(name="annotated_steps")
async def step_results(account: str) -> str:
    amount = await balance(account)
    said = await shout("hello")
    await sleep("1m")
    return f"{said} {amount}"


async def test_a_step_result_outside_its_constraint_fails_the_step_unretried(storage):
    run = await start_failing(step_results, "overdrawn")
    assert run.error_type == "InvalidResultError"
    assert "The result of step 'balance'" in run.error and "greater than or equal to 0" in run.error
    assert calls["overdrawn"] == 1  # the same value would fail again: not retried
    types = [e.type for e in await get_workflow_events(run.run_id)]
    assert EventType.STEP_COMPLETED not in types


async def test_a_step_results_validators_apply_the_same_live_and_on_replay(storage, clock):
    run_id = await start(step_results, "fine")
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    clock.advance(60)
    await resume(run_id)  # replays both steps from the history
    run = await get_workflow_run(run_id)
    assert run.get_result() == "HELLO 10"
    assert calls["shout"] == 1
    recorded = next(e for e in await get_workflow_events(run_id) if e.data.get("name") == "shout")
    assert recorded.data["result"] == "hello"  # stored as returned; decoded by the hint


@workflow(name="annotated_child")
async def child(n: int) -> PositiveInt:
    return n


@workflow(name="annotated_parent")
async def parent(n: int) -> str:
    try:
        return f"child gave {await start_child_workflow(child, n)}"
    except ChildWorkflowFailedError as exc:
        return f"child failed: {exc.error_type}"


async def test_a_child_result_outside_its_constraint_fails_the_child(storage):
    run_id = await start(parent, 0)
    assert (await get_workflow_run(run_id)).get_result() == "child failed: InvalidResultError"
    run_id = await start(parent, 3)
    assert (await get_workflow_run(run_id)).get_result() == "child gave 3"


async def test_a_workflow_result_outside_its_constraint_fails_the_run(storage):
    run = await start_failing(child, -1)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "InvalidResultError"
    assert "The result of workflow 'annotated_child'" in run.error


def test_unannotated_hints_are_unchanged() -> None:
    defn = pyworkflow.get_workflow("annotated_positive")
    assert defn is not None
    assert defn.hints["n"] == PositiveInt  # the metadata is kept

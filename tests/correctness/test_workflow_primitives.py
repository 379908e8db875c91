"""Workflow primitives are refused where they cannot be durable, and their arguments mean what
the user meant (audit behaviours 8 and 9)."""

import time
from datetime import datetime, timedelta

import pytest

from pyworkflow import (
    continue_as_new,
    get_workflow_events,
    hook,
    sleep,
    start,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.exceptions import FatalError
from tests.runtime.conftest import start_failing

BODIES: list[str] = []


@workflow
async def wp_child() -> str:
    return "child"


@step
async def wp_hook_in_step() -> None:
    BODIES.append("hook")
    await hook("approval")


@step
async def wp_sleep_in_step() -> None:
    BODIES.append("sleep")
    await sleep(1)


@step
async def wp_child_in_step() -> None:
    BODIES.append("child")
    await start_child_workflow(wp_child)


@step
async def wp_continue_in_step() -> None:
    BODIES.append("continue")
    continue_as_new(1)


@workflow
async def wp_primitive_in_step(which: str) -> None:
    steps = {
        "hook": wp_hook_in_step,
        "sleep": wp_sleep_in_step,
        "child": wp_child_in_step,
        "continue": wp_continue_in_step,
    }
    await steps[which]()


@pytest.mark.parametrize(
    "which,primitive",
    [
        ("hook", "hook()"),
        ("sleep", "sleep()"),
        ("child", "start_child_workflow()"),
        ("continue", "continue_as_new()"),
    ],
)
async def test_a_workflow_primitive_called_inside_a_step_fails_that_step_once_saying_so(
    storage, which, primitive
):
    BODIES.clear()
    run = await start_failing(wp_primitive_in_step, which)
    assert run.error_type == FatalError.__name__  # not retried: the same call would fail again
    assert f"{primitive} cannot be called inside step 'wp_{which}_in_step'" in run.error
    assert BODIES == [which]  # the step body ran once
    events = await get_workflow_events(run.run_id)
    types = [e.type.value for e in events]
    assert types.count("step.failed") == 1 and "step.retrying" not in types
    assert not any(t.startswith(("hook.", "sleep.", "child_workflow.")) for t in types)


@workflow
async def wp_sleep_until(when: datetime) -> None:
    await sleep(when)


async def test_a_naive_datetime_is_local_time_not_utc(storage, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9: read as UTC, 3 s would become 9 hours
    time.tzset()
    try:
        wake = datetime.now() + timedelta(seconds=3)  # naive, local, as users write it
        assert wake.tzinfo is None
        run_id = await start(wp_sleep_until, wake)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    events = await get_workflow_events(run_id)
    started = next(e for e in events if e.type == "sleep.started")
    waits = datetime.fromisoformat(started.data["resume_at"]) - started.timestamp
    assert timedelta(seconds=1) < waits <= timedelta(seconds=3)


BAD_DURATIONS = {"nan": float("nan"), "inf": float("inf"), "abc": "abc", "-5": -5, "[1]": [1]}


@workflow
async def wp_sleep_for(which: str) -> None:
    await sleep(BAD_DURATIONS[which])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "which,problem",
    [
        ("nan", "finite"),
        ("inf", "finite"),
        ("abc", "'30s'"),
        ("-5", "negative"),
        ("[1]", "of type list"),
    ],
)
async def test_a_bad_sleep_duration_is_an_error_naming_the_argument(storage, which, problem):
    with pytest.raises(ValueError) as info:
        await sleep(BAD_DURATIONS[which])  # type: ignore[arg-type]  # outside a workflow too
    assert "sleep() duration" in str(info.value) and problem in str(info.value)
    run = await start_failing(wp_sleep_for, which)
    assert run.error_type == "ValueError"
    assert "sleep() duration" in run.error and problem in run.error
    events = await get_workflow_events(run.run_id)
    assert not [e for e in events if e.type == "sleep.started"]

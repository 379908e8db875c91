"""Waits of days run at once, on virtual time, in order. Every assertion is on the virtual clock
(``env.now``, recorded timestamps), never on wall time."""

from datetime import timedelta

import pytest

import pyworkflow
from pyworkflow import (
    HookExpiredError,
    RunStatus,
    continue_as_new,
    hook,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.core.clock import ManualClock
from pyworkflow.testing import (
    DEFAULT_START,
    StepOutcome,
    WorkflowBlockedError,
    WorkflowEnvironment,
)

T0 = DEFAULT_START
finished: list[str] = []


@pytest.fixture(autouse=True)
def _clear():
    finished.clear()


@step
async def kit_note(tag: str) -> str:
    finished.append(tag)
    return tag


@workflow
async def kit_week_off(name: str) -> str:
    await sleep("7d")
    return f"welcome back, {name}"


async def test_a_seven_day_sleep_ends_seven_virtual_days_later(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_week_off, "ada")
    run = await env.get_run(run_id)
    assert run.status == RunStatus.SUSPENDED
    assert [t.when for t in env.timers] == [T0 + timedelta(days=7)]
    assert env.now == T0  # starting moved no time

    assert await env.result(run_id) == "welcome back, ada"
    assert env.now == T0 + timedelta(days=7)
    run = await env.get_run(run_id)
    assert run.completed_at == T0 + timedelta(days=7)
    sleeps = await env.events(run_id, "sleep")
    assert [(e.type.value, e.timestamp) for e in sleeps] == [
        ("sleep.started", T0),
        ("sleep.completed", T0 + timedelta(days=7)),
    ]
    assert env.timers == []


flaky_calls: list[int] = []


@step(max_retries=2, retry_delay=3600)
async def kit_flaky_charge(amount: float) -> str:
    flaky_calls.append(1)
    if len(flaky_calls) == 1:
        raise ConnectionError("gateway down")
    return f"charged {amount}"


@workflow
async def kit_pay(amount: float) -> str:
    return await kit_flaky_charge(amount)


async def test_a_retry_waits_its_one_hour_backoff_on_virtual_time(workflow_env):
    flaky_calls.clear()
    env = workflow_env
    run_id = await env.start(kit_pay, 12.5)
    assert (await env.get_run(run_id)).status == RunStatus.SUSPENDED
    assert await env.result(run_id) == "charged 12.5"
    assert env.now == T0 + timedelta(hours=1)
    attempts = await env.steps(run_id)
    assert [(a.name, a.attempt, a.outcome, a.at) for a in attempts] == [
        ("kit_flaky_charge", 1, StepOutcome.RETRYING, T0),
        ("kit_flaky_charge", 2, StepOutcome.COMPLETED, T0 + timedelta(hours=1)),
    ]
    assert attempts[0].error_type == "ConnectionError"
    assert attempts[0].retry_at == T0 + timedelta(hours=1)
    assert attempts[1].result == "charged 12.5"


@workflow
async def kit_approval_or_timeout() -> str:
    try:
        payload = await hook("approval", timeout="2d")
    except HookExpiredError:
        return "expired"
    return f"approved by {payload['by']}"


@workflow
async def kit_approval_uncaught() -> str:
    payload = await hook("approval", timeout="2d")
    return payload["by"]


async def test_a_hook_timeout_of_two_days_expires_at_two_days(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_approval_or_timeout)
    assert await env.result(run_id) == "expired"
    assert env.now == T0 + timedelta(days=2)
    expired = await env.events(run_id, "hook.expired", name="approval")
    assert [e.timestamp for e in expired] == [T0 + timedelta(days=2)]
    hooks = await env.hooks(run_id)
    assert [h.status.value for h in hooks] == ["expired"]


async def test_an_uncaught_hook_timeout_fails_the_run_with_its_exception(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_approval_uncaught)
    with pytest.raises(HookExpiredError):
        await env.result(run_id)
    run = await env.get_run(run_id)
    assert (run.status, run.error_type, run.completed_at) == (
        RunStatus.FAILED,
        "HookExpiredError",
        T0 + timedelta(days=2),
    )


@workflow
async def kit_sleepy_child(days: int) -> str:
    await sleep(f"{days}d")
    return await kit_note(f"child slept {days}d")


@workflow
async def kit_parent() -> dict:
    child = await start_child_workflow(kit_sleepy_child, 3)
    await sleep("1h")
    return {"child": child, "done": await kit_note("parent")}


async def test_a_child_that_sleeps_wakes_its_parent_on_virtual_time(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_parent)
    children = await env.children(run_id)
    assert [(c.workflow_name, c.status) for c in children] == [
        ("kit_sleepy_child", RunStatus.SUSPENDED)
    ]
    assert await env.result(run_id) == {"child": "child slept 3d", "done": "parent"}
    assert env.now == T0 + timedelta(days=3, hours=1)
    child = await env.get_run(children[0].run_id)
    assert child.completed_at == T0 + timedelta(days=3)
    assert finished == ["child slept 3d", "parent"]


@workflow
async def kit_sleep_then_note(tag: str, duration: str) -> str:
    await sleep(duration)
    return await kit_note(tag)


async def test_timers_fire_in_time_order_whatever_order_the_runs_started(workflow_env):
    env = workflow_env
    late = await env.start(kit_sleep_then_note, "two days", "2d")
    early = await env.start(kit_sleep_then_note, "one day", "1d")
    assert [t.run_id for t in env.timers] == [early, late]

    assert await env.result(late) == "two days"  # waiting for the later one fires both
    assert finished == ["one day", "two days"]
    assert (await env.get_run(early)).completed_at == T0 + timedelta(days=1)
    assert (await env.get_run(late)).completed_at == T0 + timedelta(days=2)


async def test_equal_wake_times_fire_in_the_order_they_were_armed(workflow_env):
    env = workflow_env
    for tag in ("first", "second", "third"):
        await env.start(kit_sleep_then_note, tag, "5h")
    await env.sleep("5h")
    assert finished == ["first", "second", "third"]


async def test_env_sleep_moves_time_explicitly_and_fires_what_falls_due(workflow_env):
    env = workflow_env
    one = await env.start(kit_sleep_then_note, "1d", "1d")
    three = await env.start(kit_sleep_then_note, "3d", "3d")
    await env.sleep("2d")
    assert env.now == T0 + timedelta(days=2)
    assert (await env.get_run(one)).status == RunStatus.COMPLETED
    assert (await env.get_run(three)).status == RunStatus.SUSPENDED
    assert finished == ["1d"]
    with pytest.raises(ValueError, match="only moves forward"):
        await env.advance_to(T0)


async def test_held_time_does_not_jump_until_the_test_moves_it(workflow_env):
    env = workflow_env
    with env.skip_time(False):
        run_id = await env.start(kit_week_off, "bo")
        with pytest.raises(WorkflowBlockedError, match="time is held"):
            await env.result(run_id)
        assert env.now == T0
        await env.sleep(timedelta(days=6, hours=23))
        assert (await env.get_run(run_id)).status == RunStatus.SUSPENDED
        await env.sleep("1h")
        assert (await env.get_run(run_id)).status == RunStatus.COMPLETED
    assert env.now == T0 + timedelta(days=7)


@workflow(max_duration="1d")
async def kit_bounded_wait() -> str:
    await hook("never")
    return "unreachable"


async def test_max_duration_ends_a_run_that_waits_without_a_timeout(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_bounded_wait)
    with pytest.raises(pyworkflow.WorkflowError, match="max_duration"):
        await env.result(run_id)
    assert env.now == T0 + timedelta(days=1)


@workflow
async def kit_waits_for_a_person() -> str:
    return (await hook("signature"))["name"]


async def test_a_run_waiting_for_a_payload_only_is_reported_not_hung(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_waits_for_a_person)
    with pytest.raises(WorkflowBlockedError, match=r"hook 'signature'.*env\.resume_hook"):
        await env.result(run_id)
    assert env.now == T0


@workflow
async def kit_forever() -> None:
    while True:
        await sleep("1h")


async def test_a_run_that_never_ends_is_reported_after_max_timers():
    async with WorkflowEnvironment(max_timers=50) as env:
        run_id = await env.start(kit_forever)
        with pytest.raises(WorkflowBlockedError, match="after 50 timers"):
            await env.result(run_id)
        assert env.now == T0 + timedelta(hours=50)


@workflow
async def kit_countdown(n: int) -> int:
    await sleep("1d")
    if n > 1:
        continue_as_new(n - 1)
    return n


async def test_result_follows_a_continue_as_new_chain(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_countdown, 3)
    assert await env.result(run_id) == 1
    assert env.now == T0 + timedelta(days=3)
    chain = await pyworkflow.get_workflow_chain(run_id)
    assert [r.status for r in chain] == [RunStatus.CONTINUED_AS_NEW] * 2 + [RunStatus.COMPLETED]


async def test_the_public_api_runs_on_the_environment(workflow_env):
    env = workflow_env
    run_id = await pyworkflow.start(kit_week_off, "cy")  # as application code would
    assert [t.run_id for t in env.timers] == [run_id]
    assert await env.result(run_id) == "welcome back, cy"
    assert (await pyworkflow.get_workflow_run(run_id)).status == RunStatus.COMPLETED


async def test_closing_puts_the_previous_configuration_back(tmp_path):
    mine = pyworkflow.SQLiteStorageBackend(tmp_path / "mine.db")
    pyworkflow.configure(storage=mine)
    async with WorkflowEnvironment(start=T0 + timedelta(days=100)) as env:
        assert pyworkflow.get_storage() is env.storage
        assert isinstance(pyworkflow.get_config().clock, ManualClock)
        assert env.now == T0 + timedelta(days=100)
    assert pyworkflow.get_storage() is mine
    assert pyworkflow.get_config().clock is None


async def test_start_must_be_timezone_aware():
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        WorkflowEnvironment(start=datetime(2030, 1, 1))


@workflow(durable=False)
async def kit_transient_nap() -> str:
    await sleep("1d")  # a transient run waits inline: on the manual clock, that is a jump
    return "up"


async def test_a_transient_run_sleeps_on_virtual_time_too(workflow_env):
    env = workflow_env
    assert await env.run(kit_transient_nap) == "up"
    assert env.now == T0 + timedelta(days=1)


@step(max_retries=0)
async def kit_explode() -> None:
    raise RuntimeError("boom")


@workflow
async def kit_fails_after_a_day() -> None:
    await sleep("1d")
    await kit_explode()


async def test_a_failure_is_raised_as_the_run_s_own_exception(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_fails_after_a_day)
    with pytest.raises(RuntimeError, match="boom"):
        await env.result(run_id)
    # asked again, the exception object is gone: the recorded failure is reported instead
    from pyworkflow.testing import WorkflowRunFailedError

    with pytest.raises(WorkflowRunFailedError, match=r"failed: RuntimeError: boom"):
        await env.result(run_id)
    assert (await env.wait(run_id)).completed_at == T0 + timedelta(days=1)

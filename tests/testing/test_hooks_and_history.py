"""Hooks resumed by run and name or by a captured token, and what a test reads back."""

from datetime import timedelta

import pytest
from pydantic import BaseModel

from pyworkflow import (
    CancellationError,
    EventType,
    HookExpiredError,
    HookPayloadError,
    RunStatus,
    define_hook,
    hook,
    shield,
    sleep,
    step,
    workflow,
)
from pyworkflow.testing import DEFAULT_START, StepOutcome, WorkflowBlockedError, filter_events

T0 = DEFAULT_START
outbox: list[str] = []


class Approval(BaseModel):
    approved: bool
    by: str


approval = define_hook("kit_approval", Approval)


@step
async def kit_prepare(doc: str) -> str:
    return f"draft:{doc}"


@step
async def kit_publish(draft: str, by: str) -> str:
    return f"published {draft} ({by})"


@workflow
async def kit_review(doc: str) -> str:
    draft = await kit_prepare(doc)
    await sleep("1d")  # a day for the author to edit

    # on_created runs once, when the hook is made (not on replay): it hands the token out
    decision = await approval(timeout="7d", on_created=outbox.append)
    if not decision.approved:
        return "rejected"
    return await kit_publish(draft, decision.by)


async def test_a_hook_resumed_mid_way_by_run_and_name(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_review, "spec")
    pending = await env.wait_for_hook(run_id, "kit_approval")
    assert env.now == T0 + timedelta(days=1)
    assert pending.expires_at == T0 + timedelta(days=8)

    await env.sleep("3h")  # the reviewer takes a while
    result = await env.resume_hook(run_id, "kit_approval", {"approved": True, "by": "dana"})
    assert result.status == "resumed"
    # resume_hook drove the run: it finished at once, and the 7d timeout never fired
    run = await env.get_run(run_id)
    assert run.status == RunStatus.COMPLETED
    assert await env.result(run_id) == "published draft:spec (dana)"
    assert env.now == T0 + timedelta(days=1, hours=3)
    assert env.timers == []
    received = await env.events(run_id, EventType.HOOK_RECEIVED)
    assert [(e.timestamp, e.data["payload"]) for e in received] == [
        (T0 + timedelta(days=1, hours=3), {"approved": True, "by": "dana"})
    ]


async def test_a_captured_token_resumes_the_hook_as_a_webhook_would(workflow_env):
    outbox.clear()
    env = workflow_env
    run_id = await env.start(kit_review, "rfc")
    await env.wait_for_hook(run_id, "kit_approval")
    token = await env.hook_token(run_id, "kit_approval")
    assert outbox == [token]  # the very token the workflow handed out
    with pytest.raises(HookPayloadError):
        await env.resume_hook_token(token, {"approved": "maybe"})
    await env.resume_hook_token(token, {"approved": False, "by": "eve"})
    assert await env.result(run_id) == "rejected"


async def test_a_late_resume_is_refused_once_the_timeout_fired(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_review, "late")
    await env.wait_for_hook(run_id, "kit_approval")
    with pytest.raises(HookExpiredError):
        await env.result(run_id)  # nobody answered for 7 days
    assert env.now == T0 + timedelta(days=8)
    with pytest.raises(HookExpiredError):
        await env.resume_hook(run_id, "kit_approval", {"approved": True, "by": "zed"})


async def test_waiting_for_a_hook_the_run_never_reaches_is_reported(workflow_env):
    env = workflow_env
    blocked = await env.start(kit_plain_hook)  # waits on hook "count", with no timeout
    with pytest.raises(WorkflowBlockedError, match="hook 'count'.*; not hook 'other'"):
        await env.wait_for_hook(blocked, "other")
    # time skips past the hook it does wait on (7d timeout): the run fails on the way
    run_id = await env.start(kit_review, "x")
    with pytest.raises(WorkflowBlockedError, match="failed without waiting on a hook 'other'"):
        await env.wait_for_hook(run_id, "other")
    assert env.now == T0 + timedelta(days=8)


@workflow
async def kit_steps_mix() -> list[str]:
    return [await kit_prepare("a"), await kit_prepare("b"), await kit_publish("c", "d")]


async def test_events_and_steps_filter_the_history(workflow_env):
    env = workflow_env
    run_id = await env.start(kit_steps_mix)
    assert await env.result(run_id) == ["draft:a", "draft:b", "published c (d)"]
    assert await env.event_types(run_id) == [
        "workflow.started",
        "step.completed",
        "step.completed",
        "step.completed",
        "workflow.completed",
    ]
    assert len(await env.events(run_id, "step")) == 3
    assert len(await env.events(run_id, ["workflow.started", "workflow.completed"])) == 2
    prepared = await env.steps(run_id, "kit_prepare")
    assert [(s.attempt, s.outcome, s.result) for s in prepared] == [
        (1, StepOutcome.COMPLETED, "draft:a"),
        (1, StepOutcome.COMPLETED, "draft:b"),
    ]
    events = await env.events(run_id)
    assert filter_events(events, name="kit_publish")[0].data["result"] == "published c (d)"


cleanup: list[str] = []


@step
async def kit_release(what: str) -> None:
    cleanup.append(what)


@workflow
async def kit_holds_a_room() -> str:
    try:
        await sleep("30d")
    except CancellationError:
        async with shield():
            await kit_release("room")
        raise
    return "kept"


async def test_cancelling_a_sleeping_run_runs_its_cleanup_on_virtual_time(workflow_env):
    cleanup.clear()
    env = workflow_env
    run_id = await env.start(kit_holds_a_room)
    await env.sleep("2d")
    assert await env.cancel(run_id, "changed plans") is True
    assert cleanup == ["room"]
    with pytest.raises(CancellationError):
        await env.result(run_id)
    run = await env.get_run(run_id)
    assert (run.status, run.completed_at) == (RunStatus.CANCELLED, T0 + timedelta(days=2))


@workflow
async def kit_plain_hook() -> int:
    return (await hook("count"))["n"]


async def test_hook_token_of_an_unknown_hook_is_an_error(workflow_env):
    from pyworkflow import HookNotFoundError

    env = workflow_env
    run_id = await env.start(kit_plain_hook)
    with pytest.raises(HookNotFoundError):
        await env.hook_token(run_id, "nope")
    assert [h.name for h in await env.hooks(run_id, pending=True)] == ["count"]
    await env.resume_hook(run_id, "count", {"n": 3})
    assert await env.result(run_id) == 3

"""Hooks, cancellation, shield, children and continue-as-new."""

import asyncio
import hashlib
from collections import Counter

import pytest
from pydantic import BaseModel

from pyworkflow import (
    CancellationError,
    ChildWorkflowFailedError,
    EventType,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    HookPayloadError,
    InvalidTokenError,
    RunStatus,
    cancel_workflow,
    continue_as_new,
    define_hook,
    get_workflow_chain,
    get_workflow_events,
    get_workflow_run,
    hook,
    resume,
    resume_hook,
    shield,
    sleep,
    start,
    start_child_workflow,
    step,
    workflow,
)
from tests.runtime.conftest import start_failing

calls: Counter[str] = Counter()
tokens: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    tokens.clear()


@step
async def note(tag: str) -> str:
    calls[tag] += 1
    return tag


class Approval(BaseModel):
    approved: bool
    reviewer: str


approval_hook = define_hook("sig_approval", Approval)


@workflow
async def approval_flow(key: str) -> dict:
    await note("before")
    decision = await approval_hook(on_created=lambda t: tokens.__setitem__(key, t), timeout="1d")
    await note("after")
    return {"approved": decision.approved, "by": decision.reviewer, "type": type(decision).__name__}


async def test_typed_hook_round_trip_and_single_use(storage):
    run_id = await start(approval_flow, "k")
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    result = await resume_hook(tokens["k"], {"approved": True, "reviewer": "ann"})
    assert result.status == "resumed" and result.run_id == run_id
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == {"approved": True, "by": "ann", "type": "Approval"}
    assert calls["before"] == 1
    with pytest.raises(HookAlreadyReceivedError):
        await resume_hook(tokens["k"], {"approved": False, "reviewer": "bob"})


async def test_invalid_payload_is_rejected_and_hook_stays_pending(storage):
    run_id = await start(approval_flow, "k")
    with pytest.raises(HookPayloadError, match="Approval"):
        await resume_hook(tokens["k"], {"approved": "maybe"})
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    await resume_hook(tokens["k"], {"approved": False, "reviewer": "cy"})
    assert (await get_workflow_run(run_id)).get_result()["approved"] is False


async def test_tokens_are_random_hashed_and_never_in_history(storage):
    run_id = await start(approval_flow, "k")
    token = tokens["k"]
    assert len(token) >= 22 and run_id not in token  # 192 bits, not derived from the run id
    events = await get_workflow_events(run_id)
    assert all(token not in str(e.data) for e in events)
    hooks = await storage.list_hooks(run_id=run_id)
    assert hooks[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in hooks[0].model_dump_json()
    with pytest.raises(HookNotFoundError):
        await resume_hook(token[:-2] + "xx", {"approved": True, "reviewer": "x"})
    with pytest.raises(InvalidTokenError):
        await resume_hook("", {})


async def test_hook_timeout_raises_in_the_workflow_and_rejects_late_payloads(storage, clock):
    run_id = await start(approval_flow, "k")
    run = await get_workflow_run(run_id)
    assert run.wake_at == clock.now() + __import__("datetime").timedelta(days=1)
    clock.advance(86400)
    await resume(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "HookExpiredError"
    with pytest.raises(HookExpiredError):
        await resume_hook(tokens["k"], {"approved": True, "reviewer": "late"})


@workflow
async def untyped_hook_flow() -> object:
    return await hook("plain", on_created=lambda t: tokens.__setitem__("plain", t))


async def test_untyped_hook_returns_the_json_payload(storage):
    run_id = await start(untyped_hook_flow)
    await resume_hook(tokens["plain"], {"a": [1, 2]})
    assert (await get_workflow_run(run_id)).get_result() == {"a": [1, 2]}


# --- cancellation ---------------------------------------------------------------------------------
@workflow
async def compensating_flow() -> str:
    try:
        await note("reserve")
        await sleep("1h")
        await note("charge")
        return "done"
    except CancellationError:
        async with shield():
            await note("release")
        raise


async def test_cancelling_a_suspended_run_delivers_cancellation_and_runs_cleanup(storage):
    run_id = await start(compensating_flow)
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    assert await cancel_workflow(run_id, reason="customer asked") is True
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.CANCELLED
    assert calls == Counter({"reserve": 1, "release": 1})
    types = [e.type for e in await get_workflow_events(run_id)]
    assert types.index(EventType.CANCELLATION_REQUESTED) < types.index(EventType.STEP_COMPLETED, 2)
    assert types[-1] == EventType.WORKFLOW_CANCELLED
    assert await cancel_workflow(run_id) is False  # terminal now


sync: dict[str, asyncio.Event] = {}


@step
async def blocking_step() -> str:
    sync["entered"].set()
    await sync["gate"].wait()
    calls["blocking"] += 1
    return "b"


@workflow
async def running_flow() -> str:
    await blocking_step()
    await note("next")
    return "finished"


async def test_cancelling_a_running_run_stops_it_at_its_next_await(storage):
    sync.update(gate=asyncio.Event(), entered=asyncio.Event())
    task = asyncio.create_task(start(running_flow))
    await sync["entered"].wait()
    run_id = (await storage.list_runs_page()).items[0].run_id
    assert await cancel_workflow(run_id, reason="stop") is True
    sync["gate"].set()
    await task
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.CANCELLED
    assert calls["next"] == 0  # the await after the cancel raised instead of running the step


@workflow
async def swallowing_flow() -> str:
    try:
        await sleep("1h")
    except CancellationError:
        pass  # swallowed: the next unshielded await raises again
    await note("never")
    return "x"


async def test_swallowed_cancellation_is_raised_again_at_the_next_await(storage):
    run_id = await start(swallowing_flow)
    await cancel_workflow(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.CANCELLED
    assert calls["never"] == 0


# --- children ------------------------------------------------------------------------------------
@workflow
async def child_flow(n: int) -> int:
    await note(f"child{n}")
    if n < 0:
        raise ValueError("negative")
    return n * 2


@workflow
async def parent_flow(n: int) -> int:
    return await start_child_workflow(child_flow, n)


async def test_child_result_is_returned_to_the_parent(storage):
    run_id = await start(parent_flow, 4)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED and run.get_result() == 8
    children = (await storage.list_runs_page(parent_run_id=run_id)).items
    assert [c.status for c in children] == [RunStatus.COMPLETED]
    assert children[0].nesting_depth == 1


@workflow
async def catching_parent() -> str:
    try:
        await start_child_workflow(child_flow, -1)
    except ChildWorkflowFailedError as exc:
        return f"caught: {exc.error}"
    return "no error"


async def test_child_failure_raises_child_workflow_failed_error(storage):
    run = await get_workflow_run(await start(catching_parent))
    assert run.get_result() == "caught: negative"


@workflow
async def nesting_flow(depth: int) -> int:
    if depth == 0:
        return 0
    return await start_child_workflow(nesting_flow, depth - 1) + 1


async def test_nesting_deeper_than_three_fails(storage):
    assert (await get_workflow_run(await start(nesting_flow, 3))).get_result() == 3
    run = await start_failing(nesting_flow, 4)
    assert run.status == RunStatus.FAILED
    assert "Maximum nesting depth of 3 exceeded" in run.error


@workflow
async def sleepy_child() -> str:
    await sleep("1h")
    return "woke"


@workflow
async def fire_and_forget_parent(policy: str) -> str:
    handle = await start_child_workflow(
        sleepy_child, wait_for_completion=False, parent_close_policy=policy
    )
    return handle.child_run_id


async def test_fire_and_forget_child_outlives_its_parent(storage, clock):
    parent = await get_workflow_run(await start(fire_and_forget_parent, "abandon"))
    assert parent.status == RunStatus.COMPLETED
    child_id = parent.get_result()
    await asyncio.sleep(0.05)
    assert (await get_workflow_run(child_id)).status == RunStatus.SUSPENDED
    clock.advance(3600)
    await resume(child_id)
    assert (await get_workflow_run(child_id)).get_result() == "woke"


async def test_parent_close_policy_cancel_ends_the_child_with_the_parent(storage):
    parent = await get_workflow_run(await start(fire_and_forget_parent, "cancel"))
    await asyncio.sleep(0.1)
    child = await get_workflow_run(parent.get_result())
    assert child.status == RunStatus.CANCELLED


# --- continue-as-new -------------------------------------------------------------------------
@workflow
async def batch_flow(offset: int = 0, cancel_me: bool = False) -> int:
    await note(f"batch{offset}")
    if offset < 3:
        continue_as_new(offset=offset + 1)
    return offset


async def test_continue_as_new_builds_a_linked_chain(storage):
    run_id = await start(batch_flow)
    chain = await get_workflow_chain(run_id)
    assert [r.status for r in chain] == [RunStatus.CONTINUED_AS_NEW] * 3 + [RunStatus.COMPLETED]
    assert chain[-1].get_result() == 3
    for prev, nxt in zip(chain, chain[1:], strict=False):
        assert prev.continued_to_run_id == nxt.run_id
        assert nxt.continued_from_run_id == prev.run_id
    assert [r.run_id for r in await get_workflow_chain(chain[2].run_id)] == [
        r.run_id for r in chain
    ]
    for run in chain:  # every run's history starts empty
        assert len(await get_workflow_events(run.run_id)) <= 3


@workflow
async def bad_continue(kind: str) -> None:
    if kind == "empty":
        continue_as_new()


async def test_continue_as_new_argument_and_context_errors(storage):
    run = await start_failing(bad_continue, "empty")
    assert run.status == RunStatus.FAILED and run.error_type == "ValueError"
    with pytest.raises(RuntimeError, match="inside a workflow"):
        continue_as_new(1)


@workflow
async def cancel_then_continue() -> None:
    try:
        await sleep("1h")
    except CancellationError:
        continue_as_new(1)


async def test_cancellation_wins_over_continue_as_new(storage):
    run_id = await start(cancel_then_continue)
    await cancel_workflow(run_id)
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.CANCELLED
    assert run.continued_to_run_id is None


@workflow
async def short_nap() -> str:
    await note("before-nap")
    await sleep(0.2)
    return "rested"


async def test_durable_sleep_completes_by_itself_while_the_loop_runs(storage):
    run_id = await start(short_nap)
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED
    for _ in range(100):  # no resume() call: the runtime's own timer wakes the run
        await asyncio.sleep(0.05)
        if (await get_workflow_run(run_id)).status == RunStatus.COMPLETED:
            break
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED and run.get_result() == "rested"
    assert calls["before-nap"] == 1


async def test_hooks_of_a_finished_run_are_disposed_and_refuse_payloads(storage):
    run_id = await start(approval_flow, "k")
    await cancel_workflow(run_id)
    [h] = await storage.list_hooks(run_id=run_id)
    assert h.status.value == "disposed"
    with pytest.raises(HookExpiredError, match="already ended"):
        await resume_hook(tokens["k"], {"approved": True, "reviewer": "x"})


async def test_a_cancel_from_another_process_reaches_a_long_execution(storage, clock):
    from pyworkflow.runtime.executor import request_cancel

    sync.update(gate=asyncio.Event(), entered=asyncio.Event())
    task = asyncio.create_task(start(running_flow))
    await sync["entered"].wait()
    run_id = (await storage.list_runs_page()).items[0].run_id
    # Only the stored record changes (as a CLI in another process would do): no in-process flag.
    await request_cancel(storage, clock, run_id, "from elsewhere")
    clock.advance(2)  # the execution re-reads its record about once a second
    sync["gate"].set()
    await task
    run = await get_workflow_run(run_id)
    assert run.status == RunStatus.CANCELLED
    assert calls["next"] == 0


@workflow
async def shielded_sibling_flow() -> None:
    try:
        await sleep("1h")
    except CancellationError:

        async def cleanup() -> None:
            async with shield():
                for _ in range(3):  # let the sibling run while this branch is shielded
                    await asyncio.sleep(0)
                await note("cleanup")

        async def sibling() -> None:
            await asyncio.sleep(0)
            await note("sibling")

        await asyncio.gather(cleanup(), sibling(), return_exceptions=True)
        raise


async def test_shield_protects_only_its_own_branch_of_a_gather(storage):
    run_id = await start(shielded_sibling_flow)
    await cancel_workflow(run_id)
    assert (await get_workflow_run(run_id)).status == RunStatus.CANCELLED
    assert calls["cleanup"] == 1
    assert calls["sibling"] == 0  # not shielded: cancelled at its await

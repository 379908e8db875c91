"""pyworkflow-engine 0.1.9's context API on our engine: get_context() in a run, MockContext with
set_context() (the hooks docs' "Testing Hooks"), runtimes by name, logging binds."""

import asyncio
import logging

import pytest
from pydantic import BaseModel

import pyworkflow
from pyworkflow import (
    CancellationError,
    EventType,
    LocalContext,
    LocalRuntime,
    MockContext,
    RunStatus,
    Runtime,
    StepContext,
    WorkflowContext,
    bind_step_context,
    bind_workflow_context,
    define_hook,
    get_context,
    get_runtime,
    get_step_context,
    has_context,
    hook,
    register_runtime,
    reset_context,
    set_context,
    set_step_context,
    sleep,
    step,
    workflow,
)

ENGINE_NO_CONTEXT = (
    "No workflow context available. This function must be called within a workflow "
    "execution. Make sure you're using the @workflow decorator."
)


class Approval(BaseModel):
    approved: bool
    reviewer: str
    comments: str | None = None


manager_approval = define_hook("compat_manager_approval", Approval)
seen: dict[str, object] = {}


@step
async def compat_prepare(order_id: str) -> dict:
    return {"order_id": order_id}


@step
async def compat_fulfill(order: dict) -> dict:
    return {**order, "status": "fulfilled"}


@workflow
async def compat_approval(order_id: str) -> dict:
    order = await compat_prepare(order_id)
    await sleep("5m", name="cool_off")
    approval = await manager_approval(timeout="7d")
    if not approval.approved:
        return {"status": "rejected"}
    return await compat_fulfill(order)


@workflow
async def compat_two_hooks(order_id: str) -> dict:
    first = await hook("finance_approval")
    second = await hook("legal_approval", timeout=60)
    return {"finance": first, "legal": second}


@workflow
async def compat_introspect() -> str:
    ctx = get_context()
    seen["ctx"] = ctx
    seen["again"] = get_context()
    seen["fields"] = (
        ctx.run_id,
        ctx.workflow_name,
        ctx.is_durable,
        ctx.is_cancellation_requested(),
    )
    await ctx.check_cancellation()
    return "ok"


def _drop_context():
    set_context(None)


# --- get_context() and the error outside a workflow ------------------------------------------
def test_get_context_outside_a_workflow_raises_the_engines_message():
    assert not has_context()
    with pytest.raises(RuntimeError) as err:
        get_context()
    assert str(err.value) == ENGINE_NO_CONTEXT


async def test_get_context_in_a_running_workflow_gives_its_run(workflow_env):
    run_id = await workflow_env.start(compat_introspect)
    assert await workflow_env.result(run_id) == "ok"
    ctx = seen["ctx"]
    assert isinstance(ctx, WorkflowContext) and isinstance(ctx, LocalContext)
    assert seen["again"] is ctx  # one context per execution
    assert seen["fields"] == (run_id, "compat_introspect", True, False)
    assert not has_context()  # gone after the run


def test_workflow_context_is_the_engines_abstract_base():
    with pytest.raises(TypeError):
        WorkflowContext()  # abstract
    for name in (
        "run",
        "sleep",
        "hook",
        "is_cancellation_requested",
        "request_cancellation",
        "check_cancellation",
        "cancellation_blocked",
        "is_durable",
        "is_replaying",
        "storage",
        "parent_run_id",
        "is_child_workflow",
        "is_step_worker",
        "runtime",
        "parallel",
        "wait_for_event",
        "log",
    ):
        assert hasattr(WorkflowContext, name), name


@step
async def compat_touch() -> str:
    return "touched"


@workflow
async def compat_cancels_itself() -> str:
    ctx = get_context()
    await compat_touch()
    ctx.request_cancellation("enough")
    assert ctx.is_cancellation_requested()
    await ctx.check_cancellation()
    return "not reached"


async def test_request_then_check_cancellation_cancels_the_run(workflow_env):
    run_id = await workflow_env.start(compat_cancels_itself)
    run = await pyworkflow.get_workflow_run(run_id, storage=workflow_env.storage)
    assert run.status == RunStatus.CANCELLED
    await workflow_env.replay(run_id)  # the recorded request replays at the same place


# --- Testing Hooks: MockContext + set_context -------------------------------------------------
def test_mock_context_answers_a_typed_hook_as_in_the_hooks_docs():
    ctx = MockContext(
        run_id="test_run",
        workflow_name="approval_workflow",
        mock_hooks={
            "compat_manager_approval": {
                "approved": True,
                "reviewer": "test@example.com",
                "comments": "Approved in test",
            }
        },
    )
    set_context(ctx)
    try:
        result = asyncio.run(compat_approval("order-123"))
    finally:
        _drop_context()
    assert result == {"order_id": "order-123", "status": "fulfilled"}
    assert ctx.hook_count == 1 and ctx.hook_names == ["compat_manager_approval"]
    assert ctx.hooks[0]["timeout"] == 7 * 86400
    assert ctx.hooks[0]["token"] == "test_run:hook_compat_manager_approval_1"
    assert ctx.sleep_count == 1 and ctx.total_sleep_seconds == 300
    ctx.assert_slept(300)
    assert ctx.step_count == 0  # steps run as plain calls; ctx.run() records them


def test_mock_context_with_two_hooks_and_default_payloads():
    ctx = MockContext(mock_hooks={"finance_approval": {"approved": True}})
    token = set_context(ctx)
    try:
        result = asyncio.run(compat_two_hooks("o-1"))
    finally:
        reset_context(token)
    assert result == {
        "finance": {"approved": True},
        "legal": {"hook": "legal_approval", "mock": True},
    }
    assert ctx.hook_count == 2 and ctx.hooks[1]["timeout"] == 60
    assert not has_context()


def test_mock_context_validates_a_typed_hooks_payload():
    ctx = MockContext(mock_hooks={"compat_manager_approval": {"approved": "not a bool"}})
    set_context(ctx)
    try:
        with pytest.raises(Exception) as err:
            asyncio.run(compat_approval("o-2"))
    finally:
        _drop_context()
    assert "approved" in str(err.value)


def test_mock_context_on_created_gets_the_mock_token():
    tokens: list[str] = []

    @workflow(name="compat_on_created")
    async def flow() -> object:
        return await hook("ping", on_created=tokens.append)

    with MockContext(run_id="r1", mock_hooks={"ping": 7}):
        assert asyncio.run(flow()) == 7
    assert tokens == ["r1:hook_ping_1"]


def test_mock_context_run_records_steps_and_uses_mock_results():
    ctx = MockContext(mock_results={"compat_fulfill": {"status": "mocked"}})

    async def body():
        order = await ctx.run(compat_prepare, "o-3")
        done = await ctx.run(compat_fulfill, order)
        return order, done

    order, done = asyncio.run(body())
    assert order == {"order_id": "o-3"} and done == {"status": "mocked"}
    assert ctx.step_names == ["compat_prepare", "compat_fulfill"]
    ctx.assert_step_called("compat_prepare", times=1)
    ctx.reset()
    assert ctx.step_count == 0


def test_mock_context_cancellation_stops_the_next_step():
    ctx = MockContext()
    ctx.request_cancellation("test")
    set_context(ctx)
    try:
        with pytest.raises(CancellationError):
            asyncio.run(compat_approval("o-4"))
    finally:
        _drop_context()
    assert ctx.is_cancellation_requested() and not ctx.cancellation_blocked


def test_step_context_under_a_mock_context():
    class Tenant(StepContext):
        tenant: str = ""

    async def body():
        await set_step_context(ctx=Tenant(tenant="t-1"))
        return get_step_context().tenant

    with MockContext():
        assert asyncio.run(body()) == "t-1"


async def test_a_mock_context_does_not_capture_a_real_run(workflow_env):
    mock = MockContext()
    with mock:
        run_id = await workflow_env.start(compat_introspect)
        assert await workflow_env.result(run_id) == "ok"
    assert isinstance(seen["ctx"], LocalContext)  # the run saw its own context
    assert mock.sleep_count == 0 and mock.hook_count == 0


# --- sleep(name=) ---------------------------------------------------------------------------
async def test_sleep_name_is_recorded_on_the_sleep_event(workflow_env):
    run_id = await workflow_env.start(compat_approval, "o-5")
    events = await workflow_env.events(run_id)
    started = [e for e in events if e.type == EventType.SLEEP_STARTED]
    assert [e.data.get("sleep_name") for e in started] == ["cool_off"]
    assert started[0].data["name"] == "sleep"  # the op's identity: renaming does not break replay


# --- standalone LocalContext ------------------------------------------------------------------
def test_a_standalone_local_context_runs_steps_and_refuses_hooks():
    async def body():
        async with LocalContext(run_id="run_123", workflow_name="wf") as ctx:
            assert get_context() is ctx and not ctx.is_durable
            value = await ctx.run(compat_prepare, "o-6")
            with pytest.raises(NotImplementedError):
                await ctx.hook("approval")
            return value

    assert asyncio.run(body()) == {"order_id": "o-6"}
    assert not has_context()


# --- runtimes by name ------------------------------------------------------------------------
def test_local_runtime_is_registered_as_local():
    rt = get_runtime("local")
    assert isinstance(rt, LocalRuntime) and isinstance(rt, Runtime) and rt.name == "local"
    assert rt.supports_durable and rt.supports_transient


def test_get_runtime_of_an_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"Unknown runtime: 'nope'\. Available runtimes: .*local"):
        get_runtime("nope")


def test_register_runtime_makes_a_runtime_available_by_name():
    class Custom(LocalRuntime):
        @property
        def name(self) -> str:
            return "compat_custom"

    register_runtime("compat_custom", Custom)
    assert get_runtime("compat_custom").name == "compat_custom"


async def test_local_runtime_start_workflow_runs_on_the_embedded_runtime(workflow_env):
    rt = get_runtime("local")
    run_id = await rt.start_workflow(
        compat_introspect,
        (),
        {},
        "run_compat_1",
        "compat_introspect",
        workflow_env.storage,
        True,
    )
    assert run_id == "run_compat_1"
    assert await workflow_env.result(run_id) == "ok"


# --- logging binds ---------------------------------------------------------------------------
def test_bind_workflow_and_step_context_add_fields_to_records(caplog):
    with caplog.at_level(logging.INFO, logger="pyworkflow"):
        bind_workflow_context("run_1", "orders").info("started")
        bind_step_context("run_1", "step_a", "charge").bind(attempt=2).info("step")
    first, second = caplog.records[-2:]
    assert (first.run_id, first.workflow_name) == ("run_1", "orders")
    assert (second.step_id, second.step_name, second.attempt) == ("step_a", "charge", 2)


def test_mock_context_assertions_fail_with_the_engines_messages():
    ctx = MockContext()
    with pytest.raises(AssertionError, match="No sleep calls recorded"):
        ctx.assert_slept()
    with pytest.raises(AssertionError, match="Step 'x' was not called"):
        ctx.assert_step_called("x")

"""One behaviour everywhere: the same operation cases through every entry point (module API,
Client embedded, Client AWS-direct, Client HTTP over the local stack, direct Lambda invoke).

Each case returns what it observed — plain values and the names of the exceptions raised — and
every entry point must observe exactly ``EXPECTED``. The operations themselves are written once
(``pyworkflow.service``); this is what keeps the entry points from drifting apart again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pyworkflow.client import Client
from pyworkflow.core.models import ScheduleSpec
from tests.client import workflows as wf
from tests.client.apiserver import serve
from tests.client.conftest import (  # noqa: F401 - fixtures
    FakeLambda,
    api,
    aws,
    aws_env,
    dynamodb_local,
    moto,
    storage_kind,
    worker,
)
from tests.conformance.entries import ClientEntry, ModuleEntry

Entry = Any  # ModuleEntry | ClientEntry: the Client's method names
Case = Callable[[Entry], Awaitable[Any]]


async def outcome(call: Awaitable[Any]) -> Any:
    """The value, or the name of the exception the call raised."""
    try:
        return await call
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return type(error).__name__


# --- the cases ------------------------------------------------------------------------------
async def start_unknown_workflow(e: Entry) -> Any:
    async def start() -> str:
        return (
            await e.start("conformance_no_such_workflow")
            if e.name != "module"
            else await e.start(lambda: None)
        )

    if e.name == "module":  # the module API takes functions: a plain function is not one
        return "UnknownWorkflowError" if await outcome(start()) == "ValueError" else "?"
    return await outcome(start())


async def start_with_bad_arguments(e: Entry) -> Any:
    return await outcome(e.start(wf.add_workflow, 1, 2, 3))


async def start_runs_to_the_end(e: Entry) -> Any:
    run_id = await e.start(wf.add_workflow, 2, b=3)
    await e.settle()
    run = await e.get_run(run_id)
    events = await e.events(run_id)
    return [run.status.value, run.get_result(), events[0].type.value, events[-1].type.value]


async def idempotent_start_finds_the_first_run(e: Entry) -> Any:
    key = f"conf-{e.name}"
    first = await e.start(wf.add_workflow, 1, idempotency_key=key)
    again_at_once = await e.start(wf.add_workflow, 1, idempotency_key=key)
    await e.settle()
    again_later = await e.start(wf.add_workflow, 1, idempotency_key=key)
    return [again_at_once == first, again_later == first]


async def reads_of_a_missing_run(e: Entry) -> Any:
    return [
        await outcome(e.get_run("run_missing")),
        await outcome(e.events("run_missing")),
        await outcome(e.chain("run_missing")),
        await outcome(e.cancel("run_missing")),
    ]


async def chain_of_continue_as_new(e: Entry) -> Any:
    first = await e.start(wf.chain, 0)
    await e.settle()
    return [r.status.value for r in await e.chain(first)]


async def cancel_a_waiting_then_an_ended_run(e: Entry) -> Any:
    run_id = await e.start(wf.sleeper, 3600)
    await e.settle()
    waiting = (await e.get_run(run_id)).status.value
    cancelled = await e.cancel(run_id, "not needed")
    await e.settle()
    ended = (await e.get_run(run_id)).status.value
    return [waiting, cancelled, ended, await e.cancel(run_id)]


async def hook_by_token(e: Entry) -> Any:
    run_id = await e.start(wf.approval)
    await e.settle()
    token = wf.TOKENS[run_id]
    bad = await outcome(e.resume_hook(token, {"ok": "perhaps"}))
    resumed = await e.resume_hook(token, {"ok": True, "by": "ann"})
    await e.settle()
    run = await e.get_run(run_id)
    again = await outcome(e.resume_hook(token, {"ok": False, "by": "bob"}))
    return [bad, resumed.run_id == run_id, resumed.status, run.get_result(), again]


async def hook_tokens_that_name_nothing(e: Entry) -> Any:
    return [
        await outcome(e.resume_hook("whk_not_a_real_token", 1)),
        await outcome(e.resume_hook("t\u00f6ken", 1)),
    ]


async def hook_by_name(e: Entry) -> Any:
    missing_run = await outcome(e.resume_hook_by_name("run_missing", "note", 1))
    run_id = await e.start(wf.any_hook)
    await e.settle()
    missing_hook = await outcome(e.resume_hook_by_name(run_id, "not-this-one", 1))
    resumed = await e.resume_hook_by_name(run_id, "note", {"n": [1, 2]})
    await e.settle()
    result = (await e.get_run(run_id)).get_result()
    return [missing_run, missing_hook, resumed.status, result]


async def hook_of_an_ended_run(e: Entry) -> Any:
    run_id = await e.start(wf.any_hook)
    await e.settle()
    await e.cancel(run_id)
    await e.settle()
    return await outcome(e.resume_hook_by_name(run_id, "note", 1))


async def hook_failed_and_heartbeat_by_token(e: Entry) -> Any:
    run_id = await e.start(wf.failable_hook)
    await e.settle()
    token = wf.TOKENS[run_id]
    beat = await e.heartbeat_hook(token)
    failed = await e.fail_hook(token, "PaymentDeclined", "card expired")
    await e.settle()
    result = (await e.get_run(run_id)).get_result()
    again = await outcome(e.fail_hook(token, "Again"))
    late_beat = await outcome(e.heartbeat_hook(token))
    return [beat.status, failed.status, result, again, late_beat]


async def hook_failed_by_name(e: Entry) -> Any:
    missing_run = await outcome(e.fail_hook_by_name("run_missing", "job", "Rejected"))
    run_id = await e.start(wf.failable_hook)
    await e.settle()
    failed = await e.fail_hook_by_name(run_id, "job", {"error_type": "Rejected", "message": "no"})
    await e.settle()
    result = (await e.get_run(run_id)).get_result()
    return [
        missing_run,
        failed.status,
        result,
        await outcome(e.fail_hook("whk_not_a_real_token", "Rejected")),
        await outcome(e.heartbeat_hook("whk_not_a_real_token")),
    ]


async def schedule_lifecycle(e: Entry) -> Any:
    sid = f"conf-{e.name}"
    unknown = await outcome(
        e.create_schedule(
            "conformance_no_such_workflow" if e.name != "module" else lambda: None,
            ScheduleSpec(interval="1h"),
        )
    )
    if e.name == "module" and unknown == "ValueError":
        unknown = "UnknownWorkflowError"  # a plain function is no workflow (see above)
    created = await e.create_schedule(
        wf.add_workflow, ScheduleSpec(interval="1h"), 4, schedule_id=sid
    )
    duplicate = await outcome(
        e.create_schedule(wf.add_workflow, ScheduleSpec(interval="1h"), 4, schedule_id=sid)
    )
    paused = (await e.pause_schedule(sid)).status.value
    resumed = (await e.resume_schedule(sid)).status.value
    updated = (await e.update_schedule(sid, spec=ScheduleSpec(cron="0 9 * * *"))).spec.cron
    run_id = await e.trigger_schedule(sid)
    await e.settle()
    triggered = await e.get_run(run_id)
    await e.delete_schedule(sid)
    deleted = (await e.get_schedule(sid)).status.value
    return [
        unknown,
        created.status.value,
        created.workflow_name,
        duplicate,
        paused,
        resumed,
        updated,
        triggered.status.value,
        triggered.get_result(),
        triggered.schedule_id == sid,
        deleted,
        await outcome(e.get_schedule("never-made")),
    ]


async def listing_with_a_foreign_cursor(e: Entry) -> Any:
    if not e.has_listing:
        return "InvalidCursorError"  # (no listing in pyworkflow-engine's module API)
    return await outcome(e.list_runs(cursor="not-a-cursor-we-made"))


EXPECTED: dict[Case, Any] = {
    start_unknown_workflow: "UnknownWorkflowError",
    start_with_bad_arguments: "InvalidArgumentsError",
    start_runs_to_the_end: ["completed", 5, "workflow.started", "workflow.completed"],
    idempotent_start_finds_the_first_run: [True, True],
    reads_of_a_missing_run: ["WorkflowNotFoundError"] * 4,
    chain_of_continue_as_new: ["continued_as_new", "continued_as_new", "completed"],
    cancel_a_waiting_then_an_ended_run: ["suspended", True, "cancelled", False],
    hook_by_token: [
        "HookPayloadError",
        True,
        "resumed",
        {"approved": True, "by": "ann"},
        "HookAlreadyReceivedError",
    ],
    hook_tokens_that_name_nothing: ["HookNotFoundError", "InvalidTokenError"],
    hook_by_name: ["WorkflowNotFoundError", "HookNotFoundError", "resumed", {"n": [1, 2]}],
    hook_of_an_ended_run: "HookExpiredError",
    hook_failed_and_heartbeat_by_token: [
        "alive",
        "failed",
        {"failed": ["PaymentDeclined", "card expired"]},
        "HookAlreadyReceivedError",
        "HookAlreadyReceivedError",
    ],
    hook_failed_by_name: [
        "WorkflowNotFoundError",
        "failed",
        {"failed": ["Rejected", "no"]},
        "HookNotFoundError",
        "HookNotFoundError",
    ],
    schedule_lifecycle: [
        "UnknownWorkflowError",
        "active",
        "client_add",
        "ScheduleAlreadyExistsError",
        "paused",
        "active",
        "0 9 * * *",
        "completed",
        5,
        True,
        "deleted",
        "ScheduleNotFoundError",
    ],
    listing_with_a_foreign_cursor: "InvalidCursorError",
}


# --- the entry points -------------------------------------------------------------------------
@pytest.fixture(params=["module", "embedded"])
async def local_entry(request: pytest.FixtureRequest) -> AsyncIterator[Entry]:
    """In this process, on the configured SQLite file; runs are driven inline."""
    if request.param == "module":
        yield ModuleEntry()
    else:
        async with Client.embedded() as client:
            yield ClientEntry("embedded", client, ModuleEntry().settle)


@pytest.fixture(params=["aws", "http", "lambda"])
async def remote_entry(
    request: pytest.FixtureRequest,
    aws: Any,  # noqa: F811
    api: Any,  # noqa: F811
) -> AsyncIterator[Entry]:
    """Against one local stack; the worker Lambda's handler is pumped from the queue."""

    async def pump() -> None:
        await aws.pump(idle_polls=2, wait_seconds=0)

    if request.param == "aws":
        async with Client.aws(storage=aws.storage) as client:
            yield ClientEntry("aws", client, pump)
    elif request.param == "http":
        async with (
            serve(api.handler) as server,
            Client.http(server.url, region="us-east-1") as client,
        ):
            yield ClientEntry("http", client, pump)
    else:
        async with Client.lambda_("pyworkflow-api", client=FakeLambda(api.handler)) as client:
            yield ClientEntry("lambda", client, pump)


CASES = pytest.mark.parametrize("case", list(EXPECTED), ids=[c.__name__ for c in EXPECTED])


@CASES
async def test_embedded_entry_points_behave_the_same(local_entry: Entry, case: Case) -> None:
    assert await case(local_entry) == EXPECTED[case]


@CASES
async def test_remote_entry_points_behave_the_same(remote_entry: Entry, case: Case) -> None:
    assert await case(remote_entry) == EXPECTED[case]

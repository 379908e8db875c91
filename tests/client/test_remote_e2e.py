"""Every remote transport (HTTP API, Lambda invoke, AWS direct) against the same stack: the
real API handler, the real worker pumped from moto's SQS, SQLite storage. Runs progress only
when the test pumps the queue, as they would only when the worker Lambda runs."""

from __future__ import annotations

import pytest

from pyworkflow.client import Client
from pyworkflow.client.errors import UnknownWorkflowError
from pyworkflow.core.events import EventType
from pyworkflow.core.models import OverlapPolicy, RunStatus, ScheduleSpec, ScheduleStatus
from pyworkflow.exceptions import (
    HookAlreadyReceivedError,
    HookNotFoundError,
    HookPayloadError,
    InvalidArgumentsError,
    ScheduleNotFoundError,
    WorkflowNotFoundError,
)
from tests.aws.conftest import Aws
from tests.client import workflows as wf


async def test_start_wait_result(remote: Client, aws: Aws) -> None:
    run_id = await remote.start(wf.add_workflow, 2, b=3, idempotency_key="once")
    assert await remote.start("client_add", 2, b=3, idempotency_key="once") == run_id
    assert (await remote.get_run(run_id)).status == RunStatus.PENDING
    with pytest.raises(TimeoutError, match=rf"{run_id}.*last status: pending"):
        await remote.wait(run_id, timeout=0.2)
    await aws.pump_until_done(run_id)
    run = await remote.wait(run_id, timeout=5)
    assert run.status == RunStatus.COMPLETED and run.get_result() == 5
    events = await remote.events(run_id)
    assert events[0].type == EventType.WORKFLOW_STARTED
    assert events[-1].type == EventType.WORKFLOW_COMPLETED
    assert [e.sequence for e in await remote.events(run_id, after=1)] == [
        e.sequence for e in events[1:]
    ]
    page = await remote.list_runs(workflow=wf.add_workflow, status="completed", limit=10)
    assert [r.run_id for r in page.items] == [run_id]
    assert "client_add" in {w.name for w in await remote.list_workflows()}
    assert (await remote.health())["status"] == "ok"


async def test_errors_come_back_as_pyworkflow_exceptions(remote: Client) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await remote.get_run("run_missing")
    with pytest.raises(WorkflowNotFoundError):
        await remote.events("run_missing")
    with pytest.raises(UnknownWorkflowError, match="client_add"):
        await remote.start("no_such_workflow")
    with pytest.raises(InvalidArgumentsError):
        await remote.start(wf.add_workflow, 1, 2, 3)
    with pytest.raises(HookNotFoundError):
        await remote.resume_hook("whk_not_a_real_token", {"x": 1})
    with pytest.raises(ScheduleNotFoundError):
        await remote.get_schedule("never-made")


async def test_hooks(remote: Client, aws: Aws) -> None:
    run_id = await remote.start(wf.approval)
    await aws.pump()  # the run reaches its hook and waits
    assert (await remote.get_run(run_id)).status == RunStatus.SUSPENDED
    token = wf.TOKENS[run_id]
    with pytest.raises(HookPayloadError):
        await remote.resume_hook(token, {"ok": "perhaps"})
    resumed = await remote.resume_hook(token, {"ok": True, "by": "ann"})
    assert resumed.run_id == run_id and resumed.status == "resumed"
    await aws.pump_until_done(run_id)
    assert (await remote.wait(run_id, timeout=5)).get_result() == {"approved": True, "by": "ann"}
    with pytest.raises(HookAlreadyReceivedError):
        await remote.resume_hook(token, {"ok": False, "by": "bob"})

    by_name = await remote.start(wf.any_hook)
    await aws.pump()
    with pytest.raises(HookNotFoundError):
        await remote.resume_hook_by_name(by_name, "not-this-one", 1)
    await remote.resume_hook_by_name(by_name, "note", {"list": [1, 2]})
    await aws.pump_until_done(by_name)
    assert (await remote.get_run(by_name)).get_result() == {"list": [1, 2]}


async def test_cancel_and_chain(remote: Client, aws: Aws) -> None:
    sleeping = await remote.start(wf.sleeper, 3600)
    await aws.pump()
    assert (await remote.get_run(sleeping)).status == RunStatus.SUSPENDED
    assert await remote.cancel(sleeping, reason="changed my mind") is True
    await aws.pump_until_done(sleeping)
    run = await remote.wait(sleeping, timeout=5)
    assert run.status == RunStatus.CANCELLED
    assert await remote.cancel(sleeping) is False

    first = await remote.start(wf.chain, 0)

    async def chain_done() -> bool:
        return (await remote.chain(first))[-1].status == RunStatus.COMPLETED

    await aws.pump(stop_when=chain_done, idle_polls=8)
    runs = await remote.chain(first)
    assert [r.status for r in runs] == [RunStatus.CONTINUED_AS_NEW] * 2 + [RunStatus.COMPLETED]
    assert runs[0].run_id == first and runs[-1].get_result() == 2


async def test_schedules(remote: Client, aws: Aws) -> None:
    created = await remote.create_schedule(
        wf.add_workflow,
        ScheduleSpec(cron="0 9 * * *"),
        40,
        b=2,
        schedule_id="daily",
        overlap_policy="allow_all",
    )
    assert created.overlap_policy == OverlapPolicy.ALLOW_ALL and created.args == "[40]"
    assert (await remote.get_schedule("daily")).spec.cron == "0 9 * * *"
    assert [s.schedule_id for s in await remote.list_schedules(workflow="client_add")] == ["daily"]
    updated = await remote.update_schedule("daily", spec=ScheduleSpec(interval="2h"))
    assert updated.spec.interval == "2h" and updated.spec.cron is None
    assert (await remote.pause_schedule("daily")).status == ScheduleStatus.PAUSED
    assert (await remote.resume_schedule("daily")).status == ScheduleStatus.ACTIVE
    run_id = await remote.trigger_schedule("daily")
    await aws.pump_until_done(run_id)
    run = await remote.wait(run_id, timeout=5)
    assert run.get_result() == 42 and run.schedule_id == "daily"
    await remote.delete_schedule("daily")
    assert (await remote.get_schedule("daily")).status == ScheduleStatus.DELETED

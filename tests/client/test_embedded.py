"""The embedded transport end to end: runs driven in this process on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyworkflow.client import Client, HookResumed
from pyworkflow.client.errors import UnknownWorkflowError
from pyworkflow.core.events import EventType
from pyworkflow.core.models import OverlapPolicy, RunStatus, ScheduleSpec, ScheduleStatus
from pyworkflow.exceptions import (
    ConfigurationError,
    HookAlreadyReceivedError,
    HookNotFoundError,
    HookPayloadError,
    InvalidArgumentsError,
    ScheduleNotFoundError,
    WorkflowNotFoundError,
)
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.client import workflows as wf


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    storage = SQLiteStorageBackend(tmp_path / "client.db")
    async with Client.embedded(storage) as c:
        yield c
    await storage.close()


async def test_start_wait_result(client: Client) -> None:
    run_id = await client.start(wf.add_workflow, 2, b=3)
    run = await client.wait(run_id, timeout=10)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == 5
    assert (await client.get_run(run_id)).run_id == run_id
    types = [e.type for e in await client.events(run_id)]
    assert types[0] == EventType.WORKFLOW_STARTED
    assert types[-1] == EventType.WORKFLOW_COMPLETED
    later = await client.events(run_id, after=len(types) - 1)
    assert [e.type for e in later] == [EventType.WORKFLOW_COMPLETED]


async def test_start_by_name_and_idempotency(client: Client) -> None:
    first = await client.start("client_add", 1, idempotency_key="k-1")
    again = await client.start("client_add", 1, idempotency_key="k-1")
    assert again == first
    other = await client.start("client_add", 1, idempotency_key="k-2")
    assert other != first


async def test_failed_run_is_a_run_not_an_exception(client: Client) -> None:
    run_id = await client.start(wf.fail_workflow, "boom")
    run = await client.wait(run_id, timeout=10)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ValueError"
    assert "boom" in (run.error or "")


async def test_bad_input_raises(client: Client) -> None:
    with pytest.raises(UnknownWorkflowError, match="nope") as info:
        await client.start("nope")
    assert isinstance(info.value, ConfigurationError)
    assert "client_add" in str(info.value)  # names the ones that exist
    with pytest.raises(InvalidArgumentsError):
        await client.start(wf.add_workflow, "x", "y", "z")
    with pytest.raises(WorkflowNotFoundError):
        await client.get_run("run_missing")
    with pytest.raises(WorkflowNotFoundError):
        await client.events("run_missing")
    with pytest.raises(WorkflowNotFoundError):
        await client.cancel("run_missing")
    with pytest.raises(TypeError):
        await client.start(print)


async def test_list_runs_pages(client: Client) -> None:
    ids = [await client.start(wf.add_workflow, i) for i in range(5)]
    page = await client.list_runs(workflow=wf.add_workflow, limit=3)
    assert len(page.items) == 3 and page.next_cursor
    rest = await client.list_runs(workflow="client_add", limit=3, cursor=page.next_cursor)
    assert {r.run_id for r in page.items + rest.items} == set(ids)
    done = await client.list_runs(status="completed")
    assert len(done.items) == 5


async def test_sleep_resumes_in_background_and_wait_times_out(client: Client) -> None:
    run_id = await client.start(wf.sleeper, 0.3)
    with pytest.raises(TimeoutError, match=rf"{run_id}.*last status: suspended"):
        await client.wait(run_id, timeout=0.05)
    run = await client.wait(run_id, timeout=10)
    assert run.get_result() == "woke"


async def test_cancel_a_waiting_run(client: Client) -> None:
    run_id = await client.start(wf.sleeper, 3600)
    assert (await client.get_run(run_id)).status == RunStatus.SUSPENDED
    assert await client.cancel(run_id, reason="not needed") is True
    run = await client.wait(run_id, timeout=10)
    assert run.status == RunStatus.CANCELLED
    assert await client.cancel(run_id) is False  # already ended


async def test_hook_by_token(client: Client) -> None:
    run_id = await client.start(wf.approval)
    token = wf.TOKENS[run_id]
    with pytest.raises(HookPayloadError, match="Approval"):
        await client.resume_hook(token, {"ok": "maybe?"})
    resumed = await client.resume_hook(token, {"ok": True, "by": "ann"})
    assert resumed == HookResumed(run_id=run_id, status="resumed", hook_id=resumed.hook_id)
    run = await client.wait(run_id, timeout=10)
    assert run.get_result() == {"approved": True, "by": "ann"}
    with pytest.raises(HookAlreadyReceivedError):
        await client.resume_hook(token, {"ok": False, "by": "bob"})
    with pytest.raises(HookNotFoundError):
        await client.resume_hook("whk_unknown", {})


async def test_hook_by_name(client: Client) -> None:
    run_id = await client.start(wf.any_hook)
    with pytest.raises(HookNotFoundError):
        await client.resume_hook_by_name(run_id, "other", 1)
    await client.resume_hook_by_name(run_id, "note", [1, "two"])
    assert (await client.wait(run_id, timeout=10)).get_result() == [1, "two"]


async def test_chain(client: Client) -> None:
    first = await client.start(wf.chain, 0)
    runs = await client.chain(first)
    assert [r.status for r in runs] == [RunStatus.CONTINUED_AS_NEW] * 2 + [RunStatus.COMPLETED]
    assert runs[0].run_id == first and runs[-1].get_result() == 2
    assert [r.run_id for r in await client.chain(runs[-1].run_id)] == [r.run_id for r in runs]


async def test_workflows(client: Client) -> None:
    infos = {w.name: w for w in await client.list_workflows()}
    assert infos["client_add"].description == "Adds two numbers in a step."
    assert (infos["client_add"].signature or "").startswith("(a: ")
    assert (await client.health())["status"] == "ok"


async def test_schedules(client: Client) -> None:
    spec = ScheduleSpec(cron="0 9 * * *")
    created = await client.create_schedule(
        wf.add_workflow, spec, 40, b=2, schedule_id="daily", overlap_policy="allow_all"
    )
    assert created.schedule_id == "daily"
    assert created.overlap_policy == OverlapPolicy.ALLOW_ALL
    assert (await client.get_schedule("daily")).spec.cron == "0 9 * * *"
    assert [s.schedule_id for s in await client.list_schedules(workflow="client_add")] == ["daily"]
    updated = await client.update_schedule("daily", spec=ScheduleSpec(interval="1h"))
    assert updated.spec.interval == "1h"
    assert (await client.pause_schedule("daily")).status == ScheduleStatus.PAUSED
    assert (await client.resume_schedule("daily")).status == ScheduleStatus.ACTIVE
    run_id = await client.trigger_schedule("daily")
    run = await client.wait(run_id, timeout=10)
    assert run.get_result() == 42 and run.schedule_id == "daily"
    await client.delete_schedule("daily")
    assert (await client.get_schedule("daily")).status == ScheduleStatus.DELETED
    with pytest.raises(ScheduleNotFoundError):
        await client.get_schedule("never")
    with pytest.raises(UnknownWorkflowError):
        await client.create_schedule("nope", spec)


async def test_concurrent_calls_share_one_client(client: Client) -> None:
    ids = await asyncio.gather(*(client.start(wf.add_workflow, i) for i in range(8)))
    runs = await asyncio.gather(*(client.wait(i, timeout=10) for i in ids))
    assert sorted(r.get_result() for r in runs) == [i + 1 for i in range(8)]

"""``SyncClient``: the async client on a private loop, callable from any thread."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import pyworkflow
from pyworkflow.client import Client, SyncClient
from pyworkflow.core.models import RunStatus, ScheduleSpec
from pyworkflow.exceptions import HookNotFoundError, WorkflowNotFoundError
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.client import workflows as wf


@pytest.fixture
def sync_client(tmp_path: Path) -> Iterator[SyncClient]:
    pyworkflow.configure(storage=SQLiteStorageBackend(tmp_path / "sync.db"))
    with Client.embedded().sync() as client:
        yield client


def test_start_wait_result(sync_client: SyncClient) -> None:
    run_id = sync_client.start(wf.add_workflow, 20, b=22)
    run = sync_client.wait(run_id, timeout=10)
    assert run.status == RunStatus.COMPLETED and run.get_result() == 42
    assert sync_client.events(run_id)[-1].type == "workflow.completed"
    assert sync_client.list_runs(workflow="client_add").items[0].run_id == run_id


def test_background_drives_run_on_the_private_loop(sync_client: SyncClient) -> None:
    # The sleep's wake-up is a timer on the client's loop: it fires between calls.
    run_id = sync_client.start(wf.sleeper, 0.2)
    assert sync_client.get_run(run_id).status == RunStatus.SUSPENDED
    assert sync_client.wait(run_id, timeout=10).get_result() == "woke"


def test_hooks_cancel_schedules_and_errors(sync_client: SyncClient) -> None:
    waiting = sync_client.start(wf.any_hook)
    sync_client.resume_hook(wf.TOKENS[waiting], {"x": 1})
    assert sync_client.wait(waiting, timeout=10).get_result() == {"x": 1}
    other = sync_client.start(wf.any_hook)
    sync_client.resume_hook_by_name(other, "note", "hi")
    assert sync_client.wait(other, timeout=10).get_result() == "hi"
    sleeping = sync_client.start(wf.sleeper, 3600)
    assert sync_client.cancel(sleeping) is True
    assert sync_client.wait(sleeping, timeout=10).status == RunStatus.CANCELLED
    schedule = sync_client.create_schedule("client_add", ScheduleSpec(interval="1h"), 1)
    assert sync_client.get_schedule(schedule.schedule_id).spec.interval == "1h"
    triggered = sync_client.trigger_schedule(schedule.schedule_id)
    assert sync_client.wait(triggered, timeout=10).get_result() == 2
    assert sync_client.chain(triggered)[0].run_id == triggered
    assert "client_add" in {w.name for w in sync_client.list_workflows()}
    with pytest.raises(WorkflowNotFoundError):
        sync_client.get_run("run_nope")
    with pytest.raises(HookNotFoundError):
        sync_client.resume_hook("whk_nope", None)


def test_many_threads_share_one_client(sync_client: SyncClient) -> None:
    def one(i: int) -> int:
        return int(sync_client.wait(sync_client.start(wf.add_workflow, i), timeout=10).get_result())

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(12)))
    assert results == [i + 1 for i in range(12)]


def test_closed_client_refuses_calls(tmp_path: Path) -> None:
    pyworkflow.configure(storage=SQLiteStorageBackend(tmp_path / "closed.db"))
    client = Client.embedded().sync()
    client.close()
    client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        client.get_run("run_x")


async def test_usable_from_inside_another_event_loop(tmp_path: Path) -> None:
    # Blocking, but correct: the caller's loop is not the client's.
    pyworkflow.configure(storage=SQLiteStorageBackend(tmp_path / "nested.db"))
    with Client.embedded().sync() as client:
        run_id = client.start(wf.add_workflow, 1)
        assert client.wait(run_id, timeout=10).get_result() == 2


def test_calling_from_its_own_loop_is_refused(sync_client: SyncClient) -> None:
    async def inside() -> None:
        sync_client.get_run("run_x")

    with pytest.raises(RuntimeError, match="its own loop"):
        sync_client._run(inside())

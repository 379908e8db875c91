"""pyworkflow-engine 0.1.9's storage read API (``pyworkflow/storage/compat.py``), on every
backend and on the offloading wrapper: the calls 0.1.9's docs and examples make directly.

Data is written through our protocol (conditional appends), then read back through 0.1.9's
methods, with 0.1.9's signatures and return types.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import (
    Hook,
    HookStatus,
    RunStatus,
    StepExecution,
    StepStatus,
    WorkflowRun,
)
from pyworkflow.exceptions import WorkflowNotFoundError
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.blobs import FileBlobStore
from pyworkflow.storage.dynamodb import DynamoDBStorageBackend
from pyworkflow.storage.offload import OffloadingStorage

from .conftest import BACKENDS, make_backend
from .test_contract import T0, make_run


@pytest.fixture(params=[*BACKENDS, "offload"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageBackend]:
    """Every backend, and memory behind the offloading wrapper (every payload a blob)."""
    kind = "memory" if request.param == "offload" else request.param
    inner = make_backend(kind, tmp_path)
    if isinstance(inner, DynamoDBStorageBackend):
        await inner.ensure_table()
    backend: StorageBackend = inner
    if request.param == "offload":
        backend = OffloadingStorage(inner, FileBlobStore(tmp_path / "blobs"), threshold_bytes=1)
    yield backend
    if isinstance(inner, DynamoDBStorageBackend):
        await inner.delete_table()
    await backend.close()


def event(run_id: str, sequence: int, type_: EventType, **data: Any) -> Event:
    return Event(
        event_id=f"{run_id}-{sequence}",
        run_id=run_id,
        type=type_,
        timestamp=T0 + timedelta(seconds=sequence),
        data=data,
        sequence=sequence,
    )


def started(run_id: str) -> Event:
    return event(run_id, 1, EventType.WORKFLOW_STARTED, workflow_name="wf")


async def create(storage: StorageBackend, run_id: str, minutes: int = 0, **fields: Any) -> None:
    created = T0 + timedelta(minutes=minutes)
    await storage.create_run(make_run(run_id, created=created, **fields), [started(run_id)])


def ids(runs: list[WorkflowRun]) -> list[str]:
    return [r.run_id for r in runs]


# --- list_runs ----------------------------------------------------------------------------------
async def test_list_runs_returns_a_tuple_of_runs_newest_first_and_no_cursor_at_the_end(
    storage: StorageBackend,
) -> None:
    for i in range(3):
        await create(storage, f"r{i}", minutes=i)
    result = await storage.list_runs()
    assert isinstance(result, tuple)
    runs, next_cursor = result
    assert ids(runs) == ["r2", "r1", "r0"] and next_cursor is None


async def test_list_runs_cursor_is_the_last_run_id_and_pages_without_overlap(
    storage: StorageBackend,
) -> None:
    for i in range(5):
        await create(storage, f"r{i}", minutes=i)
    first, cursor = await storage.list_runs(limit=2)
    assert ids(first) == ["r4", "r3"] and cursor == "r3"
    second, cursor = await storage.list_runs(limit=2, cursor=cursor)
    assert ids(second) == ["r2", "r1"] and cursor == "r1"
    last, cursor = await storage.list_runs(limit=2, cursor=cursor)
    assert ids(last) == ["r0"] and cursor is None


async def test_list_runs_cursor_naming_no_run_lists_nothing(storage: StorageBackend) -> None:
    await create(storage, "r0")
    assert await storage.list_runs(cursor="no-such-run") == ([], None)


async def test_list_runs_filters_by_status_workflow_name_and_parent(
    storage: StorageBackend,
) -> None:
    await create(storage, "a", 0, workflow_name="orders", status=RunStatus.RUNNING)
    await create(storage, "b", 1, workflow_name="orders", status=RunStatus.COMPLETED)
    await create(storage, "c", 2, workflow_name="billing", status=RunStatus.RUNNING)
    await create(storage, "d", 3, workflow_name="billing", parent_run_id="c", nesting_depth=1)
    assert ids((await storage.list_runs(status=RunStatus.RUNNING))[0]) == ["c", "a"]
    assert ids((await storage.list_runs(workflow_name="orders"))[0]) == ["b", "a"]
    assert ids((await storage.list_runs(parent_run_id="c"))[0]) == ["d"]
    # 0.1.9's positional order: query, status, start_time, end_time, limit, cursor
    assert ids((await storage.list_runs(None, RunStatus.COMPLETED))[0]) == ["b"]


async def test_list_runs_query_matches_workflow_name_or_kwargs_case_insensitively(
    storage: StorageBackend,
) -> None:
    await create(storage, "a", 0, workflow_name="SendInvoice")
    await create(storage, "b", 1, workflow_name="other", input_kwargs=json.dumps({"to": "ACME"}))
    await create(storage, "c", 2, workflow_name="other")
    assert ids((await storage.list_runs(query="invoice"))[0]) == ["a"]
    assert ids((await storage.list_runs(query="acme"))[0]) == ["b"]


async def test_list_runs_time_window_is_on_started_at_and_skips_unstarted_runs(
    storage: StorageBackend,
) -> None:
    for i in range(4):
        await create(storage, f"r{i}", i, started_at=T0 + timedelta(hours=i))
    await create(storage, "unstarted", 9)
    runs, _ = await storage.list_runs(
        start_time=T0 + timedelta(hours=1), end_time=T0 + timedelta(hours=3)
    )
    assert ids(runs) == ["r2", "r1"]


async def test_list_runs_with_a_filter_still_pages_by_run_id(storage: StorageBackend) -> None:
    for i in range(6):
        await create(storage, f"r{i}", i, workflow_name="even" if i % 2 == 0 else "odd")
    first, cursor = await storage.list_runs(query="even", limit=2)
    assert ids(first) == ["r4", "r2"] and cursor == "r2"
    rest, cursor = await storage.list_runs(query="even", limit=2, cursor=cursor)
    assert ids(rest) == ["r0"] and cursor is None


async def test_our_paged_listing_stays_available_as_list_runs_page(
    storage: StorageBackend,
) -> None:
    for i in range(3):
        await create(storage, f"r{i}", minutes=i)
    page = await storage.list_runs_page(limit=2)
    assert ids(page.items) == ["r2", "r1"] and page.next_cursor
    rest = await storage.list_runs_page(limit=2, cursor=page.next_cursor)
    assert ids(rest.items) == ["r0"] and rest.next_cursor is None


# --- events -------------------------------------------------------------------------------------
async def history(storage: StorageBackend) -> None:
    await create(storage, "r")
    await storage.append_events(
        "r",
        [
            event("r", 2, EventType.STEP_COMPLETED, op=1, name="a", step_name="a", result=1),
            event("r", 3, EventType.SLEEP_STARTED, op=2),
            event("r", 4, EventType.STEP_COMPLETED, op=3, name="b", step_name="b", result=2),
        ],
    )


async def test_get_events_returns_the_whole_history_in_sequence_order(
    storage: StorageBackend,
) -> None:
    await history(storage)
    events = await storage.get_events("r")
    assert [e.sequence for e in events] == [1, 2, 3, 4]
    assert all(isinstance(e, Event) for e in events)
    assert await storage.get_events("unknown") == []


async def test_get_events_filters_by_event_types_given_as_strings_or_members(
    storage: StorageBackend,
) -> None:
    await history(storage)
    by_text = await storage.get_events("r", ["step.completed"])
    assert [e.sequence for e in by_text] == [2, 4]
    by_member = await storage.get_events("r", event_types=[EventType.SLEEP_STARTED])
    assert [e.sequence for e in by_member] == [3]
    assert [e.sequence for e in await storage.get_events("r", after_sequence=2)] == [3, 4]


async def test_get_latest_event_is_the_last_one_optionally_of_a_type(
    storage: StorageBackend,
) -> None:
    await history(storage)
    latest = await storage.get_latest_event("r")
    assert latest is not None and latest.sequence == 4
    sleep = await storage.get_latest_event("r", "sleep.started")
    assert sleep is not None and sleep.sequence == 3
    assert await storage.get_latest_event("r", "hook.created") is None
    assert await storage.get_latest_event("unknown") is None


# --- steps (derived from step events) -----------------------------------------------------------
async def test_list_steps_derives_one_record_per_step_from_its_events(
    storage: StorageBackend,
) -> None:
    await create(storage, "r")
    await storage.append_events(
        "r",
        [
            event("r", 2, EventType.STEP_COMPLETED, op=1, name="a", step_name="a", result=[1]),
            event(
                "r",
                3,
                EventType.STEP_RETRYING,
                op=2,
                name="b",
                step_name="b",
                attempt=1,
                error="boom",
                retry_at=(T0 + timedelta(minutes=5)).isoformat(),
            ),
            event(
                "r",
                4,
                EventType.STEP_FAILED,
                op=2,
                name="b",
                step_name="b",
                attempt=2,
                error="boom again",
            ),
        ],
    )
    steps = await storage.list_steps("r")
    assert all(isinstance(s, StepExecution) for s in steps)
    assert [(s.step_name, s.status, s.attempt) for s in steps] == [
        ("a", StepStatus.COMPLETED, 1),
        ("b", StepStatus.FAILED, 2),
    ]
    a, b = steps
    assert a.result == "[1]" and a.completed_at == T0 + timedelta(seconds=2)
    assert b.error == "boom again" and b.created_at == T0 + timedelta(seconds=3)
    assert await storage.list_steps("unknown") == []


async def test_get_step_finds_a_step_by_the_id_list_steps_gave(storage: StorageBackend) -> None:
    await history(storage)
    steps = await storage.list_steps("r")
    assert [s.step_id for s in steps] == ["r:1", "r:3"]
    found = await storage.get_step(steps[1].step_id)
    assert found is not None and found.step_name == "b" and found.result == "2"
    assert await storage.get_step("r:2") is None  # op 2 is a sleep
    assert await storage.get_step("step_without_run") is None


# --- runs: children, parent, depth, chain, idempotency, context -----------------------------------
async def test_children_parent_and_nesting_depth(storage: StorageBackend) -> None:
    await create(storage, "root")
    await create(storage, "kid2", 2, parent_run_id="root", nesting_depth=1)
    await create(storage, "kid1", 1, parent_run_id="root", nesting_depth=1)
    await create(
        storage, "done", 3, parent_run_id="root", nesting_depth=1, status=RunStatus.COMPLETED
    )
    await create(storage, "grandkid", 4, parent_run_id="kid1", nesting_depth=2)
    assert ids(await storage.get_children("root")) == ["kid1", "kid2", "done"]  # oldest first
    assert ids(await storage.get_children("root", RunStatus.COMPLETED)) == ["done"]
    assert await storage.get_children("unknown") == []
    parent = await storage.get_parent("grandkid")
    assert parent is not None and parent.run_id == "kid1"
    assert await storage.get_parent("root") is None and await storage.get_parent("nope") is None
    assert await storage.get_nesting_depth("grandkid") == 2
    assert await storage.get_nesting_depth("root") == 0
    assert await storage.get_nesting_depth("nope") == 0


async def test_workflow_chain_of_an_unknown_run_is_empty(storage: StorageBackend) -> None:
    assert await storage.get_workflow_chain("ghost") == []


async def test_run_by_idempotency_key_and_run_context(storage: StorageBackend) -> None:
    await create(storage, "r", idempotency_key="k", context={"tenant": "acme"})
    found = await storage.get_run_by_idempotency_key("k")
    assert found is not None and found.run_id == "r"
    assert await storage.get_run_by_idempotency_key("other") is None
    assert await storage.get_run_context("r") == {"tenant": "acme"}
    assert await storage.get_run_context("nope") == {}


# --- hooks --------------------------------------------------------------------------------------
async def hooks(storage: StorageBackend) -> None:
    for run_id in ("r1", "r2"):
        await create(storage, run_id)
    for i, (run_id, hook_id) in enumerate(
        [("r1", "hook_a_1"), ("r1", "hook_b_2"), ("r2", "hook_a_1"), ("r2", "hook_c_3")]
    ):
        await storage.create_hook(
            Hook(
                hook_id,
                run_id,
                f"{run_id}:{hook_id}",
                name=hook_id.split("_")[1],
                created_at=T0 + timedelta(minutes=i),
                status=HookStatus.RECEIVED if hook_id == "hook_c_3" else HookStatus.PENDING,
            )
        )


async def test_list_hooks_filters_newest_first_with_limit_and_offset(
    storage: StorageBackend,
) -> None:
    await hooks(storage)
    every = await storage.list_hooks()
    assert [(h.run_id, h.hook_id) for h in every] == [
        ("r2", "hook_c_3"),
        ("r2", "hook_a_1"),
        ("r1", "hook_b_2"),
        ("r1", "hook_a_1"),
    ]
    assert [h.hook_id for h in await storage.list_hooks("r1")] == ["hook_b_2", "hook_a_1"]
    pending = await storage.list_hooks(status=HookStatus.PENDING, limit=2, offset=1)
    assert [(h.run_id, h.hook_id) for h in pending] == [("r1", "hook_b_2"), ("r1", "hook_a_1")]
    assert await storage.list_hooks(offset=4) == []


async def test_get_hook_by_id_is_the_newest_with_that_id_or_the_one_of_a_run(
    storage: StorageBackend,
) -> None:
    await hooks(storage)
    newest = await storage.get_hook("hook_a_1")
    assert newest is not None and newest.run_id == "r2"
    in_r1 = await storage.get_hook("hook_a_1", run_id="r1")
    assert in_r1 is not None and in_r1.run_id == "r1"
    assert await storage.get_hook("hook_z_9") is None


async def test_get_hook_by_token_reads_the_hook_stored_under_its_hash(
    storage: StorageBackend,
) -> None:
    await hooks(storage)
    hook = await storage.get_hook_by_token("r1:hook_b_2")
    assert hook is not None and (hook.run_id, hook.hook_id) == ("r1", "hook_b_2")
    assert await storage.get_hook_by_token("r1:nope") is None


# --- cancellation flag --------------------------------------------------------------------------
async def test_cancellation_flag_is_the_runs_cancel_request(storage: StorageBackend) -> None:
    await create(storage, "r", status=RunStatus.RUNNING)
    assert await storage.check_cancellation_flag("r") is False
    await storage.set_cancellation_flag("r")
    assert await storage.check_cancellation_flag("r") is True
    run = await storage.get_run("r")
    assert run is not None and run.cancel_requested and run.version == 2  # a compare-and-set
    await storage.set_cancellation_flag("r")  # already set: nothing written
    assert (await storage.get_run("r")).version == 2  # type: ignore[union-attr]
    await storage.clear_cancellation_flag("r")
    assert await storage.check_cancellation_flag("r") is False


async def test_cancellation_flag_of_an_unknown_run(storage: StorageBackend) -> None:
    assert await storage.check_cancellation_flag("nope") is False
    await storage.clear_cancellation_flag("nope")  # no error, as 0.1.9
    with pytest.raises(WorkflowNotFoundError):
        await storage.set_cancellation_flag("nope")

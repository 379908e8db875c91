"""The StorageBackend contract, run against every backend (see ``conftest.storage``).

Each test states one promise of ``pyworkflow/storage/base.py``; failed writes are always followed
by reads proving that nothing was half-written.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import (
    Hook,
    HookStatus,
    RunStatus,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
    WorkflowRun,
)
from pyworkflow.exceptions import ConcurrencyError, ConfigurationError, WorkflowNotFoundError
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.memory import due_key
from pyworkflow.storage.sql.server import ServerSQLStorageBackend
from pyworkflow.storage.sqlite import SCHEMA_VERSION, SQLiteStorageBackend

from .conftest import PERSISTENT_BACKENDS, make_backend

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def make_run(run_id: str, *, created: datetime = T0, **fields: Any) -> WorkflowRun:
    fields.setdefault("workflow_name", "wf")
    return WorkflowRun(run_id=run_id, created_at=created, updated_at=created, **fields)


def make_event(run_id: str, sequence: int, **data: Any) -> Event:
    return Event(
        event_id=f"{run_id}-{sequence}-{data.get('tag', '')}",
        run_id=run_id,
        type=EventType.STEP_COMPLETED,
        timestamp=T0 + timedelta(seconds=sequence),
        data=data,
        sequence=sequence,
    )


def make_events(run_id: str, first: int, last: int) -> list[Event]:
    return [make_event(run_id, s) for s in range(first, last + 1)]


async def sequences(storage: StorageBackend, run_id: str) -> list[int]:
    return [e.sequence for e in await storage.get_events(run_id)]


# --- create / get ------------------------------------------------------------------------------
async def test_create_run_get_run_and_idempotency_lookup(storage: StorageBackend) -> None:
    events = make_events("r1", 1, 2)
    stored = await storage.create_run(make_run("r1", idempotency_key="k1", version=7), events)

    assert stored.version == 1  # whatever the caller passed
    assert await storage.get_run("r1") == stored
    by_key = await storage.get_run_by_idempotency_key("k1")
    assert by_key is not None and by_key.run_id == "r1"
    assert await storage.get_events("r1") == events
    assert await storage.get_run("missing") is None
    assert await storage.get_run_by_idempotency_key("missing") is None


async def test_create_run_duplicate_id_writes_nothing(storage: StorageBackend) -> None:
    await storage.create_run(make_run("r1", idempotency_key="k1"), make_events("r1", 1, 1))

    with pytest.raises(ConcurrencyError):
        await storage.create_run(
            make_run("r1", idempotency_key="k2", workflow_name="other"), make_events("r1", 1, 3)
        )

    run = await storage.get_run("r1")
    assert run is not None and run.workflow_name == "wf" and run.version == 1
    assert await sequences(storage, "r1") == [1]
    assert await storage.get_run_by_idempotency_key("k2") is None


async def test_create_run_duplicate_idempotency_key_writes_nothing(storage: StorageBackend) -> None:
    await storage.create_run(make_run("r1", idempotency_key="k1"), make_events("r1", 1, 1))

    with pytest.raises(ConcurrencyError):
        await storage.create_run(make_run("r2", idempotency_key="k1"), make_events("r2", 1, 2))

    assert await storage.get_run("r2") is None
    assert await storage.get_events("r2") == []
    by_key = await storage.get_run_by_idempotency_key("k1")
    assert by_key is not None and by_key.run_id == "r1"
    assert [r.run_id for r in (await storage.list_runs_page()).items] == ["r1"]
    # the failed attempt left nothing behind that blocks a clean retry under another key
    await storage.create_run(make_run("r2", idempotency_key="k2"), make_events("r2", 1, 1))
    assert await sequences(storage, "r2") == [1]


async def test_create_run_history_must_start_at_one(storage: StorageBackend) -> None:
    with pytest.raises(ConcurrencyError):
        await storage.create_run(make_run("r1"), make_events("r1", 2, 3))
    assert await storage.get_run("r1") is None
    assert await storage.get_events("r1") == []


# --- append ------------------------------------------------------------------------------------
async def test_append_next_sequences(storage: StorageBackend) -> None:
    await storage.create_run(make_run("r1"), make_events("r1", 1, 1))

    assert await storage.append_events("r1", make_events("r1", 2, 3)) is None
    assert await storage.append_events("r1", make_events("r1", 4, 4)) is None

    assert await sequences(storage, "r1") == [1, 2, 3, 4]
    run = await storage.get_run("r1")
    assert run is not None and run.version == 1  # events alone do not touch the run


async def test_append_existing_sequence_conflicts_and_writes_nothing(
    storage: StorageBackend,
) -> None:
    original = make_events("r1", 1, 2)
    await storage.create_run(make_run("r1"), original)

    with pytest.raises(ConcurrencyError):
        await storage.append_events("r1", [make_event("r1", 2, tag="x"), make_event("r1", 3)])
    with pytest.raises(ConcurrencyError):
        await storage.append_events("r1", [make_event("r1", 1, tag="y")])

    assert await storage.get_events("r1") == original  # not even the free sequence 3


async def test_append_with_gap_is_rejected(storage: StorageBackend) -> None:
    await storage.create_run(make_run("r1"), make_events("r1", 1, 1))

    with pytest.raises(ConcurrencyError):
        await storage.append_events("r1", [make_event("r1", 3)])
    with pytest.raises(ConcurrencyError):  # the batch itself has a hole
        await storage.append_events("r1", [make_event("r1", 2), make_event("r1", 4)])

    assert await sequences(storage, "r1") == [1]


async def test_append_to_missing_run(storage: StorageBackend) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await storage.append_events("ghost", make_events("ghost", 1, 1))
    run = make_run("ghost")
    with pytest.raises(WorkflowNotFoundError):
        await storage.append_events("ghost", [], run=run, expected_version=1)
    assert await storage.get_events("ghost") == []
    assert await storage.get_run("ghost") is None


async def test_append_with_run_update_is_atomic(storage: StorageBackend) -> None:
    run = await storage.create_run(make_run("r1"), make_events("r1", 1, 1))

    running = run.model_copy(update={"status": RunStatus.RUNNING})
    new = await storage.append_events(
        "r1", make_events("r1", 2, 2), run=running, expected_version=1
    )
    assert new is not None and new.version == 2 and new.status == RunStatus.RUNNING
    assert await storage.get_run("r1") == new

    done = new.model_copy(update={"status": RunStatus.COMPLETED})
    with pytest.raises(ConcurrencyError):  # stale version: the free sequence 3 is not written
        await storage.append_events("r1", make_events("r1", 3, 3), run=done, expected_version=1)
    with pytest.raises(ConcurrencyError):  # right version, taken sequence: run not written
        await storage.append_events("r1", make_events("r1", 2, 2), run=done, expected_version=2)

    assert await sequences(storage, "r1") == [1, 2]
    assert await storage.get_run("r1") == new

    # a run-only update through append_events is allowed too
    newer = await storage.append_events("r1", [], run=done, expected_version=2)
    assert newer is not None and newer.version == 3 and newer.status == RunStatus.COMPLETED
    assert await sequences(storage, "r1") == [1, 2]


async def test_update_run_compare_and_set(storage: StorageBackend) -> None:
    run = await storage.create_run(make_run("r1"), [])

    v2 = await storage.update_run(
        run.model_copy(update={"status": RunStatus.RUNNING}), expected_version=1
    )
    assert v2.version == 2 and v2.status == RunStatus.RUNNING

    with pytest.raises(ConcurrencyError):
        await storage.update_run(
            run.model_copy(update={"status": RunStatus.FAILED}), expected_version=1
        )
    assert await storage.get_run("r1") == v2

    v3 = await storage.update_run(
        v2.model_copy(update={"status": RunStatus.COMPLETED}), expected_version=2
    )
    assert v3.version == 3 and await storage.get_run("r1") == v3

    with pytest.raises(WorkflowNotFoundError):
        await storage.update_run(make_run("ghost"), expected_version=1)


async def test_get_events_after_sequence(storage: StorageBackend) -> None:
    await storage.create_run(make_run("r1"), make_events("r1", 1, 5))

    assert await sequences(storage, "r1") == [1, 2, 3, 4, 5]
    assert [e.sequence for e in await storage.get_events("r1", after_sequence=3)] == [4, 5]
    assert await storage.get_events("r1", after_sequence=5) == []
    assert await storage.get_events("unknown") == []


# --- listings ----------------------------------------------------------------------------------
async def test_list_runs_filters(storage: StorageBackend) -> None:
    specs = [
        ("a", "alpha", RunStatus.PENDING, None),
        ("b", "alpha", RunStatus.RUNNING, "p"),
        ("c", "beta", RunStatus.RUNNING, "p"),
        ("d", "beta", RunStatus.COMPLETED, None),
    ]
    for i, (run_id, name, status, parent) in enumerate(specs):
        await storage.create_run(
            make_run(
                run_id,
                created=T0 + timedelta(seconds=i),
                workflow_name=name,
                status=status,
                parent_run_id=parent,
            ),
            [],
        )

    async def ids(**filters: Any) -> list[str]:
        return [r.run_id for r in (await storage.list_runs_page(**filters)).items]

    assert await ids() == ["d", "c", "b", "a"]
    assert await ids(status=RunStatus.RUNNING) == ["c", "b"]
    assert await ids(workflow_name="alpha") == ["b", "a"]
    assert await ids(parent_run_id="p") == ["c", "b"]
    assert await ids(status=RunStatus.RUNNING, workflow_name="beta") == ["c"]
    assert await ids(status=RunStatus.COMPLETED, workflow_name="alpha") == []


async def test_list_runs_paginates_newest_first(storage: StorageBackend) -> None:
    # ties on created_at (ordered by run_id) and sub-second times, inserted out of order
    offsets = {
        "r00": timedelta(seconds=5),
        "r01": timedelta(seconds=1),
        "r02": timedelta(seconds=3),
        "r03": timedelta(seconds=3),
        "r04": timedelta(seconds=3, microseconds=1),
        "r05": timedelta(seconds=9),
        "r06": timedelta(seconds=3),
        "r07": timedelta(seconds=2, microseconds=999_999),
        "r08": timedelta(0),
        "r09": timedelta(seconds=7),
        "r10": timedelta(seconds=5),
    }
    for run_id, offset in offsets.items():
        status = RunStatus.RUNNING if int(run_id[1:]) % 2 else RunStatus.PENDING
        await storage.create_run(make_run(run_id, created=T0 + offset, status=status), [])
    expected = sorted(offsets, key=lambda r: (offsets[r], r), reverse=True)

    async def walk(limit: int, **filters: Any) -> list[list[str]]:
        pages: list[list[str]] = []
        cursor = None
        while True:
            page = await storage.list_runs_page(limit=limit, cursor=cursor, **filters)
            pages.append([r.run_id for r in page.items])
            cursor = page.next_cursor
            if cursor is None:
                return pages
            assert len(pages) < 20, "pagination does not terminate"

    pages = await walk(3)
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    assert [r for p in pages for r in p] == expected

    assert await walk(11) == [expected]  # exactly one full page: no empty trailing page
    assert await walk(1) == [[r] for r in expected]

    running = [r for r in expected if int(r[1:]) % 2]
    pages = await walk(2, status=RunStatus.RUNNING)
    assert [r for p in pages for r in p] == running and len(pages) == 3


DUE_CASES = [
    # (status, wake_at, lease_expires_at, due)
    (RunStatus.PENDING, None, None, True),
    (RunStatus.PENDING, None, "past", True),
    (RunStatus.PENDING, None, "future", False),
    (RunStatus.SUSPENDED, "past", None, True),
    (RunStatus.SUSPENDED, "now", None, True),
    (RunStatus.SUSPENDED, "future", None, False),
    (RunStatus.SUSPENDED, None, None, False),
    (RunStatus.RUNNING, None, None, True),
    (RunStatus.RUNNING, None, "now", True),
    (RunStatus.RUNNING, None, "past", True),
    (RunStatus.RUNNING, None, "future", False),
    (RunStatus.INTERRUPTED, None, None, True),
    (RunStatus.INTERRUPTED, None, "future", False),
    (RunStatus.COMPLETED, "past", None, False),
    (RunStatus.FAILED, None, None, False),
    (RunStatus.CANCELLED, None, "past", False),
    (RunStatus.CONTINUED_AS_NEW, None, None, False),
]
NOW = T0 + timedelta(hours=1)
WHEN = {
    None: None,
    "past": NOW - timedelta(minutes=1),
    "now": NOW,
    "future": NOW + timedelta(minutes=1),
}


@pytest.mark.parametrize(("status", "wake", "lease", "due"), DUE_CASES)
async def test_list_due_runs_case(
    storage: StorageBackend, status: RunStatus, wake: str | None, lease: str | None, due: bool
) -> None:
    await storage.create_run(
        make_run("r1", status=status, wake_at=WHEN[wake], lease_expires_at=WHEN[lease]), []
    )
    assert [r.run_id for r in await storage.list_due_runs(NOW)] == (["r1"] if due else [])


async def test_list_due_runs_order_and_limit(storage: StorageBackend) -> None:
    # ordered by wake_at, else created_at: oldest obligation first
    await storage.create_run(make_run("late", created=T0 + timedelta(minutes=30)), [])
    await storage.create_run(
        make_run(
            "woken",
            created=T0,
            status=RunStatus.SUSPENDED,
            wake_at=T0 + timedelta(minutes=10),
        ),
        [],
    )
    await storage.create_run(make_run("early", created=T0 + timedelta(minutes=5)), [])
    await storage.create_run(make_run("done", created=T0, status=RunStatus.COMPLETED), [])

    assert [r.run_id for r in await storage.list_due_runs(NOW)] == ["early", "woken", "late"]
    assert [r.run_id for r in await storage.list_due_runs(NOW, limit=2)] == ["early", "woken"]


async def test_list_due_runs_pages_after_a_due_key(storage: StorageBackend) -> None:
    """``after`` continues where a page ended, in the same order, so a worker can page past due
    runs it cannot drive: every due run is reached however many stand before it."""
    for i in range(7):
        await storage.create_run(make_run(f"p{i}", created=T0 + timedelta(seconds=i % 3)), [])
    await storage.create_run(
        make_run(
            "sleeper", created=T0, status=RunStatus.SUSPENDED, wake_at=T0 + timedelta(seconds=1)
        ),
        [],
    )
    everything = [r.run_id for r in await storage.list_due_runs(NOW)]
    assert len(everything) == 8
    paged: list[str] = []
    after = None
    while page := await storage.list_due_runs(NOW, limit=3, after=after):
        paged += [r.run_id for r in page]
        after = due_key(page[-1])
    assert paged == everything


async def test_updates_are_visible_to_filters_and_due_listing(storage: StorageBackend) -> None:
    """Listings must see the latest record, however it was written (update or append).

    Each step moves the run across a filter or the due boundary in both directions, so a
    backend that indexes stale values (or re-checks only one way) fails somewhere.
    """
    created = make_run("r1", status=RunStatus.RUNNING, lease_expires_at=NOW + timedelta(1))
    run = await storage.create_run(created, make_events("r1", 1, 1))

    async def state() -> tuple[list[str], list[str]]:
        due = [r.run_id for r in await storage.list_due_runs(NOW)]
        current = await storage.get_run("r1")
        assert current is not None
        listed = [r.run_id for r in (await storage.list_runs_page(status=current.status)).items]
        return due, listed

    assert await state() == ([], ["r1"])
    expired = run.model_copy(update={"lease_expires_at": NOW - timedelta(1)})
    run = await storage.update_run(expired, expected_version=1)
    assert await state() == (["r1"], ["r1"])
    renewed = run.model_copy(update={"lease_expires_at": NOW + timedelta(1)})
    run = await storage.update_run(renewed, expected_version=2)
    assert await state() == ([], ["r1"])

    sleeping = run.model_copy(
        update={
            "status": RunStatus.SUSPENDED,
            "lease_expires_at": None,
            "wake_at": NOW + timedelta(minutes=5),
        }
    )
    run = await storage.update_run(sleeping, expected_version=3)
    assert await state() == ([], ["r1"])
    assert (await storage.list_runs_page(status=RunStatus.RUNNING)).items == []

    woken = run.model_copy(update={"wake_at": NOW - timedelta(minutes=5)})
    appended = await storage.append_events(
        "r1", make_events("r1", 2, 2), run=woken, expected_version=4
    )
    assert appended is not None
    run = appended
    assert await state() == (["r1"], ["r1"])
    snoozed = run.model_copy(update={"wake_at": NOW + timedelta(minutes=5)})
    appended = await storage.append_events(
        "r1", make_events("r1", 3, 3), run=snoozed, expected_version=5
    )
    assert appended is not None
    run = appended
    assert await state() == ([], ["r1"])

    moved = run.model_copy(update={"status": RunStatus.COMPLETED, "parent_run_id": "p"})
    await storage.update_run(moved, expected_version=6)
    assert await state() == ([], ["r1"])
    assert [r.run_id for r in (await storage.list_runs_page(parent_run_id="p")).items] == ["r1"]
    assert (await storage.list_runs_page(status=RunStatus.RUNNING)).items == []


async def test_get_workflow_chain_from_any_member(storage: StorageBackend) -> None:
    await storage.create_run(make_run("a", continued_to_run_id="b"), [])
    await storage.create_run(
        make_run(
            "b", created=T0 + timedelta(1), continued_from_run_id="a", continued_to_run_id="c"
        ),
        [],
    )
    await storage.create_run(
        make_run("c", created=T0 + timedelta(2), continued_from_run_id="b"), []
    )
    await storage.create_run(make_run("lonely"), [])

    for member in ("a", "b", "c"):
        assert [r.run_id for r in await storage.get_workflow_chain(member)] == ["a", "b", "c"]
    assert [r.run_id for r in await storage.get_workflow_chain("lonely")] == ["lonely"]
    assert await storage.get_workflow_chain("ghost") == []  # pyworkflow-engine's answer


# --- hooks -------------------------------------------------------------------------------------
def make_hook(token: str, run_id: str, hook_id: str, name: str, op: int, seconds: int) -> Hook:
    return Hook(
        token_hash=token,
        run_id=run_id,
        hook_id=hook_id,
        op=op,
        name=name,
        created_at=T0 + timedelta(seconds=seconds),
    )


async def test_hooks(storage: StorageBackend) -> None:
    h1 = make_hook("t1", "r1", "h1", "approve", 1, 0)
    h2 = make_hook("t2", "r1", "h2", "approve", 2, 1)
    h3 = make_hook("t3", "r2", "h3", "other", 1, 2)
    for hook in (h1, h2, h3):
        await storage.create_hook(hook)

    got = await storage.get_hook_by_hash("t1")
    assert got is not None and got.hook_id == "h1" and got.version == 1
    assert await storage.get_hook_by_hash("nope") is None

    async def found(run_id: str, **by: str) -> str | None:
        hook = await storage.find_hook(run_id, **by)
        return hook.hook_id if hook else None

    assert await found("r1", name="approve") == "h2"  # newest of that name
    assert await found("r1", hook_id="h1") == "h1"
    assert await found("r1", name="other") is None
    assert await found("r9") is None

    received = got.model_copy(update={"status": HookStatus.RECEIVED, "received_at": T0})
    v2 = await storage.update_hook(received, expected_version=1)
    assert v2.version == 2
    with pytest.raises(ConcurrencyError):
        await storage.update_hook(
            got.model_copy(update={"status": HookStatus.EXPIRED}), expected_version=1
        )
    assert await storage.get_hook_by_hash("t1") == v2
    with pytest.raises(ConcurrencyError):
        await storage.update_hook(make_hook("t9", "r1", "h9", "x", 9, 0), expected_version=1)

    async def listed(**filters: Any) -> list[str]:
        return [h.hook_id for h in await storage.list_hooks(**filters)]

    assert await listed() == ["h3", "h2", "h1"]
    assert await listed(status=HookStatus.PENDING) == ["h3", "h2"]
    assert await listed(status=HookStatus.RECEIVED) == ["h1"]
    assert await listed(run_id="r1") == ["h2", "h1"]
    assert await listed(run_id="r1", status=HookStatus.PENDING) == ["h2"]
    assert await listed(limit=1) == ["h3"]

    await storage.create_hook(h1)  # same token hash: replaced, back at version 1
    again = await storage.get_hook_by_hash("t1")
    assert again is not None and again.status == HookStatus.PENDING and again.version == 1


# --- schedules ---------------------------------------------------------------------------------
def make_schedule(schedule_id: str, workflow: str, seconds: int, **fields: Any) -> Schedule:
    return Schedule(
        schedule_id=schedule_id,
        workflow_name=workflow,
        spec=ScheduleSpec(cron="*/5 * * * *"),
        created_at=T0 + timedelta(seconds=seconds),
        **fields,
    )


async def test_schedules(storage: StorageBackend) -> None:
    s1 = await storage.create_schedule(make_schedule("s1", "a", 0))
    await storage.create_schedule(make_schedule("s2", "b", 1))
    await storage.create_schedule(make_schedule("s3", "a", 2, status=ScheduleStatus.PAUSED))
    assert s1.version == 1 and await storage.get_schedule("s1") == s1
    assert await storage.get_schedule("nope") is None

    with pytest.raises(ConcurrencyError):
        await storage.create_schedule(make_schedule("s1", "other", 5))
    assert await storage.get_schedule("s1") == s1

    v2 = await storage.update_schedule(s1.model_copy(update={"total_runs": 5}), expected_version=1)
    assert v2.version == 2 and v2.total_runs == 5
    with pytest.raises(ConcurrencyError):
        await storage.update_schedule(s1.model_copy(update={"total_runs": 9}), expected_version=1)
    assert await storage.get_schedule("s1") == v2

    async def listed(**filters: Any) -> list[str]:
        return [s.schedule_id for s in await storage.list_schedules(**filters)]

    assert await listed() == ["s3", "s2", "s1"]
    assert await listed(workflow_name="a") == ["s3", "s1"]
    assert await listed(status="paused") == ["s3"]
    assert await listed(status=ScheduleStatus.ACTIVE) == ["s2", "s1"]
    assert await listed(limit=2) == ["s3", "s2"]

    assert await storage.delete_schedule("s2") is True
    assert await storage.delete_schedule("s2") is False
    assert await storage.get_schedule("s2") is None
    assert await listed() == ["s3", "s1"]
    with pytest.raises(ConcurrencyError):
        await storage.update_schedule(make_schedule("s2", "b", 1), expected_version=1)


# --- bookkeeping -------------------------------------------------------------------------------
async def test_round_trip_counters(storage: StorageBackend) -> None:
    """bench/ divides by these: exactly one per call, failed calls included."""

    async def delta(call: Any) -> tuple[int, int]:
        reads, writes = storage.reads, storage.writes
        try:
            await call
        except ConcurrencyError:
            pass
        return storage.reads - reads, storage.writes - writes

    run = make_run("r1", idempotency_key="k")
    assert await delta(storage.create_run(run, make_events("r1", 1, 1))) == (0, 1)
    assert await delta(storage.create_run(run, [])) == (0, 1)  # fails, still a round trip
    assert await delta(storage.append_events("r1", make_events("r1", 2, 3))) == (0, 1)
    assert await delta(storage.update_run(run, expected_version=1)) == (0, 1)
    assert await delta(storage.get_run("r1")) == (1, 0)
    assert await delta(storage.get_run_by_idempotency_key("k")) == (1, 0)
    assert await delta(storage.get_events("r1")) == (1, 0)
    assert await delta(storage.list_runs_page()) == (1, 0)
    assert await delta(storage.list_due_runs(NOW)) == (1, 0)
    assert await delta(storage.create_hook(make_hook("t", "r1", "h", "n", 1, 0))) == (0, 1)
    assert await delta(storage.find_hook("r1", name="n")) == (1, 0)
    assert await delta(storage.list_hooks()) == (1, 0)
    assert await delta(storage.create_schedule(make_schedule("s", "a", 0))) == (0, 1)
    assert await delta(storage.list_schedules()) == (1, 0)


# --- persistence and cross-instance races ------------------------------------------------------
@pytest.mark.parametrize("kind", PERSISTENT_BACKENDS)
async def test_data_survives_reopen(kind: str, tmp_path: Path) -> None:
    first = make_backend(kind, tmp_path)
    run = await first.create_run(make_run("r1", idempotency_key="k1"), make_events("r1", 1, 2))
    await first.update_run(run.model_copy(update={"status": RunStatus.RUNNING}), expected_version=1)
    await first.create_hook(make_hook("t1", "r1", "h1", "approve", 1, 0))
    await first.create_schedule(make_schedule("s1", "wf", 0))
    await first.close()

    second = make_backend(kind, tmp_path)
    try:
        reopened = await second.get_run("r1")
        assert reopened is not None and reopened.version == 2
        assert reopened.status == RunStatus.RUNNING
        assert (await second.get_run_by_idempotency_key("k1")) == reopened
        assert await second.get_events("r1") == make_events("r1", 1, 2)
        assert (await second.find_hook("r1", name="approve")) is not None
        assert (await second.get_schedule("s1")) is not None
        # the history continues where it stopped; the old numbers stay taken
        with pytest.raises(ConcurrencyError):
            await second.append_events("r1", make_events("r1", 2, 2))
        await second.append_events("r1", make_events("r1", 3, 3))
        assert await sequences(second, "r1") == [1, 2, 3]
    finally:
        await second.close()


async def test_sqlite_connects_lazily_and_records_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "pw.db"
    backend = SQLiteStorageBackend(path)
    assert not path.parent.exists()  # constructing touches nothing
    await backend.get_run("x")
    await backend.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    backend = SQLiteStorageBackend(path)
    with pytest.raises(ConfigurationError, match="newer"):
        await backend.get_run("x")
    await backend.close()


async def test_sqlite_orders_by_instant_not_by_offset(tmp_path: Path) -> None:
    """Stored times are normalised to UTC, so a +02:00 timestamp sorts by its real instant."""
    backend = SQLiteStorageBackend(tmp_path / "pw.db")
    plus2 = timezone(timedelta(hours=2))
    try:
        await backend.create_run(
            make_run("older", created=datetime(2025, 1, 1, 10, tzinfo=plus2)), []
        )
        await backend.create_run(make_run("newer", created=datetime(2025, 1, 1, 9, tzinfo=UTC)), [])
        page = await backend.list_runs_page(limit=1)
        assert [r.run_id for r in page.items] == ["newer"]
        rest = await backend.list_runs_page(limit=1, cursor=page.next_cursor)
        assert [r.run_id for r in rest.items] == ["older"] and rest.next_cursor is None
    finally:
        await backend.close()


@pytest.mark.parametrize("kind", PERSISTENT_BACKENDS)
async def test_two_instances_racing_for_a_sequence_one_wins(kind: str, tmp_path: Path) -> None:
    """Two backends on the same store (separate connections/locks, in threads so they really
    overlap) append the same next sequence, round after round: exactly one wins each time."""
    setup = make_backend(kind, tmp_path)
    await setup.create_run(make_run("race"), make_events("race", 1, 1))
    await setup.close()

    rounds = 60
    barrier = threading.Barrier(2, timeout=30)
    winners: dict[int, list[str]] = {seq: [] for seq in range(2, rounds + 2)}
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        backend = make_backend(kind, tmp_path)

        async def main() -> None:
            for seq in range(2, rounds + 2):
                barrier.wait()
                try:
                    await backend.append_events("race", [make_event("race", seq, tag=name)])
                    winners[seq].append(name)
                except ConcurrencyError:
                    pass
            await backend.close()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced below; a dead thread must not hang the other
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("A", "B")]

    def run_both() -> None:
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    await asyncio.to_thread(run_both)

    assert errors == []
    assert all(len(names) == 1 for names in winners.values()), winners
    check = make_backend(kind, tmp_path)
    try:
        events = await check.get_events("race")
    finally:
        await check.close()
    assert [e.sequence for e in events] == list(range(1, rounds + 2))
    assert [e.data.get("tag") for e in events[1:]] == [winners[s][0] for s in range(2, rounds + 2)]


# --- continue-as-new ---------------------------------------------------------------------------
TRANSACTIONAL = (SQLiteStorageBackend, ServerSQLStorageBackend)


def transactional(storage: StorageBackend) -> bool:
    from pyworkflow.storage.dynamodb import DynamoDBStorageBackend

    return isinstance(storage, TRANSACTIONAL + (DynamoDBStorageBackend,))


async def test_continue_run_ends_one_run_and_creates_the_next(storage: StorageBackend) -> None:
    old = await storage.create_run(make_run("c-old"), make_events("c-old", 1, 2))
    done = old.model_copy(
        update={"status": RunStatus.CONTINUED_AS_NEW, "continued_to_run_id": "c-new"}
    )
    stored = await storage.continue_run(
        done,
        make_events("c-old", 3, 3),
        expected_version=old.version,
        new_run=make_run("c-new", continued_from_run_id="c-old"),
        new_events=make_events("c-new", 1, 1),
    )
    assert stored.version == old.version + 1
    assert (await storage.get_run("c-old")).status == RunStatus.CONTINUED_AS_NEW
    assert await sequences(storage, "c-old") == [1, 2, 3]
    assert (await storage.get_run("c-new")).version == 1
    assert await sequences(storage, "c-new") == [1]
    assert [r.run_id for r in await storage.get_workflow_chain("c-new")] == ["c-old", "c-new"]


async def test_continue_run_with_a_stale_version_leaves_the_old_run_alone(
    storage: StorageBackend,
) -> None:
    old = await storage.create_run(make_run("s-old"), make_events("s-old", 1, 1))
    with pytest.raises(ConcurrencyError):
        await storage.continue_run(
            old.model_copy(update={"status": RunStatus.CONTINUED_AS_NEW}),
            make_events("s-old", 2, 2),
            expected_version=old.version + 5,
            new_run=make_run("s-new"),
            new_events=make_events("s-new", 1, 1),
        )
    assert (await storage.get_run("s-old")).status == RunStatus.PENDING
    assert await sequences(storage, "s-old") == [1]
    if transactional(storage):  # all or nothing: the next run was not created either
        assert await storage.get_run("s-new") is None

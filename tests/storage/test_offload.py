"""Large payloads outside the storage item (``pyworkflow/storage/offload.py``).

1. The whole storage contract (``test_contract.py``'s tests on the ``storage`` fixture) runs
   again through ``OffloadingStorage`` with a 1-byte threshold, so every payload field of every
   record is a pointer underneath: the wrapper is transparent or these fail.
2. What the wrapper promises: pointers in the inner store, blobs before items, no second write
   of a known blob, integrity checks, the limits that remain and how they fail.
3. The embedded runtime end to end on SQLite + a ``FileBlobStore``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import Hook, HookStatus, RunStatus, Schedule, ScheduleSpec
from pyworkflow.runtime.payloads import PayloadGuard, fail_oversized, fit_final
from pyworkflow.runtime.storage_factory import offload_from_env
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.blobs import (
    BlobIntegrityError,
    BlobNotFoundError,
    FileBlobStore,
    MemoryBlobStore,
)
from pyworkflow.storage.dynamodb import DynamoDBStorageBackend
from pyworkflow.storage.memory import InMemoryStorageBackend
from pyworkflow.storage.offload import (
    OffloadingStorage,
    PayloadTooLargeError,
    is_pointer,
)
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.storage.sql_servers import SQL_SERVERS

# The contract, re-collected here with this module's ``storage`` fixture (below).
from .conftest import make_backend
from .test_contract import (  # noqa: F401 - collected by pytest
    T0,
    make_event,
    make_run,
    test_append_existing_sequence_conflicts_and_writes_nothing,
    test_append_next_sequences,
    test_append_to_missing_run,
    test_append_with_gap_is_rejected,
    test_append_with_run_update_is_atomic,
    test_continue_run_ends_one_run_and_creates_the_next,
    test_continue_run_with_a_stale_version_leaves_the_old_run_alone,
    test_create_run_duplicate_id_writes_nothing,
    test_create_run_duplicate_idempotency_key_writes_nothing,
    test_create_run_get_run_and_idempotency_lookup,
    test_create_run_history_must_start_at_one,
    test_get_events_after_sequence,
    test_get_workflow_chain_from_any_member,
    test_hooks,
    test_list_due_runs_case,
    test_list_due_runs_order_and_limit,
    test_list_runs_filters,
    test_list_runs_paginates_newest_first,
    test_schedules,
    test_update_run_compare_and_set,
    test_updates_are_visible_to_filters_and_due_listing,
)

KB = 1024


@pytest.fixture(params=["memory", "sqlite", "dynamodb", *SQL_SERVERS])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageBackend]:
    """Every backend, wrapped so that every non-empty payload goes to a FileBlobStore."""
    inner = make_backend(request.param, tmp_path)
    if isinstance(inner, DynamoDBStorageBackend):
        await inner.ensure_table()
    wrapped = OffloadingStorage(inner, FileBlobStore(tmp_path / "blobs"), threshold_bytes=1)
    yield wrapped
    if isinstance(inner, DynamoDBStorageBackend):
        await inner.delete_table()
    await wrapped.close()


def big(n: int, char: str = "x") -> str:
    return char * n


def step_event(run_id: str, seq: int, result: Any, *, op: int = 1) -> Event:
    return Event(
        event_id=f"e{seq}",
        run_id=run_id,
        type=EventType.STEP_COMPLETED,
        timestamp=T0,
        sequence=seq,
        data={
            "op": op,
            "name": "s",
            "step_name": "s",
            "result": result,
            "attempt": 1,
            "duration_ms": 1.0,
        },
    )


def started(run_id: str, args: list[Any]) -> Event:
    return Event(
        event_id="e1",
        run_id=run_id,
        type=EventType.WORKFLOW_STARTED,
        timestamp=T0,
        sequence=1,
        data={"workflow_name": "wf", "args": args, "kwargs": {}},
    )


@pytest.fixture
def inner() -> InMemoryStorageBackend:
    return InMemoryStorageBackend()


@pytest.fixture
def blobs() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def store(inner: InMemoryStorageBackend, blobs: MemoryBlobStore) -> OffloadingStorage:
    return OffloadingStorage(inner, blobs, threshold_bytes=10 * KB, max_payload_bytes=1000 * KB)


# --- what the inner store holds -----------------------------------------------------------------
async def test_small_payloads_stay_inline(
    store: OffloadingStorage, inner: StorageBackend, blobs: MemoryBlobStore
) -> None:
    run = make_run("r", input_args='["small"]')
    await store.create_run(run, [started("r", ["small"])])
    await store.append_events("r", [step_event("r", 2, "ok")])
    assert blobs.requests == {}
    assert (await inner.get_run("r")).input_args == '["small"]'
    assert [e.data.get("result") for e in await inner.read_events("r")] == [None, "ok"]


async def test_a_large_step_result_is_a_pointer_underneath(
    store: OffloadingStorage, inner: StorageBackend, blobs: MemoryBlobStore
) -> None:
    await store.create_run(make_run("r"), [started("r", [])])
    result = {"rows": [big(100) for _ in range(200)]}  # ~20 KB
    await store.append_events("r", [step_event("r", 2, result)])

    raw = (await inner.read_events("r"))[1]
    assert is_pointer(raw.data)
    key, digest = raw.data["$blob"], raw.data["sha256"]
    assert key == f"runs/r/events/0000000002-{digest}.json"
    assert hashlib.sha256(blobs.blobs[key]).hexdigest() == digest
    assert raw.data["size"] == len(blobs.blobs[key])

    full = (await store.get_events("r"))[1]
    assert full.data["result"] == result and full.type == EventType.STEP_COMPLETED
    # a fresh process (no cache) reads it from the blob store, once
    fresh = OffloadingStorage(inner, blobs, threshold_bytes=10 * KB)
    gets = blobs.requests["memory.Get"]
    assert (await fresh.get_events("r"))[1].data == full.data
    assert (await fresh.get_events("r"))[1].data == full.data
    assert blobs.requests["memory.Get"] == gets + 1


async def test_run_input_is_offloaded_once_across_record_updates(
    store: OffloadingStorage, inner: StorageBackend, blobs: MemoryBlobStore
) -> None:
    args = json.dumps([big(30 * KB)])
    created = await store.create_run(make_run("r", input_args=args), [started("r", [])])
    assert created.input_args == args
    raw = await inner.get_run("r")
    assert raw.input_args.startswith('{"$blob":"runs/r/run/input_args-')
    assert blobs.requests["memory.Put"] == 1
    run = await store.get_run("r")
    assert run.input_args == args
    for i in range(3):  # lease renewals, status changes: the same input each time
        run = await store.update_run(
            run.model_copy(update={"status": RunStatus.RUNNING, "recovery_attempts": i}),
            expected_version=run.version,
        )
        assert run.input_args == args
    assert blobs.requests["memory.Put"] == 1
    assert (await store.list_runs_page()).items[0].input_args == args
    assert (await store.get_run("r")).input_args == args


async def test_the_largest_fields_go_until_the_record_fits(
    store: OffloadingStorage, inner: StorageBackend
) -> None:
    # 6 + 6 KB: neither alone is over 10 KB, both together are: only the larger one moves
    run = make_run(
        "r", input_args=json.dumps([big(6 * KB)]), input_kwargs=json.dumps({"a": big(6 * KB + 100)})
    )
    await store.create_run(run, [started("r", [])])
    raw = await inner.get_run("r")
    assert raw.input_args == run.input_args
    assert raw.input_kwargs.startswith('{"$blob":')


async def test_one_write_carries_at_most_the_batch_budget_inline(
    inner: StorageBackend, blobs: MemoryBlobStore
) -> None:
    store = OffloadingStorage(inner, blobs, threshold_bytes=10 * KB, batch_inline_bytes=20 * KB)
    await store.create_run(make_run("r"), [started("r", [])])
    events = [step_event("r", 2 + i, big(8 * KB), op=i) for i in range(5)]  # 40 KB in all
    await store.append_events("r", events)
    raw = await inner.read_events("r", after_sequence=1)
    assert sum(is_pointer(e.data) for e in raw) == 3  # 2 x 8 KB stay: under 20 KB
    assert [e.data for e in await store.get_events("r", after_sequence=1)] == [
        e.data for e in events
    ]


async def test_hook_payloads_and_schedule_arguments(
    store: OffloadingStorage, inner: StorageBackend
) -> None:
    hook = Hook(
        token_hash="t", run_id="r", hook_id="h1", op=1, name="approval", created_at=T0, version=0
    )
    await store.create_hook(hook)
    stored = await store.get_hook_by_hash("t")
    payload = {"doc": big(50 * KB)}
    updated = await store.update_hook(
        stored.model_copy(update={"status": HookStatus.RECEIVED, "payload": payload}),
        expected_version=stored.version,
    )
    assert updated.payload == payload
    assert is_pointer((await inner.get_hook_by_hash("t")).payload)
    assert (await store.get_hook_by_hash("t")).payload == payload
    assert (await store.find_hook("r", name="approval")).payload == payload
    assert [h.payload for h in await store.list_hooks(run_id="r")] == [payload]

    schedule = Schedule(
        schedule_id="s1",
        workflow_name="wf",
        spec=ScheduleSpec(cron="* * * * *"),
        args=json.dumps([big(20 * KB)]),
        created_at=T0,
    )
    made = await store.create_schedule(schedule)
    assert made.args == schedule.args
    assert (await inner.get_schedule("s1")).args.startswith('{"$blob":"schedules/s1/args-')
    assert (await store.get_schedule("s1")).args == schedule.args
    assert [s.args for s in await store.list_schedules()] == [schedule.args]


async def test_a_value_that_looks_like_a_pointer_reads_back_as_itself(
    store: OffloadingStorage, inner: StorageBackend
) -> None:
    fake = {"$blob": "runs/other/secret.json", "sha256": "0" * 64, "size": 3}
    hook = Hook(
        token_hash="t", run_id="r", hook_id="h1", op=1, name="n", created_at=T0, payload=fake
    )
    await store.create_hook(hook)
    assert (await store.get_hook_by_hash("t")).payload == fake
    assert (await inner.get_hook_by_hash("t")).payload != fake  # stored as a blob of its own
    text = json.dumps(fake, separators=(",", ":"))
    await store.create_run(make_run("r", result=text), [started("r", [])])
    assert (await store.get_run("r")).result == text


async def test_odd_run_ids_make_safe_keys(tmp_path: Path) -> None:
    store = OffloadingStorage(
        InMemoryStorageBackend(), FileBlobStore(tmp_path / "b"), threshold_bytes=1
    )
    await store.create_run(make_run("../../etc/x y"), [started("../../etc/x y", ["a"])])
    assert (await store.get_events("../../etc/x y"))[0].data["args"] == ["a"]
    files = [p for p in (tmp_path / "b").rglob("*") if p.is_file()]
    assert files and all(tmp_path / "b" in p.parents and ".." not in p.parts for p in files)


# --- failures ------------------------------------------------------------------------------------
class FailingPuts(MemoryBlobStore):
    async def put(self, key: str, data: bytes) -> None:
        raise OSError("S3 is down")


async def test_the_blob_is_written_before_the_item() -> None:
    inner = InMemoryStorageBackend()
    store = OffloadingStorage(inner, FailingPuts(), threshold_bytes=10 * KB)
    with pytest.raises(OSError, match="S3 is down"):
        await store.create_run(
            make_run("r", input_args=json.dumps([big(20 * KB)])), [started("r", [])]
        )
    assert await inner.get_run("r") is None  # never an item pointing to nothing


async def test_a_tampered_or_missing_blob_is_refused(
    store: OffloadingStorage, inner: StorageBackend, blobs: MemoryBlobStore
) -> None:
    await store.create_run(make_run("r"), [started("r", [])])
    await store.append_events("r", [step_event("r", 2, big(20 * KB))])
    key = (await inner.read_events("r"))[1].data["$blob"]
    fresh = OffloadingStorage(inner, blobs)
    blobs.blobs[key] = blobs.blobs[key].replace(b"x", b"y", 1)
    with pytest.raises(BlobIntegrityError, match="does not match"):
        await fresh.get_events("r")
    del blobs.blobs[key]
    with pytest.raises(BlobNotFoundError, match=key):
        await fresh.get_events("r")


async def test_a_step_result_over_the_limit_fails_the_step_in_place(
    inner: StorageBackend, blobs: MemoryBlobStore
) -> None:
    """The store refuses what is over its limit and decides nothing; the executor's check
    (pyworkflow/runtime/payloads.py) records the step's failure in the result's place."""
    store = OffloadingStorage(inner, blobs, threshold_bytes=10 * KB, max_payload_bytes=50 * KB)
    await store.create_run(make_run("r"), [started("r", [])])
    event = step_event("r", 2, big(60 * KB)).model_copy(
        update={"data": {**step_event("r", 2, big(60 * KB)).data, "path": "1"}}
    )
    with pytest.raises(PayloadTooLargeError):
        await store.append_events("r", [event])
    assert len(await store.get_events("r")) == 1
    guard = PayloadGuard.for_storage(store)
    assert guard is not None
    fitted, _, error = fail_oversized([event], None, guard.oversized([event]))
    await store.append_events("r", fitted)
    assert isinstance(error, PayloadTooLargeError)
    assert "PYWORKFLOW_MAX_PAYLOAD_BYTES" in str(error) and "step 's'" in str(error)
    assert "51,200 bytes" in str(error)
    recorded = (await store.get_events("r"))[1]
    assert recorded.sequence == 2 and recorded.type == EventType.STEP_FAILED
    assert recorded.data == {
        "op": 1,
        "name": "s",
        "step_name": "s",
        "attempt": 1,
        "path": "1",
        "error": str(error),
        "error_type": "PayloadTooLargeError",
    }
    assert blobs.requests["memory.Put"] == 0


async def test_a_workflow_result_over_the_limit_fails_the_run(
    inner: StorageBackend, blobs: MemoryBlobStore
) -> None:
    store = OffloadingStorage(inner, blobs, threshold_bytes=10 * KB, max_payload_bytes=50 * KB)
    run = await store.create_run(make_run("r"), [started("r", [])])
    value = json.dumps(big(60 * KB))
    done = Event(
        event_id="e2",
        run_id="r",
        type=EventType.WORKFLOW_COMPLETED,
        timestamp=T0,
        sequence=2,
        data={"result": json.loads(value)},
    )
    completed = run.model_copy(update={"status": RunStatus.COMPLETED, "result": value})
    with pytest.raises(PayloadTooLargeError):
        await store.append_events("r", [done], run=completed, expected_version=run.version)
    events, record, successor = fit_final(PayloadGuard.for_storage(store), [done], completed, None)
    stored = await store.append_events("r", events, run=record, expected_version=run.version)
    assert successor is None
    assert stored.status == RunStatus.FAILED and stored.result is None
    assert "The result of workflow 'wf'" in stored.error or "result" in stored.error
    assert "PYWORKFLOW_MAX_PAYLOAD_BYTES" in stored.error
    assert [e.type for e in await store.get_events("r")] == [
        EventType.WORKFLOW_STARTED,
        EventType.WORKFLOW_FAILED,
    ]


async def test_arguments_over_the_limit_are_refused_to_the_caller(
    inner: StorageBackend, blobs: MemoryBlobStore
) -> None:
    store = OffloadingStorage(inner, blobs, threshold_bytes=10 * KB, max_payload_bytes=50 * KB)
    with pytest.raises(
        PayloadTooLargeError, match="arguments of workflow 'wf'.*PYWORKFLOW_MAX_PAYLOAD_BYTES"
    ):
        await store.create_run(
            make_run("r", input_args=json.dumps([big(60 * KB)])), [started("r", [big(60 * KB)])]
        )
    assert await inner.get_run("r") is None


async def test_without_a_blob_store_dynamodbs_item_limit_is_named(inner: StorageBackend) -> None:
    store = OffloadingStorage(inner, None)
    await store.create_run(
        make_run("r", input_args=json.dumps([big(300 * KB)])), [started("r", [])]
    )  # under 400 KB: stored as it is
    assert (await inner.get_run("r")).input_args == json.dumps([big(300 * KB)])
    with pytest.raises(PayloadTooLargeError) as info:
        await store.create_run(
            make_run("r2", input_args=json.dumps([big(500 * KB)])), [started("r2", [])]
        )
    assert "DynamoDB's 400 KB item limit" in str(info.value)
    assert "PYWORKFLOW_BLOB_BUCKET" in str(info.value)


def test_offload_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "PYWORKFLOW_BLOB_BUCKET",
        "PYWORKFLOW_BLOB_DIR",
        "PYWORKFLOW_OFFLOAD_THRESHOLD_BYTES",
        "PYWORKFLOW_MAX_PAYLOAD_BYTES",
    ):
        monkeypatch.delenv(name, raising=False)
    plain = InMemoryStorageBackend()
    assert offload_from_env(plain) is plain
    limited = offload_from_env(plain, item_limit=True)
    assert isinstance(limited, OffloadingStorage) and limited.blobs is None
    monkeypatch.setenv("PYWORKFLOW_BLOB_DIR", str(tmp_path))
    monkeypatch.setenv("PYWORKFLOW_OFFLOAD_THRESHOLD_BYTES", "1000")
    monkeypatch.setenv("PYWORKFLOW_MAX_PAYLOAD_BYTES", "5000")
    wrapped = offload_from_env(plain)
    assert isinstance(wrapped, OffloadingStorage) and isinstance(wrapped.blobs, FileBlobStore)
    assert (wrapped.threshold, wrapped.max_payload) == (1000, 5000)
    assert offload_from_env(wrapped) is wrapped
    monkeypatch.setenv("PYWORKFLOW_MAX_PAYLOAD_BYTES", "lots")
    with pytest.raises(pyworkflow.ConfigurationError, match="PYWORKFLOW_MAX_PAYLOAD_BYTES"):
        offload_from_env(plain)


# --- the embedded runtime, end to end ------------------------------------------------------------
@pyworkflow.step
async def make_report(size: int) -> dict[str, Any]:
    return {"report": big(size, "r")}


@pyworkflow.workflow
async def large_report(document: str, size: int) -> int:
    report = await make_report(size)
    return len(document) + len(report["report"])


async def test_embedded_runtime_on_sqlite_with_a_blob_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYWORKFLOW_BLOB_DIR", str(tmp_path / "blobs"))
    monkeypatch.setenv("PYWORKFLOW_STORAGE", "sqlite")
    pyworkflow.reset_config()
    storage = pyworkflow.get_storage()
    assert isinstance(storage, OffloadingStorage)
    assert isinstance(storage.inner, SQLiteStorageBackend)

    run_id = await pyworkflow.start(large_report, big(300 * KB, "d"), 1024 * KB)
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.get_result() == 300 * KB + 1024 * KB
    raw = await storage.inner.read_events(run_id)
    assert [is_pointer(e.data) for e in raw] == [True, True, False]  # args, step result, end
    assert (await storage.get_events(run_id))[1].data["result"] == {"report": big(1024 * KB, "r")}


async def test_embedded_step_result_over_the_limit_fails_the_run_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYWORKFLOW_BLOB_DIR", str(tmp_path / "blobs"))
    monkeypatch.setenv("PYWORKFLOW_MAX_PAYLOAD_BYTES", str(100 * KB))
    pyworkflow.reset_config()
    with pytest.raises(PayloadTooLargeError):
        await pyworkflow.start(large_report, "small", 200 * KB)
    page = await pyworkflow.get_storage().list_runs_page(workflow_name="large_report")
    run = page.items[0]
    assert run.status == RunStatus.FAILED
    assert "The result of step 'make_report'" in run.error
    assert "over the limit of 102,400 bytes (PYWORKFLOW_MAX_PAYLOAD_BYTES)" in run.error
    events = await pyworkflow.get_storage().get_events(run.run_id)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events][-2:] == [EventType.STEP_FAILED, EventType.WORKFLOW_FAILED]


@pyworkflow.workflow
async def growing(payload: str, rounds: int) -> int:
    if rounds == 0:
        return len(payload)
    pyworkflow.continue_as_new(payload * 4, rounds - 1)


async def test_embedded_continued_arguments_over_the_limit_fail_the_run_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor's check, not the store: a run whose successor's arguments cannot be
    stored fails (its continue-as-new event recorded as the failure) and no successor exists."""
    monkeypatch.setenv("PYWORKFLOW_BLOB_DIR", str(tmp_path / "blobs"))
    monkeypatch.setenv("PYWORKFLOW_MAX_PAYLOAD_BYTES", str(100 * KB))
    pyworkflow.reset_config()
    run_id = await pyworkflow.start(growing, big(40 * KB, "g"), 1)
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.status == RunStatus.FAILED and run.continued_to_run_id is None
    assert "The arguments of the continued run" in run.error
    assert "(PYWORKFLOW_MAX_PAYLOAD_BYTES)" in run.error
    events = await pyworkflow.get_storage().get_events(run_id)
    assert [e.type for e in events] == [EventType.WORKFLOW_STARTED, EventType.WORKFLOW_FAILED]
    assert (await pyworkflow.get_storage().list_runs_page(workflow_name="growing")).items == [run]

"""DynamoDB-only promises, measured in AWS requests (``backend.requests``) against DynamoDB Local:
what a step, a history read and a listing cost, that nothing Scans, and the table's shape."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import RunStatus
from pyworkflow.exceptions import ConcurrencyError, ConfigurationError
from pyworkflow.storage.dynamodb import DynamoDBStorageBackend
from pyworkflow.storage.dynamodb_items import (
    RUN_ALL,
    RUN_DUE,
    RUN_STATUS,
    RUN_WORKFLOW,
    TAIL_MAX,
    run_key,
    shard,
    table_definition,
)

from .conftest import make_dynamodb
from .test_contract import T0, make_event, make_events, make_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def ddb(tmp_path: Path) -> AsyncIterator[DynamoDBStorageBackend]:
    backend = make_dynamodb(tmp_path, retention_days=7)
    await backend.ensure_table()
    backend.requests.clear()
    yield backend
    await backend.delete_table()
    await backend.close()


async def cost(backend: DynamoDBStorageBackend, call: Any) -> Counter[str]:
    """The AWS requests one awaited call sends, by operation."""
    before = Counter(backend.requests)
    try:
        await call
    except ConcurrencyError:
        pass
    return backend.requests - before


async def raw_item(backend: DynamoDBStorageBackend, key: dict[str, Any]) -> dict[str, Any]:
    client = await backend._db()
    resp = await client.get_item(TableName=backend.table_name, Key=key, ConsistentRead=True)
    return dict(resp.get("Item", {}))


async def test_a_step_is_one_put_item(ddb: DynamoDBStorageBackend) -> None:
    # a start is one PutItem too: event 1 rides in the run item
    assert await cost(ddb, ddb.create_run(make_run("r1"), make_events("r1", 1, 1))) == {
        "PutItem": 1
    }
    assert await cost(ddb, ddb.create_run(make_run("r0"), [])) == {"PutItem": 1}
    for seq in range(2, 6):
        assert await cost(ddb, ddb.append_events("r1", [make_event("r1", seq)])) == {"PutItem": 1}
    # a lost race is one request too, and nothing is written
    assert await cost(ddb, ddb.append_events("r1", [make_event("r1", 6)])) == {"PutItem": 1}
    assert await cost(ddb, ddb.append_events("r1", [make_event("r1", 6, tag="x")])) == {}


async def test_history_is_one_query(ddb: DynamoDBStorageBackend) -> None:
    await ddb.create_run(make_run("r1"), make_events("r1", 1, 50))
    got = await cost(ddb, ddb.get_events("r1"))
    assert got == {"Query": 1}
    assert [e.sequence for e in await ddb.get_events("r1", after_sequence=48)] == [49, 50]


async def test_another_process_appends_after_reading_the_history(tmp_path: Path) -> None:
    """A backend that has not seen the history proves the previous event exists first (one
    key-only GetItem), then appends; after one Query it needs nothing but the PutItem."""
    first = make_dynamodb(tmp_path)
    await first.create_run(make_run("r1"), make_events("r1", 1, 2))
    other = make_dynamodb(tmp_path, create_table=False)
    try:
        assert await cost(other, other.append_events("r1", [make_event("r1", 3)])) == {
            "GetItem": 1,
            "PutItem": 1,
        }
        with pytest.raises(ConcurrencyError, match="missing"):  # a gap, caught without a write
            await make_dynamodb(tmp_path, create_table=False).append_events(
                "r1", [make_event("r1", 9)]
            )
        await other.get_events("r1")
        await first.append_events("r1", [make_event("r1", 4)])
        cold = make_dynamodb(tmp_path, create_table=False)
        await cold.get_events("r1")
        assert await cost(cold, cold.append_events("r1", [make_event("r1", 5)])) == {"PutItem": 1}
        assert [e.sequence for e in await cold.get_events("r1")] == [1, 2, 3, 4, 5]
        await cold.close()
    finally:
        await first.delete_table()
        await first.close()
        await other.close()


async def test_run_update_with_events_is_one_transaction(ddb: DynamoDBStorageBackend) -> None:
    run = await ddb.create_run(make_run("r1"), make_events("r1", 1, 1))
    running = run.model_copy(update={"status": RunStatus.RUNNING})
    got = await cost(
        ddb, ddb.append_events("r1", make_events("r1", 2, 3), run=running, expected_version=1)
    )
    assert got == {"TransactWriteItems": 1}
    assert await cost(ddb, ddb.update_run(running, expected_version=2)) == {"UpdateItem": 1}
    assert [e.sequence for e in await ddb.get_events("r1")] == [1, 2, 3]  # e1 survived


async def test_event_one_lives_in_the_run_item_and_is_written_once(
    ddb: DynamoDBStorageBackend,
) -> None:
    run = await ddb.create_run(make_run("r1", input_args='["o-1", 42]'), make_events("r1", 1, 1))
    item = await raw_item(ddb, run_key("r1"))
    assert "e1" in item and not await raw_item(
        ddb, {"PK": {"S": "RUN#r1"}, "SK": {"S": "EVT#0000000001"}}
    )
    size = sum(len(k) + len(next(iter(v.values()))) for k, v in item.items())
    assert size < 1024, f"run item is {size} bytes: over one write unit"
    # a run created without events gets event 1 once; a second writer gets ConcurrencyError
    await ddb.create_run(make_run("r2"), [])
    await ddb.append_events("r2", make_events("r2", 1, 2))
    with pytest.raises(ConcurrencyError):
        await ddb.append_events("r2", [make_event("r2", 1, tag="again")])
    assert [e.event_id for e in await ddb.get_events("r2")] == ["r2-1-", "r2-2-"]
    # updates (UpdateItem) keep it; a history read after event 1 does not return it
    await ddb.update_run(run.model_copy(update={"status": RunStatus.RUNNING}), expected_version=1)
    assert [e.sequence for e in await ddb.get_events("r1")] == [1]
    assert await ddb.get_events("r1", after_sequence=1) == []


async def test_sweep_looks_past_runs_held_by_live_workers(ddb: DynamoDBStorageBackend) -> None:
    """GSI5 holds keys only, so leases are checked on the records: a page of runs whose leases
    are live must not hide a due run behind it."""
    for i in range(5):
        await ddb.create_run(
            make_run(
                f"held{i}",
                created=T0 + timedelta(seconds=i),
                status=RunStatus.RUNNING,
                lease_owner="w",
                lease_expires_at=T0 + timedelta(days=1),
            ),
            [],
        )
    await ddb.create_run(
        make_run(
            "asleep", created=T0, status=RunStatus.SUSPENDED, wake_at=T0 + timedelta(minutes=1)
        ),
        [],
    )
    now = T0 + timedelta(minutes=5)
    assert [r.run_id for r in await ddb.list_due_runs(now, limit=2)] == ["asleep"]


async def test_listings_never_scan(ddb: DynamoDBStorageBackend) -> None:
    for i in range(12):
        await ddb.create_run(
            make_run(
                f"r{i:02d}",
                created=T0 + timedelta(seconds=i),
                workflow_name="even" if i % 2 == 0 else "odd",
                status=RunStatus.RUNNING if i % 3 else RunStatus.PENDING,
                parent_run_id="p" if i < 4 else None,
            ),
            [],
        )
    ddb.requests.clear()
    costs = {
        "all": await cost(ddb, ddb.list_runs_page(limit=5)),
        "status": await cost(ddb, ddb.list_runs_page(status=RunStatus.RUNNING, limit=5)),
        "workflow": await cost(ddb, ddb.list_runs_page(workflow_name="odd", limit=5)),
        "parent": await cost(ddb, ddb.list_runs_page(parent_run_id="p")),
        "status+workflow": await cost(
            ddb, ddb.list_runs_page(status=RunStatus.RUNNING, workflow_name="odd", limit=3)
        ),
        "due": await cost(ddb, ddb.list_due_runs(T0 + timedelta(hours=1))),
        "hooks": await cost(ddb, ddb.list_hooks()),
        "schedules": await cost(ddb, ddb.list_schedules()),
    }
    assert "Scan" not in ddb.requests, costs
    # one parallel Query per shard of the key, one consistent BatchGetItem for the records
    assert costs["all"] == {"Query": RUN_ALL.shards, "BatchGetItem": 1}
    assert costs["status"] == {"Query": RUN_STATUS.shards, "BatchGetItem": 1}
    assert costs["workflow"] == {"Query": RUN_WORKFLOW.shards, "BatchGetItem": 1}
    assert costs["parent"] == {"Query": 1, "BatchGetItem": 1}
    assert costs["due"] == {"Query": RUN_DUE.shards, "BatchGetItem": 1}


async def test_pagination_across_shards_is_newest_first_without_duplicates(
    ddb: DynamoDBStorageBackend,
) -> None:
    ids = [f"run-{i:03d}" for i in range(30)]
    assert len({shard(r, RUN_ALL.shards) for r in ids}) >= 16  # really spread over the shards
    for i, run_id in enumerate(ids):
        # pairs share a created_at: ties are broken by run_id, across shards too
        await ddb.create_run(make_run(run_id, created=T0 + timedelta(seconds=i // 2)), [])
    expected = sorted(ids, key=lambda r: (int(r[4:]) // 2, r), reverse=True)

    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = await ddb.list_runs_page(limit=7, cursor=cursor)
        seen += [r.run_id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected and len(set(seen)) == len(ids)


async def test_finished_runs_and_their_last_events_carry_ttl(ddb: DynamoDBStorageBackend) -> None:
    run = await ddb.create_run(make_run("r1"), make_events("r1", 1, 1))
    assert "ttl" not in await raw_item(ddb, run_key("r1"))

    done_at = T0 + timedelta(hours=2)
    done = run.model_copy(update={"status": RunStatus.COMPLETED, "completed_at": done_at})
    await ddb.append_events("r1", make_events("r1", 2, 2), run=done, expected_version=1)

    expires = int((done_at + timedelta(days=7)).timestamp())
    item = await raw_item(ddb, run_key("r1"))
    assert item["ttl"] == {"N": str(expires)}
    assert "GSI5PK" not in item  # left the due index
    terminal_event = await raw_item(ddb, {"PK": {"S": "RUN#r1"}, "SK": {"S": "EVT#0000000002"}})
    assert terminal_event["ttl"] == {"N": str(expires)}
    assert "e1" in item  # event 1 lives (and expires) with the run item
    await ddb.create_run(make_run("r2"), make_events("r2", 1, 2))
    middle = await raw_item(ddb, {"PK": {"S": "RUN#r2"}, "SK": {"S": "EVT#0000000002"}})
    assert middle and "ttl" not in middle  # documented: events before the last keep none


async def test_table_definition_matches_template() -> None:
    """template.yaml declares the same table the backend creates (same indexes and keys)."""
    definition = table_definition("t")
    template = (REPO / "template.yaml").read_text()
    assert definition["BillingMode"] == "PAY_PER_REQUEST"
    for attribute in definition["AttributeDefinitions"]:
        assert re.search(rf"AttributeName: {attribute['AttributeName']}\b", template)
    for index in definition["GlobalSecondaryIndexes"]:
        assert f"IndexName: {index['IndexName']}" in template
        assert f"ProjectionType: {index['Projection']['ProjectionType']}" in template
    assert "AttributeName: ttl" in template and "PointInTimeRecoveryEnabled: true" in template


def test_table_name_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend takes its table as an argument; the settings (PYWORKFLOW_TABLE...) are
    turned into arguments by pyworkflow.runtime.storage_factory."""
    from pyworkflow.runtime.storage_factory import dynamodb_backend
    from pyworkflow.settings import get_settings

    monkeypatch.delenv("PYWORKFLOW_TABLE", raising=False)
    with pytest.raises(ConfigurationError, match="PYWORKFLOW_TABLE"):
        DynamoDBStorageBackend()
    with pytest.raises(ConfigurationError, match="PYWORKFLOW_TABLE"):
        dynamodb_backend(get_settings())
    monkeypatch.setenv("PYWORKFLOW_TABLE", "from-env")
    monkeypatch.setenv("PYWORKFLOW_DYNAMODB_ENDPOINT", "http://127.0.0.1:1")
    backend = dynamodb_backend(get_settings())
    assert backend.table_name == "from-env" and backend.endpoint_url == "http://127.0.0.1:1"


def _ending(run_id: str, sequence: int, result: object = 1) -> Event:
    return Event(
        event_id=f"end-{sequence}",
        run_id=run_id,
        type=EventType.WORKFLOW_COMPLETED,
        timestamp=T0,
        sequence=sequence,
        data={"result": result},
    )


async def test_an_ending_is_one_update_of_the_run_item_carrying_its_events(
    ddb: DynamoDBStorageBackend, tmp_path: Path
) -> None:
    """A run's ending (its last events and its final record) is one conditional UpdateItem:
    no PutItem per event, no transaction (which bills each item twice)."""
    run = await ddb.create_run(make_run("r1"), make_events("r1", 1, 1))
    done = run.model_copy(update={"status": RunStatus.COMPLETED, "completed_at": T0})
    ending = _ending("r1", 2)
    got = await cost(ddb, ddb.append_events("r1", [ending], run=done, expected_version=1))
    assert got == {"UpdateItem": 1}
    assert (await ddb.get_run("r1")).status == RunStatus.COMPLETED  # type: ignore[union-attr]
    # a moved version: refused, nothing written twice
    with pytest.raises(ConcurrencyError):
        await ddb.append_events("r1", [ending], run=done, expected_version=1)
    assert [e.event_id for e in await ddb.get_events("r1")] == ["r1-1-", "end-2"]
    assert [e.event_id for e in await ddb.read_events("r1", after_sequence=1)] == ["end-2"]
    assert await ddb.read_events("r1", after_sequence=2) == []
    # another process (no remembered head) reads the same history
    other = make_dynamodb(tmp_path)
    try:
        assert [e.event_id for e in await other.get_events("r1")] == ["r1-1-", "end-2"]
    finally:
        await other.close()


async def test_a_zombies_event_at_the_endings_sequence_is_not_history(
    ddb: DynamoDBStorageBackend, tmp_path: Path
) -> None:
    """A worker whose lease expired may append an event item at the sequence the owner ends
    the run with, racing it: the ending in the run item wins, whatever the zombie wrote at or
    after its sequences, so the history never forks."""
    run = await ddb.create_run(make_run("r1"), make_events("r1", 1, 2))
    zombie = make_dynamodb(tmp_path)
    try:
        await zombie.append_events("r1", make_events("r1", 3, 4))  # the zombie's, unseen
        done = run.model_copy(update={"status": RunStatus.COMPLETED, "completed_at": T0})
        await ddb.append_events("r1", [_ending("r1", 3)], run=done, expected_version=1)
        history = await zombie.get_events("r1")
    finally:
        await zombie.close()
    assert [e.sequence for e in history] == [1, 2, 3]
    assert history[-1].event_id == "end-3"


async def test_an_ending_too_large_for_the_run_item_is_written_as_event_items(
    ddb: DynamoDBStorageBackend,
) -> None:
    run = await ddb.create_run(make_run("r1"), make_events("r1", 1, 1))
    done = run.model_copy(update={"status": RunStatus.COMPLETED, "completed_at": T0})
    big = _ending("r1", 2, result="x" * (TAIL_MAX + 1))
    got = await cost(ddb, ddb.append_events("r1", [big], run=done, expected_version=1))
    assert got == {"PutItem": 1, "UpdateItem": 1}
    assert [e.event_id for e in await ddb.get_events("r1")] == ["r1-1-", "end-2"]


async def test_a_suspension_is_a_put_then_an_update_too(ddb: DynamoDBStorageBackend) -> None:
    """A wait's events, then the record; a worker dying in between is replayed into the same
    wait by the next drive (tests/faults covers the crash points)."""
    from pyworkflow.core.events import Event, EventType

    run = await ddb.create_run(make_run("r1"), make_events("r1", 1, 1))
    waiting = run.model_copy(
        update={"status": RunStatus.SUSPENDED, "wake_at": T0 + timedelta(days=1)}
    )
    sleep = Event(
        event_id="s",
        run_id="r1",
        type=EventType.SLEEP_STARTED,
        timestamp=T0,
        sequence=2,
        data={"op": 1, "wake_at": (T0 + timedelta(days=1)).isoformat()},
    )
    got = await cost(ddb, ddb.append_events("r1", [sleep], run=waiting, expected_version=1))
    assert got == {"PutItem": 1, "UpdateItem": 1}
    stored = await ddb.get_run("r1")
    assert stored is not None and stored.status == RunStatus.SUSPENDED
    assert "ttl" not in await raw_item(ddb, {"PK": {"S": "RUN#r1"}, "SK": {"S": "EVT#0000000002"}})

"""``dynamodb_migrate.rekey`` on DynamoDB Local: a table written with the keys of the code before
write-sharding (built here as commit bff4852's ``dynamodb_items`` built them) is not found by
the sharded listings; after a pass every listing finds everything, a second pass changes
nothing, a dry run writes nothing, a pass resumes from its token, and a live worker's write
between the scan and the rewrite is never overwritten."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pyworkflow.core.models import Hook, HookStatus, RunStatus, Schedule, WorkflowRun
from pyworkflow.storage import dynamodb_items as items
from pyworkflow.storage import dynamodb_migrate
from pyworkflow.storage.dynamodb import DynamoDBStorageBackend
from pyworkflow.storage.dynamodb_items import s

from .conftest import make_dynamodb
from .test_contract import T0, make_hook, make_run, make_schedule


def _old_shard(key: str) -> int:
    return zlib.crc32(key.encode()) % 4  # bff4852: SHARDS = 4


def old_run_item(run: WorkflowRun) -> items.Item:
    """bff4852's run_item: STATUS#<status>, WF#<name>, RUNS#<crc32 % 4>, DUE#<crc32 % 4>."""
    item = items.run_item(run, 30.0)
    item["GSI1PK"] = s(f"STATUS#{run.status.value}")
    item["GSI2PK"] = s(f"WF#{run.workflow_name}")
    item["GSI4PK"] = s(f"RUNS#{_old_shard(run.run_id)}")
    if "GSI5PK" in item:
        item["GSI5PK"] = s(f"DUE#{_old_shard(run.run_id)}")
    return item


def old_hook_item(hook: Hook) -> items.Item:
    item = items.hook_item(hook, 30.0)
    item["GSI1PK"] = s(f"HOOKSTATUS#{hook.status.value}")
    item["GSI4PK"] = s(f"HOOKS#{_old_shard(hook.token_hash)}")
    item["GSI6PK"] = s(f"HOOKRUN#{hook.run_id}")
    return item


def old_schedule_item(schedule: Schedule) -> items.Item:
    return {**items.schedule_item(schedule), "GSI1PK": s("SCHEDULES")}


RUNS = [
    make_run("r_pending", workflow_name="a"),
    make_run("r_running", workflow_name="a", status=RunStatus.RUNNING),
    make_run(
        "r_sleeping",
        workflow_name="b",
        status=RunStatus.SUSPENDED,
        wake_at=T0 + timedelta(hours=1),
        created=T0 + timedelta(seconds=1),
    ),
    make_run("r_done", workflow_name="a", status=RunStatus.COMPLETED, completed_at=T0),
    make_run("r_failed", workflow_name="b", status=RunStatus.FAILED, completed_at=T0),
    make_run("r_child", workflow_name="b", status=RunStatus.COMPLETED, parent_run_id="r_running"),
]
HOOKS = [
    make_hook("t1", "r_running", "h1", "approve", 1, 0),
    make_hook("t2", "r_sleeping", "h2", "approve", 1, 1).model_copy(
        update={"status": HookStatus.RECEIVED, "received_at": T0}
    ),
]
SCHEDULES = [make_schedule("s1", "a", 0), make_schedule("s2", "b", 1)]
KEYED = len(RUNS) + len(HOOKS) + len(SCHEDULES)


@pytest.fixture
async def old_table(tmp_path: Path) -> AsyncIterator[DynamoDBStorageBackend]:
    storage = make_dynamodb(tmp_path)
    await storage.ensure_table()
    client = await storage._db()
    for item in [
        *(old_run_item(r) for r in RUNS),
        *(old_hook_item(h) for h in HOOKS),
        *(old_schedule_item(sc) for sc in SCHEDULES),
    ]:
        await client.put_item(TableName=storage.table_name, Item=item)
    yield storage
    await storage.delete_table()
    await storage.close()


async def listed(storage: DynamoDBStorageBackend, **by: Any) -> set[str]:
    return {r.run_id for r in (await storage.list_runs_page(**by)).items}


async def everything_listed(storage: DynamoDBStorageBackend) -> dict[str, Any]:
    statuses = {st: await listed(storage, status=st) for st in RunStatus}
    return {
        "by status": {st.value: ids for st, ids in statuses.items() if ids},
        "wf a": await listed(storage, workflow_name="a"),
        "wf b": await listed(storage, workflow_name="b"),
        "children": await listed(storage, parent_run_id="r_running"),
        "all": await listed(storage),
        "due": {r.run_id for r in await storage.list_due_runs(T0 + timedelta(hours=2))},
        "hooks pending": {h.hook_id for h in await storage.list_hooks(status=HookStatus.PENDING)},
        "hooks received": {h.hook_id for h in await storage.list_hooks(status=HookStatus.RECEIVED)},
        "hooks of r_running": {h.hook_id for h in await storage.list_hooks(run_id="r_running")},
        "schedules": {sc.schedule_id for sc in await storage.list_schedules()},
    }


EXPECTED = {
    "by status": {
        "pending": {"r_pending"},
        "running": {"r_running"},
        "suspended": {"r_sleeping"},
        "completed": {"r_done", "r_child"},
        "failed": {"r_failed"},
    },
    "wf a": {"r_pending", "r_running", "r_done"},
    "wf b": {"r_sleeping", "r_failed", "r_child"},
    "children": {"r_child"},
    "all": {r.run_id for r in RUNS},
    "due": {"r_pending", "r_running", "r_sleeping"},
    "hooks pending": {"h1"},
    "hooks received": {"h2"},
    "hooks of r_running": {"h1"},
    "schedules": {"s1", "s2"},
}


async def test_old_keys_are_missed_by_sharded_listings_except_all_runs_and_due(
    old_table: DynamoDBStorageBackend,
) -> None:
    before = await everything_listed(old_table)
    assert before["by status"] == {} and before["wf a"] == before["wf b"] == set()
    assert before["hooks pending"] == before["schedules"] == set()
    # RUNS#0..3 and DUE#0..3 are among the new shard keys: those listings found them all along
    assert before["all"] == EXPECTED["all"] and before["due"] == EXPECTED["due"]
    assert before["children"] == EXPECTED["children"]  # PARENT#<id> did not change


async def test_rekey_makes_every_listing_find_everything_and_a_second_pass_changes_nothing(
    old_table: DynamoDBStorageBackend,
) -> None:
    dry = await dynamodb_migrate.rekey(old_table, dry_run=True)
    assert dry.rekeyed == KEYED and dry.current == 0 and dry.finished
    assert (await everything_listed(old_table))["by status"] == {}  # the dry run wrote nothing

    first = await dynamodb_migrate.rekey(old_table, segments=3, page_size=2)
    assert (first.rekeyed, first.current, first.raced, first.unreadable) == (KEYED, 0, 0, 0)
    assert first.attributes["GSI1PK"] == KEYED and first.attributes["GSI2PK"] == len(RUNS)
    assert first.finished
    assert await everything_listed(old_table) == EXPECTED

    second = await dynamodb_migrate.rekey(old_table)
    assert (second.rekeyed, second.current, second.raced) == (0, KEYED, 0)
    assert await everything_listed(old_table) == EXPECTED


async def test_rekey_resumes_from_its_token(old_table: DynamoDBStorageBackend) -> None:
    tokens: list[str] = []
    await dynamodb_migrate.rekey(
        old_table, page_size=1, on_page=lambda report: tokens.append(report.resume_token())
    )
    # a pass interrupted after its first page resumes there: only the rest is left to scan
    again = await dynamodb_migrate.rekey(old_table, resume=tokens[0])
    assert again.rekeyed == 0 and again.scanned == KEYED - 1
    assert again.finished and await everything_listed(old_table) == EXPECTED


async def test_rekey_never_overwrites_a_live_workers_write(
    old_table: DynamoDBStorageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dynamodb_migrate._rekey_item

    async def worker_writes_first(client: Any, table: Any, item: Any, *rest: Any) -> None:
        if item["PK"]["S"] == "RUN#r_running":  # scanned; a worker ends the run before the rewrite
            run = await old_table.get_run("r_running")
            assert run is not None
            await old_table.update_run(
                run.model_copy(update={"status": RunStatus.COMPLETED, "completed_at": T0}),
                expected_version=run.version,
            )
        await real(client, table, item, *rest)

    monkeypatch.setattr(dynamodb_migrate, "_rekey_item", worker_writes_first)
    report = await dynamodb_migrate.rekey(old_table)
    assert report.raced == 1 and report.rekeyed == KEYED - 1
    stored = await old_table.get_run("r_running")
    assert stored is not None and stored.status == RunStatus.COMPLETED
    assert "r_running" in await listed(old_table, status=RunStatus.COMPLETED)
    assert "r_running" not in await listed(old_table, status=RunStatus.RUNNING)
    assert "r_running" not in {r.run_id for r in await old_table.list_due_runs(T0)}
    again = await dynamodb_migrate.rekey(old_table)
    assert (again.rekeyed, again.raced, again.current) == (0, 0, KEYED)

"""The DynamoDB single-table layout: keys, index attributes and item builders.

Kept apart from the backend so the table shape (also declared in ``template.yaml``) is readable in
one place. Every record is stored whole as its ``model_dump_json()`` in ``data``; the other
attributes only exist to be keyed or filtered on.

| item     | PK                 | SK               | index attributes                          |
| -------- | ------------------ | ---------------- | ----------------------------------------- |
| run      | ``RUN#<run_id>``   | ``RUN``          | GSI1 status group, GSI2 workflow, GSI3    |
|          |                    |                  | parent, GSI4 all runs, GSI5 due (sparse); |
|          |                    |                  | also holds event 1 (``e1``) and an ending |
| event    | ``RUN#<run_id>``   | ``EVT#<seq:010>``| none (so an append writes no index)       |
| hook     | ``HOOK#<hash>``    | ``HOOK``         | GSI1 hook status, GSI4 all-hooks shard,   |
|          |                    |                  | GSI6 hooks of a run                       |
| idem key | ``IDEM#<key>``     | ``IDEM``         | none                                      |
| schedule | ``SCHED#<id>``     | ``SCHED``        | GSI1 ``SCHEDULES#<shard>``                |

Every index key but a run's parent and a hook's run is *write-sharded* (``Family``): the key of a
record is ``STATUS#completed#<k>``, ``WF#<name>#<k>``, ``RUNS#<k>``, ... with ``k`` a stable hash of
its id, and a listing queries the ``k`` partitions in parallel and merges them newest first. A
partition (of the table or of an index) takes at most 1,000 writes/s, and a throttled index
throttles the table's writes: without shards every run ending in one second would write one
``STATUS#completed`` key. ``bench/capacity.py`` shows the load on each family's hottest key.

Why a run's first event lives in the run item (attribute ``e1``): starting a run then costs one
PutItem instead of a two-item transaction (4 write units), and sequence 1 can still be written
only once (``attribute_not_exists(e1)``). The history Query's key range ends at ``RUN``, so it
reads ``e1`` in the same request. Run records are written with UpdateItem, so ``e1`` stays.

Why a run's ending lives in the run item too (attribute ``tail``, a JSON list of its last events):
the ending (the last step's result, ``workflow.completed``) and the final record are then one
UpdateItem, conditional on the record's version, instead of one PutItem per event plus the
UpdateItem. The history Query reads the run item anyway. Events in ``tail`` win over event items
with the same or later sequences: those can only be a zombie's appends (a worker whose lease
expired) racing the owner's ending, and a finished run has no events after its ending.

Why the records are small: ``data`` leaves out fields at their defaults, so a run item stays
under 1 KB and each write of it costs one write unit.

Why the indexes look like this:
- GSI1–GSI4 share one sort attribute, ``GSISK = <created_at UTC ISO>#<id>``: text order is
  (created_at, id) order, which is the listing order and the cursor, and one attribute instead of
  four keeps items small.
- The listing indexes project keys plus the few attributes a filter needs (``wf``, ``st``), never
  ``data``: an index is rewritten only when an attribute it holds changes, so a lease renewal or
  a version bump costs no index write. Listings fetch the records with one consistent
  BatchGetItem instead, which also means they never return stale records.
- Unfinished statuses share one status partition group (``STATUS#active#<k>``, ``st`` projected
  and filtered on): a run going pending -> running -> suspended -> running updates its entry in
  place (one index write each) instead of moving it between partitions (two each).
- GSI5 (``DUE#<shard>``, ``DUESK = <due time>#<run_id>``) holds only runs a worker may have to
  drive (pending, running, interrupted, and suspended with a ``wake_at``): a sparse index, so the
  due sweep never reads finished or sleeping-forever runs. It projects keys only: taking,
  renewing or releasing a lease (and pending -> running) then rewrites no index entry; the
  sweep, which runs every few minutes, checks leases on the fetched records instead.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, HookStatus, RunStatus, Schedule, WorkflowRun
from pyworkflow.storage.shared import due_key

#: zero padding of event sequences in the sort key (10 digits: beyond any history limit)
SEQ_WIDTH = 10
#: the largest event sort key, so a range never reaches the run item (``RUN`` > ``EVT#``)
EVT_MAX = "EVT#" + "9" * SEQ_WIDTH
#: the run item's sort key: a history range ending here also reads the run's first event
RUN_SK = "RUN"
#: the run item attribute holding event 1 (see the module docstring)
E1 = "e1"
#: the run item attribute holding a run's ending: its last events, written with its final record
TAIL = "tail"
#: an ending larger than this (JSON characters) is written as event items instead: an item holds
#: at most 400 KB, and the record may repeat the result
TAIL_MAX = 100_000
#: run item attributes that come and go with the run's state (removed when absent)
OPTIONAL_RUN_ATTRS = ("GSI3PK", "GSI5PK", "DUESK", "ttl")

Item = dict[str, dict[str, Any]]

# index name -> (partition attribute, sort attribute)
INDEXES: dict[str, tuple[str, str]] = {
    "GSI1": ("GSI1PK", "GSISK"),  # run status, hook status, SCHEDULES
    "GSI2": ("GSI2PK", "GSISK"),  # runs by workflow name
    "GSI3": ("GSI3PK", "GSISK"),  # runs by parent run
    "GSI4": ("GSI4PK", "GSISK"),  # all runs / all hooks, sharded
    "GSI5": ("GSI5PK", "DUESK"),  # runs a worker may have to drive (sparse), sharded
    "GSI6": ("GSI6PK", "GSISK"),  # hooks of a run
}
# what each index carries besides its keys (see the module docstring for why so little)
_PROJECTIONS: dict[str, dict[str, Any]] = {
    "GSI1": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["wf", "st"]},
    "GSI2": {"ProjectionType": "KEYS_ONLY"},
    "GSI3": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["wf", "st"]},
    "GSI4": {"ProjectionType": "KEYS_ONLY"},
    "GSI5": {"ProjectionType": "KEYS_ONLY"},
    "GSI6": {"ProjectionType": "ALL"},  # hooks only: small, and find_hook needs them whole
}


def table_definition(table_name: str) -> dict[str, Any]:
    """The ``CreateTable`` arguments (on-demand billing, keys, every GSI); ``template.yaml``
    declares the same table for deployments."""
    attributes = ["PK", "SK", *sorted({a for pair in INDEXES.values() for a in pair})]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": _PROJECTIONS[name],
            }
            for name, (pk, sk) in INDEXES.items()
        ],
    }


# --- values ------------------------------------------------------------------------------------
def utc_iso(when: datetime) -> str:
    """Fixed-width UTC ISO text (naive taken as UTC), so string order is time order; the same
    text as memory.py's cursors."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def shard(key: str, shards: int) -> int:
    """Stable shard of an id (crc32: the same in every process, unlike ``hash``)."""
    return zlib.crc32(key.encode()) % shards


@dataclass(frozen=True)
class Family:
    """One logical index partition (all runs of a status, of a workflow...) written over
    ``shards`` partition keys, so no single key takes more than its share of the writes.

    A record's key is ``<prefix>#<name>#<shard of its id>`` (``<prefix>#<shard>`` without a
    name; ``<prefix>#<name>`` when unsharded); a listing queries every shard in parallel and
    merges (``keys``). The shard counts are sized by ``bench/capacity.py``: at 10,000 run starts/s
    and 100,000 steps/s every partition stays under half of DynamoDB's 1,000 writes/s.
    """

    index: str
    prefix: str
    shards: int

    def key(self, record_id: str, name: str | None = None) -> str:
        base = self.prefix if name is None else f"{self.prefix}#{name}"
        if self.shards == 1:
            return base
        return f"{base}#{shard(record_id, self.shards)}"

    def keys(self, name: str | None = None) -> list[str]:
        base = self.prefix if name is None else f"{self.prefix}#{name}"
        if self.shards == 1:
            return [base]
        return [f"{base}#{i}" for i in range(self.shards)]


# Shard counts: a status or due partition takes two writes per run (the entry comes, the entry
# goes), the others one; ``bench/capacity.py`` shows the load each takes. Changing a count (or
# any key below) needs ``pyworkflow db rekey`` (``storage/dynamodb_migrate.py``: re-keys stored
# items).
RUN_STATUS = Family("GSI1", "STATUS", 128)
RUN_WORKFLOW = Family("GSI2", "WF", 32)
RUN_PARENT = Family("GSI3", "PARENT", 1)  # the children of one run
RUN_ALL = Family("GSI4", "RUNS", 32)
RUN_DUE = Family("GSI5", "DUE", 128)
HOOK_STATUS = Family("GSI1", "HOOKSTATUS", 64)
HOOK_ALL = Family("GSI4", "HOOKS", 32)
HOOK_RUN = Family("GSI6", "HOOKRUN", 1)  # the hooks of one run
SCHEDULES = Family("GSI1", "SCHEDULES", 8)
FAMILIES = (
    RUN_STATUS,
    RUN_WORKFLOW,
    RUN_PARENT,
    RUN_ALL,
    RUN_DUE,
    HOOK_STATUS,
    HOOK_ALL,
    HOOK_RUN,
    SCHEDULES,
)
#: the status index groups every unfinished status under one key, so a run moving between them
#: (pending -> running -> suspended -> running) updates its entry's ``st`` in place (one index
#: write) instead of moving it to another partition (two)
ACTIVE = "active"


@dataclass(frozen=True)
class Layout:
    """Every index key family of the table, and whether unfinished run statuses share one status
    key. ``CURRENT`` is what this code writes and lists; ``LEGACY`` is the layout before
    write-sharding (commit bff4852), kept so ``bench/capacity.py --layout old`` can show which
    key was hot and the migration's tests can say what they re-key."""

    run_status: Family
    run_workflow: Family
    run_parent: Family
    run_all: Family
    run_due: Family
    hook_status: Family
    hook_all: Family
    hook_run: Family
    schedules: Family
    group_active: bool

    @property
    def families(self) -> tuple[Family, ...]:
        return (
            self.run_status,
            self.run_workflow,
            self.run_parent,
            self.run_all,
            self.run_due,
            self.hook_status,
            self.hook_all,
            self.hook_run,
            self.schedules,
        )

    def status_name(self, status: RunStatus) -> str:
        """The name of the status index partition holding runs of ``status``."""
        if self.group_active and not status.is_terminal:
            return ACTIVE
        return status.value


CURRENT = Layout(*FAMILIES, group_active=True)
LEGACY = Layout(
    run_status=Family("GSI1", "STATUS", 1),
    run_workflow=Family("GSI2", "WF", 1),
    run_parent=RUN_PARENT,
    run_all=Family("GSI4", "RUNS", 4),
    run_due=Family("GSI5", "DUE", 4),
    hook_status=Family("GSI1", "HOOKSTATUS", 1),
    hook_all=Family("GSI4", "HOOKS", 4),
    hook_run=HOOK_RUN,
    schedules=Family("GSI1", "SCHEDULES", 1),
    group_active=False,
)


def status_group(status: RunStatus) -> str:
    """The name of the status index partition holding runs of ``status``."""
    return CURRENT.status_name(status)


def ttl_at(when: datetime | None, retention_days: float | None) -> int | None:
    """Epoch seconds at which DynamoDB's TTL may delete a finished record."""
    if when is None or retention_days is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int((when + timedelta(days=retention_days)).timestamp())


# --- keys --------------------------------------------------------------------------------------
def run_key(run_id: str) -> Item:
    return {"PK": s(f"RUN#{run_id}"), "SK": s(RUN_SK)}


def event_sk(sequence: int) -> str:
    return f"EVT#{sequence:0{SEQ_WIDTH}d}"


def event_key(run_id: str, sequence: int) -> Item:
    return {"PK": s(f"RUN#{run_id}"), "SK": s(event_sk(sequence))}


def hook_key(token_hash: str) -> Item:
    return {"PK": s(f"HOOK#{token_hash}"), "SK": s("HOOK")}


def idem_key(key: str) -> Item:
    return {"PK": s(f"IDEM#{key}"), "SK": s("IDEM")}


def schedule_key(schedule_id: str) -> Item:
    return {"PK": s(f"SCHED#{schedule_id}"), "SK": s("SCHED")}


def run_sort(run: WorkflowRun) -> str:
    return f"{utc_iso(run.created_at)}#{run.run_id}"


def hook_sort(hook: Hook) -> str:
    # (created_at, op) is the listing order; the hash breaks the remaining ties
    return f"{utc_iso(hook.created_at)}#{hook.op:0{SEQ_WIDTH}d}#{hook.token_hash}"


# --- items -------------------------------------------------------------------------------------
def run_item(
    run: WorkflowRun,
    retention_days: float | None,
    first_event: Event | None = None,
    *,
    layout: Layout = CURRENT,
) -> Item:
    """The run record plus the attributes of every index it belongs to right now (and, when
    the run is created with it, its first event). Updates SET these attributes and REMOVE the
    optional ones it lacks (``run_update``), so an index the run has left (e.g. GSI5 once
    finished) loses it."""
    item: Item = {
        **run_key(run.run_id),
        "data": s(run.model_dump_json(exclude_defaults=True)),
        "version": n(run.version),
        "st": s(run.status.value),
        "wf": s(run.workflow_name),
        "GSISK": s(run_sort(run)),
        "GSI1PK": s(layout.run_status.key(run.run_id, layout.status_name(run.status))),
        "GSI2PK": s(layout.run_workflow.key(run.run_id, run.workflow_name)),
        "GSI4PK": s(layout.run_all.key(run.run_id)),
    }
    if run.parent_run_id is not None:
        item["GSI3PK"] = s(layout.run_parent.key(run.run_id, run.parent_run_id))
    due = due_sort(run)
    if due is not None:
        item["GSI5PK"] = s(layout.run_due.key(run.run_id))
        item["DUESK"] = s(due)
    if first_event is not None:
        item[E1] = s(first_event.model_dump_json(exclude_defaults=True))
    if run.status.is_terminal:
        expires = ttl_at(run.completed_at or run.updated_at, retention_days)
        if expires is not None:
            item["ttl"] = n(expires)
    return item


def run_update(item: Item, condition: str, values: Item) -> dict[str, Any]:
    """UpdateItem arguments (without TableName) that make the stored run item equal ``item``
    (a ``run_item`` without ``e1``) but keep ``e1``: SET every attribute, REMOVE the optional
    ones ``item`` lacks. ``condition`` may use ``#v`` (version) and its ``values``."""
    names: dict[str, str] = {"#v": "version"}
    sets: list[str] = []
    for i, (attr, value) in enumerate(a for a in item.items() if a[0] not in ("PK", "SK")):
        if attr == "version":
            sets.append("#v = :set_v")
            values = {**values, ":set_v": value}
            continue
        names[f"#a{i}"] = attr
        values = {**values, f":a{i}": value}
        sets.append(f"#a{i} = :a{i}")
    removes = []
    for j, attr in enumerate(a for a in OPTIONAL_RUN_ATTRS if a not in item):
        names[f"#r{j}"] = attr
        removes.append(f"#r{j}")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {
        "Key": {"PK": item["PK"], "SK": item["SK"]},
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def due_sort(run: WorkflowRun) -> str | None:
    """The GSI5 sort key: the run's ``due_key`` (every backend orders due runs so), or None
    when it never becomes due by itself."""
    if run.status == RunStatus.SUSPENDED and run.wake_at is None:
        return None
    if run.status in (
        RunStatus.SUSPENDED,
        RunStatus.PENDING,
        RunStatus.RUNNING,
        RunStatus.INTERRUPTED,
    ):
        return due_key(run)
    return None


def event_item(event: Event, ttl: int | None = None) -> Item:
    item: Item = {
        **event_key(event.run_id, event.sequence),
        "data": s(event.model_dump_json(exclude_defaults=True)),
    }
    if ttl is not None:
        item["ttl"] = n(ttl)
    return item


def hook_item(hook: Hook, retention_days: float | None, *, layout: Layout = CURRENT) -> Item:
    item: Item = {
        **hook_key(hook.token_hash),
        "data": s(hook.model_dump_json()),
        "version": n(hook.version),
        "st": s(hook.status.value),
        "hook_id": s(hook.hook_id),
        "hook_name": s(hook.name),
        "GSISK": s(hook_sort(hook)),
        "GSI1PK": s(layout.hook_status.key(hook.token_hash, hook.status.value)),
        "GSI4PK": s(layout.hook_all.key(hook.token_hash)),
        "GSI6PK": s(layout.hook_run.key(hook.token_hash, hook.run_id)),
    }
    if hook.status != HookStatus.PENDING:  # settled: kept for the retention, like its run
        expires = ttl_at(hook.received_at or hook.expires_at or hook.created_at, retention_days)
        if expires is not None:
            item["ttl"] = n(expires)
    return item


def schedule_item(schedule: Schedule, *, layout: Layout = CURRENT) -> Item:
    return {
        **schedule_key(schedule.schedule_id),
        "data": s(schedule.model_dump_json()),
        "version": n(schedule.version),
        "st": s(schedule.status.value),
        "wf": s(schedule.workflow_name),
        "GSI1PK": s(layout.schedules.key(schedule.schedule_id)),
        "GSISK": s(f"{utc_iso(schedule.created_at)}#{schedule.schedule_id}"),
    }


# --- cursors -----------------------------------------------------------------------------------
def cursor_from_sort(sort_key: str) -> str:
    """An opaque cursor in memory.py's format (base64 JSON of [created_at, run_id]), so a cursor
    means the same thing on every backend."""
    created, _, run_id = sort_key.partition("#")
    return base64.urlsafe_b64encode(json.dumps([created, run_id]).encode()).decode()


def sort_from_cursor(created: str, run_id: str) -> str:
    """The ``GSISK`` that a decoded cursor points at (re-normalised, so any ISO offset works)."""
    try:
        return f"{utc_iso(datetime.fromisoformat(created))}#{run_id}"
    except ValueError as exc:
        raise ValueError(f"Invalid cursor time {created!r}") from exc

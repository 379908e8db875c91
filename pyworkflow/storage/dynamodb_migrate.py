"""Re-key a DynamoDB table's items to the index layout this code writes and lists.

Tables written before write-sharding (``dynamodb_items.LEGACY``) hold ``STATUS#<status>``,
``WF#<name>``, ``HOOKSTATUS#<status>`` and ``SCHEDULES``: the listings, which query
``STATUS#active#0..127`` and the like, do not find them. (``RUNS#0..3`` and ``DUE#0..3`` are
among the new shard keys, so all-runs listings and the due sweep find those items anyway; they
are re-keyed too, to spread them.) ``rekey`` scans the table and rewrites each run, hook and
schedule item's index partition keys to what ``run_item`` / ``hook_item`` / ``schedule_item``
build from the stored record now.

Never clobbers a live write: each rewrite is an UpdateItem conditional on the item still
holding every old value it replaces (and the ``st`` the new keys were derived from). A worker
running this code that wrote the item meanwhile wrote the new keys itself: the condition fails
and the item is counted as ``raced``, already right. Idempotent: an item already in the layout
is not written, so a second pass changes nothing. Resumable: a pass reports each segment's
``LastEvaluatedKey`` (``resume_token``) and starts from one.

Only the index *partition* attributes (``GSI1PK``..``GSI6PK``) are rewritten, and only those the
item already has: which indexes an item is in (e.g. the sparse due index) is the item's state,
not the layout's. ``pyworkflow db rekey`` is the command.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from pyworkflow.core.models import Hook, Schedule, WorkflowRun
from pyworkflow.storage import dynamodb_items as layout
from pyworkflow.storage.dynamodb_items import Item, s
from pyworkflow.storage.dynamodb_table import DynamoDBTable, error_code

#: the index partition attributes a layout decides
KEY_ATTRIBUTES = tuple(pk for pk, _ in layout.INDEXES.values())
#: the item kinds that carry index keys, by sort key
KINDS = ("RUN", "HOOK", "SCHED")


@dataclass
class RekeyReport:
    """What a pass did (or, with ``dry_run``, would do)."""

    scanned: int = 0  # items read (events and idempotency keys included)
    current: int = 0  # run/hook/schedule items already in the layout
    rekeyed: int = 0  # items rewritten (dry run: that would be)
    raced: int = 0  # changed by someone else between the scan and the rewrite: left alone
    unreadable: int = 0  # records that no longer parse: left alone, listed in ``problems``
    attributes: Counter[str] = field(default_factory=Counter)  # rewritten, by attribute
    problems: list[str] = field(default_factory=list)
    #: segment -> the last key scanned (None once the segment is finished)
    positions: dict[int, Item | None] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return all(key is None for key in self.positions.values())

    def resume_token(self) -> str:
        """An opaque token that ``rekey(resume=...)`` continues from."""
        raw = {"segments": len(self.positions), "at": self.positions}
        return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "current": self.current,
            "rekeyed": self.rekeyed,
            "raced": self.raced,
            "unreadable": self.unreadable,
            "attributes": dict(sorted(self.attributes.items())),
            "problems": self.problems,
            "finished": self.finished,
        }


def decode_resume(token: str) -> tuple[int, dict[int, Item | None]]:
    """The segment count and positions of a ``resume_token``."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(raw["segments"]), {int(k): v for k, v in raw["at"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"Not a rekey resume token: {token[:40]!r}") from exc


def target_keys(item: Item, retention_days: float | None = None) -> dict[str, str]:
    """The index partition keys ``item`` should hold: built by this code's item builders from
    the stored record, restricted to the indexes the item is in now. Raises ``ValueError`` for a
    record that does not parse."""
    kind = item["SK"]["S"]
    data = item["data"]["S"]
    try:
        if kind == "RUN":
            built = layout.run_item(WorkflowRun.model_validate_json(data), retention_days)
        elif kind == "HOOK":
            built = layout.hook_item(Hook.model_validate_json(data), retention_days)
        else:
            built = layout.schedule_item(Schedule.model_validate_json(data))
    except ValidationError as exc:
        raise ValueError(f"{item['PK']['S']}: {exc.errors()[0]['msg']}") from exc
    return {a: built[a]["S"] for a in KEY_ATTRIBUTES if a in item and a in built}


def rekey_update(table_name: str, item: Item, keys: dict[str, str]) -> dict[str, Any] | None:
    """The conditional UpdateItem that moves ``item`` to ``keys``; None if it is there."""
    changed = {a: v for a, v in keys.items() if item[a]["S"] != v}
    if not changed:
        return None
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets, conditions = [], []
    for i, (attr, value) in enumerate(sorted(changed.items())):
        names[f"#k{i}"] = attr
        values[f":new{i}"] = s(value)
        values[f":old{i}"] = item[attr]
        sets.append(f"#k{i} = :new{i}")
        conditions.append(f"#k{i} = :old{i}")
    if "st" in item:  # the keys were derived from this status
        names["#st"] = "st"
        values[":st"] = item["st"]
        conditions.append("#st = :st")
    return {
        "TableName": table_name,
        "Key": {"PK": item["PK"], "SK": item["SK"]},
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


async def rekey(
    table: DynamoDBTable,
    *,
    dry_run: bool = False,
    segments: int = 1,
    resume: str | None = None,
    page_size: int | None = None,
    on_page: Callable[[RekeyReport], None] | None = None,
) -> RekeyReport:
    """Scan ``table`` (``segments`` parallel Scan segments) and re-key every run, hook and
    schedule item not in the current layout. ``resume``: a previous report's
    ``resume_token()`` (its segment count wins). ``on_page`` is called after every page."""
    report = RekeyReport()
    if resume is not None:
        segments, report.positions = decode_resume(resume)
    elif segments < 1:
        raise ValueError("segments must be at least 1")
    else:
        report.positions = {i: {} for i in range(segments)}  # {}: not started
    client = await table._db()

    async def segment(i: int) -> None:
        start = report.positions.get(i)
        if start is None:
            return  # finished in the pass being resumed
        while True:
            args: dict[str, Any] = {
                "TableName": table.table_name,
                "FilterExpression": "SK IN (:r, :h, :s)",
                "ExpressionAttributeValues": {":r": s("RUN"), ":h": s("HOOK"), ":s": s("SCHED")},
                "ConsistentRead": True,
            }
            if segments > 1:
                args.update(Segment=i, TotalSegments=segments)
            if start:
                args["ExclusiveStartKey"] = start
            if page_size:
                args["Limit"] = page_size
            page = await client.scan(**args)
            report.scanned += page.get("ScannedCount", 0)
            for item in page.get("Items", []):
                await _rekey_item(client, table, item, report, dry_run)
            start = page.get("LastEvaluatedKey")
            report.positions[i] = start
            if on_page is not None:
                on_page(report)
            if not start:
                return

    await asyncio.gather(*(segment(i) for i in range(segments)))
    return report


async def _rekey_item(
    client: Any, table: DynamoDBTable, item: Item, report: RekeyReport, dry_run: bool
) -> None:
    if item["SK"]["S"] not in KINDS or "data" not in item:
        return
    try:
        keys = target_keys(item, table.retention_days)
    except ValueError as exc:
        report.unreadable += 1
        report.problems.append(str(exc))
        return
    update = rekey_update(table.table_name, item, keys)
    if update is None:
        report.current += 1
        return
    if not dry_run:
        try:
            await client.update_item(**update)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            report.raced += 1
            return
    report.rekeyed += 1
    report.attributes.update(
        attr for name, attr in update["ExpressionAttributeNames"].items() if name.startswith("#k")
    )


__all__ = ["RekeyReport", "decode_resume", "rekey", "rekey_update", "target_keys"]

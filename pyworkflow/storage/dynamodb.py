"""DynamoDB storage: the AWS event store, one table (layout in ``dynamodb_items.py``).

Cost drives the shape. A step's result is one event item written by one conditional PutItem
(``attribute_not_exists(SK)``): one write request, no index touched. A run's history is one
consistent Query. Nothing ever Scans: listings query global secondary indexes, and listing all
runs queries every shard of a write-sharded index key (``layout.Family``) and merges, so no
partition key receives every run.

Gap-free appends without a read on the hot path: the backend remembers, per run, the highest
sequence it has *seen stored* (after ``create_run``, ``append_events`` or ``read_events``). Events
are never deleted while a run lives, so "sequence h exists" stays true, and appending ``h + 1`` can
leave no gap. A worker always reads the history before appending, so its appends need nothing
else. When the previous sequence is not known (another process appended meanwhile, or no
history was read), a single-event append first reads that one event item (GetItem, a key-only
projection), and a transaction instead carries a ConditionCheck on it: the gap check costs a
request only when this process cannot prove the append safe.

Listings read global secondary indexes, which DynamoDB updates asynchronously: on AWS a record
written a moment ago may be missing from (or still listed under its old status in) a listing for
a short while. The records themselves are fetched with a consistent BatchGetItem and re-checked
against the filter, so a listing never returns a stale record, at worst one too few.

Retention: a finished run's item gets ``ttl`` = completion + ``retention_days``, and so do the
events written with the terminal update; earlier events carry none and outlive the run (setting
it on every event would cost one write per event). Idempotency items have no TTL either: a key
stays taken after its run expired.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

import aioboto3
from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import Hook, HookStatus, Page, RunStatus, Schedule, WorkflowRun
from pyworkflow.exceptions import ConcurrencyError, WorkflowNotFoundError
from pyworkflow.storage import dynamodb_items as layout
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.dynamodb_items import n, s, utc_iso
from pyworkflow.storage.dynamodb_table import DynamoDBTable, error_code
from pyworkflow.storage.shared import decode_cursor, is_due, required_version

_EVENT_LIST = TypeAdapter(list[Event])
#: endings written as events first, record second (see ``_append_then_record``); they must be
#: the endings the executor settles from a history (continue-as-new stays one transaction)
_RECORDED_ENDINGS = frozenset(
    {
        EventType.WORKFLOW_COMPLETED,
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_CANCELLED,
    }
)
#: runs whose last stored sequence is remembered (a few hundred KB at most)
_HEADS_MAX = 10_000
#: index pages a due sweep reads at most (the next sweep goes on where this one could not)
_DUE_PAGES = 10

__all__ = ["DynamoDBStorageBackend"]


class DynamoDBStorageBackend(DynamoDBTable, StorageBackend):
    """The ``StorageBackend`` contract on one DynamoDB table (see the module docstring).

    ``table_name``, ``region`` and ``endpoint_url`` default to ``PYWORKFLOW_TABLE``,
    ``AWS_REGION``/``AWS_DEFAULT_REGION`` and ``PYWORKFLOW_DYNAMODB_ENDPOINT``. One aioboto3
    client is opened on first use and kept until ``close()``: creating a client costs
    milliseconds, and reusing it reuses its HTTP connections. ``create_table=True`` creates the
    table on first use if it is missing (local stacks and tests; deployments use template.yaml).
    ``self.requests`` counts the AWS requests sent, by operation.
    """

    def __init__(
        self,
        table_name: str | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: aioboto3.Session | None = None,
        retention_days: float | None = None,
        create_table: bool = False,
    ) -> None:
        super().__init__(
            table_name,
            region=region,
            endpoint_url=endpoint_url,
            session=session,
            retention_days=retention_days,
            create_table=create_table,
        )
        self.reads = 0
        self.writes = 0
        self._heads: OrderedDict[str, int] = OrderedDict()

    def _remember(self, run_id: str, sequence: int) -> None:
        """Record that ``sequence`` of ``run_id`` is stored (0: the run exists, no event yet)."""
        heads = self._heads
        if heads.get(run_id, -1) < sequence:
            heads[run_id] = sequence
        heads.move_to_end(run_id)
        if len(heads) > _HEADS_MAX:
            heads.popitem(last=False)

    # --- runs --------------------------------------------------------------------------------
    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        self.writes += 1
        _check_batch(run.run_id, events, first=1)
        stored = run.model_copy(update={"version": 1}, deep=True)
        ttl = self._event_ttl(stored)
        # event 1 rides in the run item: a plain start is one PutItem
        item = layout.run_item(stored, self.retention_days, events[0] if events else None)
        rest = events[1:]
        if not rest and not run.idempotency_key:
            try:
                await self._put(item, "attribute_not_exists(PK)")
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise ConcurrencyError(f"Run {run.run_id} already exists") from exc
                raise
        else:
            items = [self._tx_put(item, "attribute_not_exists(PK)")]
            items += [
                self._tx_put(layout.event_item(e, ttl), "attribute_not_exists(SK)") for e in rest
            ]
            if run.idempotency_key:
                idem = {**layout.idem_key(run.idempotency_key), "run_id": s(run.run_id)}
                items.append(self._tx_put(idem, "attribute_not_exists(PK)"))
            if await self._transact(items) is not None:
                raise ConcurrencyError(
                    f"Run {run.run_id} or idempotency key {run.idempotency_key!r} already exists"
                )
        self._remember(run.run_id, len(events))
        return stored

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        self.reads += 1
        return await self._load_run(run_id)

    async def _load_run(self, run_id: str) -> WorkflowRun | None:
        item = await self._get(layout.run_key(run_id))
        return WorkflowRun.model_validate_json(item["data"]["S"]) if item else None

    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None:
        self.reads += 1
        idem = await self._get(layout.idem_key(key), projection="run_id")
        return await self._load_run(idem["run_id"]["S"]) if idem else None

    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        self.writes += 1
        return await self._replace_run(run, expected_version)

    async def _replace_run(self, run: WorkflowRun, expected_version: int) -> WorkflowRun:
        """One conditional UpdateItem (not a PutItem: the item also holds event 1)."""
        stored = run.model_copy(update={"version": expected_version + 1}, deep=True)
        update = self._run_update(stored, expected_version)
        try:
            await (await self._db()).update_item(TableName=self.table_name, **update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise await self._run_conflict(
                    run.run_id, f"expected version {expected_version}"
                ) from exc
            raise
        return stored

    def _run_update(self, stored: WorkflowRun, expected_version: int) -> dict[str, Any]:
        return layout.run_update(
            layout.run_item(stored, self.retention_days), "#v = :v", {":v": n(expected_version)}
        )

    async def _run_conflict(self, run_id: str, why: str) -> Exception:
        """The error for a failed conditional write on a run: read only on this failure path."""
        if not await self._exists(layout.run_key(run_id)):
            return WorkflowNotFoundError(run_id)
        return ConcurrencyError(f"Run {run_id} changed concurrently ({why})")

    async def list_runs_page(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        self.reads += 1
        after = layout.sort_from_cursor(*decode_cursor(cursor)) if cursor else None
        if limit <= 0:
            return Page(items=[])
        filters: dict[str, str] = {}
        if parent_run_id is not None:  # the narrowest index first; the rest are filters
            family, pks = layout.RUN_PARENT, layout.RUN_PARENT.keys(parent_run_id)
            filters = {"st": status.value} if status is not None else {}
            if workflow_name is not None:
                filters["wf"] = workflow_name
        elif status is not None:
            status = RunStatus(status)
            family = layout.RUN_STATUS
            pks = family.keys(layout.status_group(status))
            filters = {"wf": workflow_name} if workflow_name is not None else {}
            if not status.is_terminal:  # unfinished statuses share a group: st tells them apart
                filters["st"] = status.value
        elif workflow_name is not None:
            family, pks = layout.RUN_WORKFLOW, layout.RUN_WORKFLOW.keys(workflow_name)
        else:
            family, pks = layout.RUN_ALL, layout.RUN_ALL.keys()
        index = family.index
        entries = await self._query_merged(
            index, pks, want=limit + 1, sk_below=after, filters=filters
        )
        window = entries[:limit]
        runs = [
            r
            for r in (WorkflowRun.model_validate_json(d) for d in await self._fetch(window))
            if (status is None or r.status == status)
            and (workflow_name is None or r.workflow_name == workflow_name)
            and (parent_run_id is None or r.parent_run_id == parent_run_id)
        ]
        more = len(entries) > limit
        next_cursor = layout.cursor_from_sort(window[-1]["GSISK"]["S"]) if more else None
        return Page(items=runs, next_cursor=next_cursor)

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        self.reads += 1
        if limit <= 0:
            return []
        # GSI5 holds keys only (so leases rewrite no index): leases are checked on the fetched
        # records, page after page, so runs held by live workers never hide due ones behind them
        due: list[WorkflowRun] = []
        for _ in range(_DUE_PAGES):
            entries = await self._query_merged(
                layout.RUN_DUE.index,
                layout.RUN_DUE.keys(),
                want=limit,
                sk_below=utc_iso(now) + "$",  # '$' sorts after '#': includes runs due right now
                sk_above=after,
                ascending=True,
            )
            runs = (WorkflowRun.model_validate_json(d) for d in await self._fetch(entries))
            due += [r for r in runs if is_due(r, now)]  # the index may lag; the record may not
            if len(due) >= limit or len(entries) < limit:
                break
            after = entries[-1]["DUESK"]["S"]
        return due[:limit]

    # --- events ------------------------------------------------------------------------------
    def _event_ttl(self, run: WorkflowRun | None) -> int | None:
        if run is None or not run.status.is_terminal:
            return None
        return layout.ttl_at(run.completed_at or run.updated_at, self.retention_days)

    async def append_events(
        self,
        run_id: str,
        events: list[Event],
        *,
        run: WorkflowRun | None = None,
        expected_version: int | None = None,
    ) -> WorkflowRun | None:
        self.writes += 1
        if run is not None:
            if expected_version is None:
                raise ValueError("expected_version is required with run=")
            if run.run_id != run_id:
                raise ValueError(f"Run record {run.run_id} given for run {run_id}")
        if not events:
            if run is not None:
                return await self._replace_run(run, required_version(expected_version))
            if not await self._exists(layout.run_key(run_id)):
                raise WorkflowNotFoundError(run_id)
            return None
        first, last = events[0].sequence, events[-1].sequence
        _check_batch(run_id, events, first=first)
        head = self._heads.get(run_id)
        if head is not None and first <= head:  # known stored: no request can succeed
            raise ConcurrencyError(f"Run {run_id}: sequence {first} is taken (next free > {head})")
        prev_known = head is not None and head >= first - 1
        if first == 1:  # event 1 belongs in the run item (a run created without events)
            stored = await self._append_first(run_id, events, run, expected_version)
            self._remember(run_id, last)
            return stored
        if run is not None and run.status.is_terminal and events[-1].type in _RECORDED_ENDINGS:
            tail = "[" + ",".join(e.model_dump_json(exclude_defaults=True) for e in events) + "]"
            if len(tail) <= layout.TAIL_MAX:
                return await self._end_in_record(
                    run_id, tail, events, run, expected_version, prev_known=prev_known
                )
        if run is not None and (
            run.status == RunStatus.SUSPENDED
            or (run.status.is_terminal and events[-1].type in _RECORDED_ENDINGS)
        ):
            return await self._append_then_record(
                run_id, events, run, expected_version, prev_known=prev_known
            )
        if run is None and len(events) == 1:
            if not prev_known:
                await self._require_previous(run_id, first)
            try:
                await self._put(layout.event_item(events[0]), "attribute_not_exists(SK)")
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    self._remember(run_id, first)  # the winner's event is stored: skip next time
                    raise ConcurrencyError(f"Run {run_id}: sequence {first} is taken") from exc
                raise
            self._remember(run_id, last)
            return None
        stored = await self._append_transaction(
            run_id, events, run, expected_version, prev_known=prev_known
        )
        self._remember(run_id, last)
        return stored

    async def continue_run(
        self,
        run: WorkflowRun,
        events: list[Event],
        *,
        expected_version: int,
        new_run: WorkflowRun,
        new_events: list[Event],
    ) -> WorkflowRun:
        """One TransactWriteItems: the old run's last events and record (version-conditioned)
        and the new run with its first events (attribute_not_exists)."""
        self.writes += 1
        _check_batch(run.run_id, events, first=events[0].sequence if events else 1)
        _check_batch(new_run.run_id, new_events, first=1)
        stored = run.model_copy(update={"version": expected_version + 1}, deep=True)
        ttl = self._event_ttl(stored)
        items = [self._tx_update(self._run_update(stored, expected_version))]
        items += [
            self._tx_put(layout.event_item(e, ttl), "attribute_not_exists(SK)") for e in events
        ]
        created = new_run.model_copy(update={"version": 1}, deep=True)
        new_item = layout.run_item(
            created, self.retention_days, new_events[0] if new_events else None
        )
        items.append(self._tx_put(new_item, "attribute_not_exists(PK)"))
        items += [
            self._tx_put(layout.event_item(e), "attribute_not_exists(SK)") for e in new_events[1:]
        ]
        codes = await self._transact(items)
        if codes is not None:
            if codes[0] != "None":
                raise await self._run_conflict(run.run_id, f"expected version {expected_version}")
            raise ConcurrencyError(
                f"Run {run.run_id}: its history moved or {new_run.run_id} already exists"
            )
        if events:
            self._remember(run.run_id, events[-1].sequence)
        self._remember(new_run.run_id, len(new_events))
        return stored

    async def _end_in_record(
        self,
        run_id: str,
        tail: str,
        events: list[Event],
        run: WorkflowRun,
        expected_version: int | None,
        *,
        prev_known: bool,
    ) -> WorkflowRun:
        """A run's ending as one UpdateItem: the final record and its last events (the run
        item's ``tail``, see dynamodb_items), conditional on the version. Nothing is written
        if the version moved."""
        expected_version = required_version(expected_version)
        if not prev_known:
            await self._require_previous(run_id, events[0].sequence)
        stored = run.model_copy(update={"version": expected_version + 1}, deep=True)
        update = self._run_update(stored, expected_version)
        update["UpdateExpression"] = update["UpdateExpression"].replace(
            "SET ", "SET #tail = :tail, ", 1
        )
        update["ConditionExpression"] += " AND attribute_not_exists(#tail)"
        update["ExpressionAttributeNames"]["#tail"] = layout.TAIL
        update["ExpressionAttributeValues"][":tail"] = s(tail)
        try:
            await (await self._db()).update_item(TableName=self.table_name, **update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise await self._run_conflict(
                    run_id, f"expected version {expected_version}"
                ) from exc
            raise
        self._remember(run_id, events[-1].sequence)
        return stored

    async def _append_then_record(
        self,
        run_id: str,
        events: list[Event],
        run: WorkflowRun,
        expected_version: int | None,
        *,
        prev_known: bool,
    ) -> WorkflowRun:
        """A run's ending or suspension without a transaction (which bills every item twice):
        its events by conditional PutItems, in order, then the record by a versioned
        UpdateItem. A worker that dies in between leaves a history ahead of its record, which
        the next drive reconciles: an ending is settled from the history (``Executor``), a
        wait is replayed from it and recorded again. If the record's version moved,
        ``ConcurrencyError`` is raised with the events stored: the history is the truth."""
        expected_version = required_version(expected_version)
        ttl = self._event_ttl(run)
        if not prev_known:
            await self._require_previous(run_id, events[0].sequence)
        for event in events:
            try:
                await self._put(layout.event_item(event, ttl), "attribute_not_exists(SK)")
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    self._remember(run_id, event.sequence)
                    raise ConcurrencyError(
                        f"Run {run_id}: sequence {event.sequence} is taken"
                    ) from exc
                raise
            self._remember(run_id, event.sequence)
        return await self._replace_run(run, expected_version)

    async def _append_first(
        self,
        run_id: str,
        events: list[Event],
        run: WorkflowRun | None,
        expected_version: int | None,
    ) -> WorkflowRun | None:
        """Events from sequence 1 on, for a run created without any: event 1 goes into the run
        item (``attribute_not_exists(e1)``), the rest as event items, in one transaction."""
        e1 = {":e1": s(events[0].model_dump_json(exclude_defaults=True))}
        stored = None
        if run is not None:
            expected_version = required_version(expected_version)
            stored = run.model_copy(update={"version": expected_version + 1}, deep=True)
            update = self._run_update(stored, expected_version)
            update["UpdateExpression"] = update["UpdateExpression"].replace(
                "SET ", "SET #e1 = :e1, ", 1
            )
            update["ConditionExpression"] += " AND attribute_not_exists(#e1)"
        else:
            update = {
                "Key": layout.run_key(run_id),
                "UpdateExpression": "SET #e1 = :e1",
                "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(#e1)",
                "ExpressionAttributeNames": {},
            }
        update["ExpressionAttributeNames"]["#e1"] = layout.E1
        update["ExpressionAttributeValues"] = {**update.get("ExpressionAttributeValues", {}), **e1}
        ttl = self._event_ttl(stored)
        items = [self._tx_update(update)]
        items += [
            self._tx_put(layout.event_item(e, ttl), "attribute_not_exists(SK)") for e in events[1:]
        ]
        if await self._transact(items) is not None:
            raise await self._run_conflict(run_id, "sequence 1 is taken or the version moved")
        return stored

    async def _require_previous(self, run_id: str, first: int) -> None:
        """Unknown history: make sure ``first - 1`` is stored (or, for 1, that the run exists)."""
        if first == 2 and await self._get(layout.run_key(run_id), projection=layout.E1):
            return
        if first > 2 and await self._exists(layout.event_key(run_id, first - 1)):
            return
        if not await self._exists(layout.run_key(run_id)):
            raise WorkflowNotFoundError(run_id)
        if first > 1:
            raise ConcurrencyError(f"Run {run_id}: sequence {first - 1} is missing (no gaps)")

    async def _append_transaction(
        self,
        run_id: str,
        events: list[Event],
        run: WorkflowRun | None,
        expected_version: int | None,
        *,
        prev_known: bool,
    ) -> WorkflowRun | None:
        """Several events, or events and the run: one TransactWriteItems, all or nothing."""
        first = events[0].sequence
        items: list[dict[str, Any]] = []
        kinds: list[str] = []
        stored = None
        if run is not None:
            expected_version = required_version(expected_version)
            stored = run.model_copy(update={"version": expected_version + 1}, deep=True)
            items.append(self._tx_update(self._run_update(stored, expected_version)))
            kinds.append("run")
        elif not prev_known and first == 1:
            items.append(self._tx_exists(layout.run_key(run_id), "PK"))
            kinds.append("run")
        if not prev_known and first == 2:  # event 1 lives in the run item
            items.append(self._tx_exists(layout.run_key(run_id), layout.E1))
            kinds.append("previous")
        elif not prev_known and first > 2:
            items.append(self._tx_exists(layout.event_key(run_id, first - 1), "SK"))
            kinds.append("previous")
        ttl = self._event_ttl(stored)
        for event in events:
            items.append(self._tx_put(layout.event_item(event, ttl), "attribute_not_exists(SK)"))
            kinds.append("event")
        codes = await self._transact(items)
        if codes is None:
            return stored
        failed = {kind for kind, code in zip(kinds, codes, strict=False) if code != "None"}
        if "TransactionConflict" in codes:
            raise ConcurrencyError(f"Run {run_id}: a concurrent transaction won")
        if "run" in failed:
            raise await self._run_conflict(run_id, f"expected version {expected_version}")
        if "event" in failed:
            raise ConcurrencyError(f"Run {run_id}: a sequence in {first}.. is taken")
        raise await self._run_conflict(run_id, f"sequence {first - 1} is missing (no gaps)")

    async def read_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        self.reads += 1
        # the range ends at the run item (``RUN`` sorts after every ``EVT#``): it holds event 1
        # and a finished run's ending (``tail``)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": s(f"RUN#{run_id}"),
                ":lo": s(layout.event_sk(max(after_sequence, 0) + 1)),
                ":hi": s(layout.RUN_SK),
            },
            "ProjectionExpression": "SK, #d, #e1, #tail",
            "ExpressionAttributeNames": {"#d": "data", "#e1": layout.E1, "#tail": layout.TAIL},
            "ConsistentRead": True,
        }
        client = await self._db()
        first: list[str] = []
        chunks: list[str] = []
        tail = None
        while True:  # one request unless the history exceeds 1 MB
            resp = await client.query(**kwargs)
            for item in resp.get("Items", []):
                if item["SK"]["S"] == layout.RUN_SK:
                    if after_sequence < 1 and layout.E1 in item:
                        first.append(item[layout.E1]["S"])
                    if layout.TAIL in item:
                        tail = item[layout.TAIL]["S"]
                else:
                    chunks.append(item["data"]["S"])
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        events = _EVENT_LIST.validate_json("[" + ",".join(first + chunks) + "]")
        if tail is not None:  # the ending wins over event items from its first sequence on
            ending = _EVENT_LIST.validate_json(tail)
            start = ending[0].sequence
            events = [e for e in events if e.sequence < start]
            events += [e for e in ending if e.sequence > after_sequence]
        if events:
            self._remember(run_id, events[-1].sequence)
        return events

    # --- hooks -------------------------------------------------------------------------------
    async def create_hook(self, hook: Hook) -> None:
        self.writes += 1
        stored = hook.model_copy(update={"version": 1}, deep=True)
        await (await self._db()).put_item(
            TableName=self.table_name, Item=layout.hook_item(stored, self.retention_days)
        )

    async def get_hook_by_hash(self, token_hash: str) -> Hook | None:
        self.reads += 1
        item = await self._get(layout.hook_key(token_hash))
        return Hook.model_validate_json(item["data"]["S"]) if item else None

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        self.reads += 1
        filters = {"hook_id": hook_id, "hook_name": name}
        entries = await self._query_merged(
            layout.HOOK_RUN.index,
            layout.HOOK_RUN.keys(run_id),
            want=1,
            filters={k: v for k, v in filters.items() if v is not None},
        )
        return Hook.model_validate_json(entries[0]["data"]["S"]) if entries else None

    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        self.writes += 1
        stored = hook.model_copy(update={"version": expected_version + 1}, deep=True)
        if not await self._put_versioned(
            layout.hook_item(stored, self.retention_days), expected_version
        ):
            raise ConcurrencyError(f"Hook {hook.hook_id} changed concurrently")
        return stored

    async def read_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        self.reads += 1
        if limit <= 0:
            return []
        st = HookStatus(status).value if status is not None else None
        if run_id is not None:
            entries = await self._query_merged(
                layout.HOOK_RUN.index,
                layout.HOOK_RUN.keys(run_id),
                want=limit,
                filters={"st": st} if st else None,
            )
        elif st is not None:
            family = layout.HOOK_STATUS
            entries = await self._query_merged(family.index, family.keys(st), want=limit)
        else:
            family = layout.HOOK_ALL
            entries = await self._query_merged(family.index, family.keys(), want=limit)
        hooks = (Hook.model_validate_json(d) for d in await self._fetch(entries))
        return [
            h
            for h in hooks
            if (run_id is None or h.run_id == run_id) and (st is None or h.status == st)
        ]

    # --- schedules ---------------------------------------------------------------------------
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        self.writes += 1
        stored = schedule.model_copy(update={"version": 1}, deep=True)
        try:
            await self._put(layout.schedule_item(stored), "attribute_not_exists(PK)")
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrencyError(f"Schedule {schedule.schedule_id} already exists") from exc
            raise
        return stored

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        self.reads += 1
        item = await self._get(layout.schedule_key(schedule_id))
        return Schedule.model_validate_json(item["data"]["S"]) if item else None

    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        self.writes += 1
        stored = schedule.model_copy(update={"version": expected_version + 1}, deep=True)
        if not await self._put_versioned(layout.schedule_item(stored), expected_version):
            raise ConcurrencyError(f"Schedule {schedule.schedule_id} changed concurrently")
        return stored

    async def delete_schedule(self, schedule_id: str) -> bool:
        self.writes += 1
        resp = await (await self._db()).delete_item(
            TableName=self.table_name, Key=layout.schedule_key(schedule_id), ReturnValues="ALL_OLD"
        )
        return "Attributes" in resp

    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]:
        self.reads += 1
        if limit <= 0:
            return []
        filters = {"wf": workflow_name, "st": str(status) if status is not None else None}
        entries = await self._query_merged(
            layout.SCHEDULES.index,
            layout.SCHEDULES.keys(),
            want=limit,
            filters={k: v for k, v in filters.items() if v is not None},
        )
        schedules = (Schedule.model_validate_json(d) for d in await self._fetch(entries))
        return [
            sc
            for sc in schedules
            if (workflow_name is None or sc.workflow_name == workflow_name)
            and (status is None or sc.status == str(status))
        ]


def _check_batch(run_id: str, events: list[Event], *, first: int) -> None:
    """Reject malformed batches before any request: events must belong to ``run_id`` and be
    consecutive from ``first`` (the gap-free rule inside the batch)."""
    for offset, event in enumerate(events):
        if event.run_id != run_id:
            raise ValueError(f"Event {event.event_id} belongs to run {event.run_id}")
        if event.sequence != first + offset:
            raise ConcurrencyError(
                f"Run {run_id}: sequence {event.sequence} is out of order "
                f"(expected {first + offset})"
            )

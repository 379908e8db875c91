"""The DynamoDB table behind ``DynamoDBStorageBackend``: client lifecycle and request helpers.

Split from ``dynamodb.py`` so the backend reads as the storage contract, while the mechanics
(one lazily opened client, request counting, conditional puts, transactions, index queries that
merge shards, consistent batch fetches) live here.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from botocore.exceptions import ClientError

from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage import dynamodb_items as layout
from pyworkflow.storage.dynamodb_items import Item, n, s

#: days a finished run is kept when the caller does not say (PYWORKFLOW_RETENTION_DAYS)
DEFAULT_RETENTION_DAYS = 30.0
#: DynamoDB's limit of items in one TransactWriteItems
MAX_TRANSACTION_ITEMS = 100
_NAMES = {"#d": "data", "#v": "version"}
Entry = dict[str, Any]  # an index item as returned by Query


class DynamoDBTable:
    """One DynamoDB table and the one client that talks to it.

    Every setting is an argument: ``pyworkflow.runtime.storage_factory.dynamodb_storage``
    builds one from ``PYWORKFLOW_TABLE``, ``PYWORKFLOW_DYNAMODB_ENDPOINT``, ``AWS_REGION`` and
    ``PYWORKFLOW_RETENTION_DAYS``; a region left out is the session's own. One aioboto3
    client is opened on first use and kept until ``close()``: creating a client costs
    milliseconds, and reusing it reuses its HTTP connections. ``create_table=True`` creates the
    table on first use if it is missing (local stacks and tests; deployments use template.yaml).
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
        if not table_name:
            raise ConfigurationError(
                "DynamoDB storage needs a table name: pass table_name= (or set PYWORKFLOW_TABLE "
                "and build it with pyworkflow.runtime.storage_factory.dynamodb_storage)"
            )
        self.table_name: str = table_name
        self.endpoint_url = endpoint_url or None
        # a local endpoint ignores the region, but botocore wants one
        self.region = region or ("us-east-1" if self.endpoint_url else None)
        self.retention_days = DEFAULT_RETENTION_DAYS if retention_days is None else retention_days
        #: AWS requests sent, by operation name (retries included), for bench/
        self.requests: Counter[str] = Counter()
        self._session = session
        self._create_table = create_table
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

    # --- client ------------------------------------------------------------------------------
    async def _db(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._client_lock:
            if self._client is None:
                session = self._session or aioboto3.Session()
                stack = AsyncExitStack()
                client = await stack.enter_async_context(
                    session.client(
                        "dynamodb", region_name=self.region, endpoint_url=self.endpoint_url
                    )
                )
                # one event per HTTP request, retries included: what AWS bills
                client.meta.events.register("request-created.dynamodb", self._count_request)
                self._stack, self._client = stack, client
                if self._create_table:
                    await self._ensure_table(client)
        return self._client

    def _count_request(self, operation_name: str = "?", **_: Any) -> None:
        self.requests[operation_name] += 1

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @staticmethod
    def table_definition(table_name: str) -> dict[str, Any]:
        """The CreateTable arguments (the same table as template.yaml declares)."""
        return layout.table_definition(table_name)

    async def ensure_table(self) -> bool:
        """Create the table (and enable TTL) unless it exists; True if it was created."""
        return await self._ensure_table(await self._db())

    async def _ensure_table(self, client: Any) -> bool:
        created = False
        try:
            await client.describe_table(TableName=self.table_name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            try:
                await client.create_table(**layout.table_definition(self.table_name))
                created = True
            except ClientError as exc2:  # another process created it first
                if error_code(exc2) != "ResourceInUseException":
                    raise
        for _ in range(600):
            table = (await client.describe_table(TableName=self.table_name))["Table"]
            statuses = [table["TableStatus"]] + [
                g["IndexStatus"] for g in table.get("GlobalSecondaryIndexes", [])
            ]
            if all(st == "ACTIVE" for st in statuses):
                break
            await asyncio.sleep(0.2)
        else:
            raise ConfigurationError(f"DynamoDB table {self.table_name} did not become ACTIVE")
        if created:
            await client.update_time_to_live(
                TableName=self.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )
        return created

    async def delete_table(self) -> None:
        """Drop the table (tests); missing is fine."""
        try:
            await (await self._db()).delete_table(TableName=self.table_name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise

    # --- small request helpers ---------------------------------------------------------------
    async def _get(self, key: Item, projection: str = "#d") -> Item | None:
        names = {k: v for k, v in _NAMES.items() if k in projection} or None
        kwargs: dict[str, Any] = {"ProjectionExpression": projection}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        resp = await (await self._db()).get_item(
            TableName=self.table_name, Key=key, ConsistentRead=True, **kwargs
        )
        item: Item | None = resp.get("Item")
        return item

    async def _exists(self, key: Item) -> bool:
        return await self._get(key, projection="PK") is not None

    async def _put(self, item: Item, condition: str, values: Item | None = None) -> None:
        """A conditional PutItem; ``ConditionalCheckFailedException`` propagates as ClientError."""
        kwargs: dict[str, Any] = {"ConditionExpression": condition}
        if "#v" in condition:
            kwargs["ExpressionAttributeNames"] = {"#v": "version"}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        await (await self._db()).put_item(TableName=self.table_name, Item=item, **kwargs)

    async def _put_versioned(self, item: Item, expected_version: int) -> bool:
        """Replace an item if its stored version is ``expected_version``; False if it was not
        (missing, or another version)."""
        try:
            await self._put(item, "#v = :v", {":v": n(expected_version)})
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """TransactWriteItems; None on success, else the per-item cancellation codes."""
        if len(items) > MAX_TRANSACTION_ITEMS:
            raise ValueError(
                f"{len(items)} writes exceed DynamoDB's {MAX_TRANSACTION_ITEMS} per transaction"
            )
        try:
            await (await self._db()).transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            codes = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            if any(
                c not in ("None", "ConditionalCheckFailed", "TransactionConflict") for c in codes
            ):
                raise
            return codes or ["ConditionalCheckFailed"]
        return None

    def _tx_put(self, item: Item, condition: str, values: Item | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": item,
            "ConditionExpression": condition,
        }
        if "#v" in condition:
            put["ExpressionAttributeNames"] = {"#v": "version"}
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _tx_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """A transaction item from ``layout.run_update``-style UpdateItem arguments."""
        return {"Update": {"TableName": self.table_name, **update}}

    def _tx_exists(self, key: Item, attribute: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": key,
                "ConditionExpression": f"attribute_exists({attribute})",
            }
        }

    # --- index queries -----------------------------------------------------------------------
    async def _query_merged(
        self, index: str, pks: list[str], *, want: int, **kwargs: Any
    ) -> list[Entry]:
        """Up to ``want`` index entries from the partitions ``pks``, merged in sort order (each
        partition is sorted, so its first ``want`` entries hold all of its candidates)."""
        sk = layout.INDEXES[index][1]
        if len(pks) == 1:
            return await self._query_index(index, pks[0], want=want, **kwargs)
        parts = await asyncio.gather(
            *(self._query_index(index, pk, want=want, **kwargs) for pk in pks)
        )
        merged = sorted(
            (e for part in parts for e in part),
            key=lambda e: e[sk]["S"],
            reverse=not kwargs.get("ascending", False),
        )
        return merged[:want]

    async def _query_index(
        self,
        index: str,
        pk: str,
        *,
        want: int,
        sk_below: str | None = None,
        sk_above: str | None = None,
        ascending: bool = False,
        filters: dict[str, str] | None = None,
        filter_expr: str | None = None,
        filter_names: dict[str, str] | None = None,
        filter_values: Item | None = None,
    ) -> list[Entry]:
        """Query one index partition (newest first unless ``ascending``), only entries whose sort
        key is below ``sk_below`` (and above ``sk_above``), until ``want`` pass the filter or the
        partition ends."""
        pk_attr, sk_attr = layout.INDEXES[index]
        names = {"#pk": pk_attr, **(filter_names or {})}
        values: Item = {":pk": s(pk), **(filter_values or {})}
        condition = "#pk = :pk"
        if sk_below is not None and sk_above is not None:
            # BETWEEN is inclusive: the entry at sk_above is dropped below, and none sits at
            # sk_below ('$' is never part of a stored key)
            condition += " AND #sk BETWEEN :above AND :below"
        elif sk_below is not None:
            condition += " AND #sk < :below"
        elif sk_above is not None:
            condition += " AND #sk > :above"
        if sk_below is not None:
            values[":below"] = s(sk_below)
        if sk_above is not None:
            values[":above"] = s(sk_above)
        if sk_below is not None or sk_above is not None:
            names["#sk"] = sk_attr
        clauses = [filter_expr] if filter_expr else []
        for i, (attr, value) in enumerate((filters or {}).items()):
            names[f"#f{i}"], values[f":f{i}"] = attr, s(value)
            clauses.append(f"#f{i} = :f{i}")
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": ascending,
            # Limit counts entries read before the filter: read a few pages' worth when filtering
            "Limit": want if not clauses else max(want * 4, 100),
        }
        if clauses:
            kwargs["FilterExpression"] = " AND ".join(f"({c})" for c in clauses)
        client = await self._db()
        found: list[Entry] = []
        while True:
            resp = await client.query(**kwargs)
            found.extend(
                i for i in resp.get("Items", []) if sk_above is None or i[sk_attr]["S"] != sk_above
            )
            last = resp.get("LastEvaluatedKey")
            if len(found) >= want or not last:
                return found[:want]
            kwargs["ExclusiveStartKey"] = last

    async def _fetch(self, entries: list[Entry]) -> list[str]:
        """The ``data`` of each entry's record, in order: from the entry when the index holds it,
        else by consistent BatchGetItem (records gone since, e.g. by TTL, are skipped)."""
        missing = [e for e in entries if "data" not in e]
        found: dict[tuple[str, str], str] = {}
        client = await self._db()
        for start in range(0, len(missing), 100):  # BatchGetItem takes 100 keys
            keys = [{"PK": e["PK"], "SK": e["SK"]} for e in missing[start : start + 100]]
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": "PK, SK, #d",
                    "ExpressionAttributeNames": {"#d": "data"},
                }
            }
            for attempt in range(20):
                resp = await client.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    found[(item["PK"]["S"], item["SK"]["S"])] = item["data"]["S"]
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))  # throttled: back off
        out: list[str] = []
        for e in entries:
            data = e["data"]["S"] if "data" in e else found.get((e["PK"]["S"], e["SK"]["S"]))
            if data is not None:
                out.append(data)
        return out


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

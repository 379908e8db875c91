"""AWS requests and cost per step: workflows driven through ``pyworkflow/handlers/worker.py``
against DynamoDB Local and a moto server (SQS + EventBridge Scheduler), every request counted.

Scenarios: a 10-step workflow; 2 steps around a 2 s sleep through EventBridge Scheduler
(``PYWORKFLOW_SQS_DELAY_MAX_SECONDS=0``; the pump fires the schedule once due); the same sleep
through SQS ``DelaySeconds``; a continue-as-new chain (5 runs x 2 steps). Runs are started by a
client-side ``AwsRuntime`` (as an API would) and delivered to the worker by
``pyworkflow.dev.pumps``, which plays Lambda's SQS event source mapping (ESM) and the Scheduler.

Counting: every HTTP request any aiobotocore client in this process sends (retries included,
i.e. what AWS bills) is counted by service, operation and *client* (the endpoint object that
sent it), so the user's requests (worker + client runtime) are kept apart from the harness's:
the ESM's ReceiveMessage/DeleteMessageBatch are billed SQS requests too, but they are polling
(up to 10 messages a batch, long polls while idle), so they are reported separately as
amortised, not in the per-step figures. The pyworkflow counters (``storage.requests``,
``dispatcher.requests``) are checked against this count.

DynamoDB cost two ways: the simple model (1 WRU per write and 2 per transaction item, items
<= 1 KB, 1 RRU per GetItem/Query, no index writes) and the capacity DynamoDB Local reports when
asked (``ReturnConsumedCapacity=INDEXES``, added to each request by this bench: real item
sizes and global secondary index maintenance, which AWS bills too). Lambda duration is never
included. ``--trace`` lists the requests of one run per scenario, with their capacity.

    python bench/aws_requests.py [--runs 20] [--other-runs 5] [--batch-size 10] [--trace]

Needs Java 17 and npm (DynamoDB Local, see pyworkflow/dev/dynamodb_local.py). Everything listens on
127.0.0.1 and is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REGION = "us-east-1"
# Before Powertools is imported (by pyworkflow.handlers.worker): no per-message JSON logs or EMF
# blobs.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_DEV", "false")

from aiobotocore.endpoint import AioEndpoint  # type: ignore[import-untyped]  # noqa: E402

from pyworkflow import config, continue_as_new, hook, sleep, step, workflow  # noqa: E402
from pyworkflow.core.models import RunStatus  # noqa: E402
from pyworkflow.dev import moto_server  # noqa: E402
from pyworkflow.dev.pumps import PumpResult, fire_due_schedules, pump_queue  # noqa: E402

# --- list prices (us-east-1), $ per request/unit -------------------------------------------
WRU = 0.625e-6  # DynamoDB on-demand write request unit (item <= 1 KB)
RRU = 0.125e-6  # DynamoDB on-demand read request unit (strongly consistent, <= 4 KB)
SQS = 0.40e-6  # SQS standard, per request (64 KB chunk)
SCHEDULER = 1.00e-6  # EventBridge Scheduler, per schedule invocation (API calls are free)
LAMBDA = 0.20e-6  # Lambda, per request (duration excluded)

GOAL_WRITES_PER_STEP = 1.1
GOAL_COST_PER_M_STEPS = 0.80
ANCHORS = [
    ("AWS Step Functions standard ($25/M transitions)", 25.0),
    ("Lambda durable functions (approx.)", 9.0),
]
ENGINE_019_CALLS_PER_10_STEP_RUN = 59  # pyworkflow-engine 0.1.9, DynamoDB backend

DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
DDB_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


# --- workflows (the worker finds them in this process's registry) -----------------------------
STEPS: Counter[str] = Counter()  # step executions by scenario


@step
async def bench_add(scenario: str, i: int, total: int) -> int:
    STEPS[scenario] += 1
    return total + i


@workflow(name="bench_ten_steps")
async def ten_steps() -> int:
    total = 0
    for i in range(10):
        total = await bench_add("ten_steps", i, total)
    return total


@workflow(name="bench_sleeper")
async def sleeper(scenario: str, seconds: float) -> int:
    before = await bench_add(scenario, 1, 0)
    await sleep(seconds)
    return await bench_add(scenario, 2, before)


@workflow(name="bench_hook")
async def hooked() -> int:
    before = await bench_add("hook", 1, 0)
    payload = await hook("approval")
    return await bench_add("hook", int(payload["add"]), before)


@workflow(name="bench_chain")
async def chain(i: int, links: int) -> int:
    total = await bench_add("chain", i, 0)
    total = await bench_add("chain", i, total)
    if i + 1 < links:
        continue_as_new(i + 1, links)
    return total


# --- request counting ---------------------------------------------------------------------
@dataclass
class Tally:
    """Requests per (endpoint, "service.Operation"); DynamoDB capacity units per endpoint as
    DynamoDB Local reports them (``ReturnConsumedCapacity=INDEXES``: item sizes, the x2 of
    transactions and the writes to global secondary indexes included); a log for ``--trace``."""

    requests: Counter[tuple[int, str]] = field(default_factory=Counter)
    wru_table: defaultdict[Any, float] = field(default_factory=lambda: defaultdict(float))
    wru_index: defaultdict[Any, float] = field(default_factory=lambda: defaultdict(float))
    rru: defaultdict[Any, float] = field(default_factory=lambda: defaultdict(float))
    estimated: Counter[int] = field(default_factory=Counter)  # answers without capacity
    # the simple price model (items <= 1 KB, transactional x2, no index writes)
    wru_model: defaultdict[Any, float] = field(default_factory=lambda: defaultdict(float))
    rru_model: defaultdict[Any, float] = field(default_factory=lambda: defaultdict(float))
    # reported WRU and request count by "Operation item-kinds", all clients
    wru_by_op: defaultdict[Any, float] = field(default_factory=lambda: defaultdict(float))
    writes_by_op: Counter[str] = field(default_factory=Counter)
    log: list[list[Any]] = field(default_factory=list)

    def clear(self) -> None:
        for counter in (
            self.requests,
            self.wru_table,
            self.wru_index,
            self.rru,
            self.estimated,
            self.wru_by_op,
            self.writes_by_op,
            self.wru_model,
            self.rru_model,
        ):
            counter.clear()
        self.log.clear()


TALLY = Tally()
_EMPTY: dict[str, int] = {}  # empty ESM receives per scenario
DDB_CAPACITY_OPS = DDB_WRITES | DDB_READS


def _estimate(operation: str, params: dict[str, Any]) -> tuple[float, float]:
    """(WRU, RRU) at the simple price model (items <= 1 KB, transactional x2 per item, Query ~
    1 RRU, index writes not counted); also used when an answer carries no ConsumedCapacity."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 1.0, 0.0
    if operation == "TransactWriteItems":
        return 2.0 * len(params.get("TransactItems", [])), 0.0
    if operation in ("GetItem", "Query", "Scan"):
        return 0.0, 1.0
    return 0.0, 0.0


def _item_kind(params: dict[str, Any]) -> str:
    """ "run", "event", "run+event"...: what a write touches (by sort key)."""

    def kind(item: dict[str, Any]) -> str:
        sk = str(item.get("SK", {}).get("S", "?"))
        return "event" if sk.startswith("EVT#") else sk.lower()

    if "Item" in params or "Key" in params:
        return kind(params.get("Item") or params["Key"])
    return "+".join(
        kind(body.get("Item") or body.get("Key") or {})
        for item in params.get("TransactItems", [])
        for body in item.values()
    )


def _describe(service: str, operation: str, params: dict[str, Any], url: str) -> str:
    """A short line for ``--trace``: which items or message a request touches."""

    def key(item: dict[str, Any]) -> str:
        return f"{item.get('PK', {}).get('S', '?')}/{item.get('SK', {}).get('S', '?')}"

    if service == "dynamodb":
        if "Item" in params:
            return f"{key(params['Item'])} if {params.get('ConditionExpression', '-')}"
        if "Key" in params:
            return key(params["Key"])
        if "TransactItems" in params:
            return "; ".join(
                f"{kind} {key(body.get('Item') or body.get('Key') or {})}"
                for item in params["TransactItems"]
                for kind, body in item.items()
            )
        if operation == "Query":
            values = params.get("ExpressionAttributeValues", {})
            return f"{params.get('IndexName', 'table')}: " + ", ".join(
                str(v.get("S", v.get("N"))) for v in values.values()
            )
        return ""
    if service == "sqs":
        delay = params.get("DelaySeconds")
        return f"{params.get('MessageBody', '')}" + (f" DelaySeconds={delay}" if delay else "")
    return url.split("?")[0]


_original_send_request = AioEndpoint._send_request
_original_create_request = AioEndpoint.create_request


async def _counting_create_request(
    self: AioEndpoint, params: dict[str, Any], operation_model: Any = None
) -> Any:
    """Called once per HTTP attempt (botocore re-creates the request on every retry)."""
    if operation_model is not None:
        service = operation_model.service_model.endpoint_prefix
        TALLY.requests[(id(self), f"{service}.{operation_model.name}")] += 1
    return await _original_create_request(self, params, operation_model)


async def _measuring_send_request(
    self: AioEndpoint, request_dict: dict[str, Any], operation_model: Any
) -> Any:
    """Once per operation: ask DynamoDB for its consumed capacity, log the request."""
    service = operation_model.service_model.endpoint_prefix
    operation = operation_model.name
    try:
        params = json.loads(request_dict.get("body") or b"{}")
    except (TypeError, ValueError):
        params = {}
    if service == "dynamodb" and operation in DDB_CAPACITY_OPS:
        params["ReturnConsumedCapacity"] = "INDEXES"
        request_dict["body"] = json.dumps(params).encode()
    entry = [
        id(self),
        f"{service}.{operation}",
        _describe(service, operation, params, request_dict.get("url_path", "")),
        json.dumps(params) + request_dict.get("url_path", ""),
        "",
    ]
    TALLY.log.append(entry)
    response = await _original_send_request(self, request_dict, operation_model)
    if service == "dynamodb" and operation in DDB_CAPACITY_OPS:
        wru, rru = _estimate(operation, params)
        TALLY.wru_model[id(self)] += wru
        TALLY.rru_model[id(self)] += rru
        parsed = response[1] if response else {}
        consumed = parsed.get("ConsumedCapacity")
        if isinstance(consumed, dict):
            consumed = [consumed]
        if consumed:
            write = operation in DDB_WRITES
            for c in consumed:
                table = float(c.get("Table", {}).get("CapacityUnits", c.get("CapacityUnits", 0)))
                index = sum(
                    float(g.get("CapacityUnits", 0))
                    for g in (
                        *c.get("GlobalSecondaryIndexes", {}).values(),
                        *c.get("LocalSecondaryIndexes", {}).values(),
                    )
                )
                if write:
                    TALLY.wru_table[id(self)] += table
                    TALLY.wru_index[id(self)] += index
                    TALLY.wru_by_op[f"{operation} {_item_kind(params)}"] += table + index
                    TALLY.writes_by_op[f"{operation} {_item_kind(params)}"] += 1
                    entry[4] = f"{table:g}+{index:g} GSI WRU"
                else:
                    TALLY.rru[id(self)] += table + index
                    entry[4] = f"{table + index:g} RRU"
        else:
            entry[4] = "no capacity returned"
            wru, rru = _estimate(operation, params)
            TALLY.wru_table[id(self)] += wru
            TALLY.rru[id(self)] += rru
            TALLY.estimated[id(self)] += 1
    return response


AioEndpoint.create_request = _counting_create_request  # type: ignore[method-assign]
AioEndpoint._send_request = _measuring_send_request  # type: ignore[method-assign]


def endpoint_of(client: Any) -> int | None:
    return id(client._endpoint) if client is not None else None


# --- the stack ------------------------------------------------------------------------------
@dataclass
class Bench:
    stack: moto_server.AwsStack
    worker: Any  # pyworkflow.handlers.worker (one "container", reset between scenarios)
    client: Any  # AwsOps: the API side (start)
    esm_sqs: Any  # the pump's SQS client (Lambda's event source mapping)
    sched_sqs: Any  # the Scheduler stand-in's clients (fires due schedules)
    sched: Any
    probe: Any  # a harness storage for checking run status (not billed)
    batch_size: int


#: (seconds, messages) of every worker invocation: the measured drive duration
INVOCATIONS: list[tuple[float, int]] = []


async def pump(b: Bench, **kwargs: Any) -> PumpResult:
    def timed(event: dict[str, Any], context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return b.worker.handler(event, context)
        finally:
            INVOCATIONS.append((time.perf_counter() - t0, len(event.get("Records", []))))

    kwargs.setdefault("wait_seconds", 0)
    kwargs.setdefault("idle_polls", 2)
    kwargs.setdefault("max_invocations", 10_000)
    return await pump_queue(
        timed,
        b.stack.queue_url,
        sqs=b.esm_sqs,
        queue_arn=b.stack.queue_arn,
        region=REGION,
        batch_size=b.batch_size,
        **kwargs,
    )


def add(total: PumpResult, more: PumpResult) -> None:
    total.invocations += more.invocations
    total.received += more.received
    total.deleted += more.deleted
    total.failed += more.failed


async def until_ended(b: Bench, run_ids: list[str]) -> Callable[[], Awaitable[bool]]:
    pending = set(run_ids)

    async def ended() -> bool:
        for run_id in list(pending):
            run = await b.probe.get_run(run_id)
            if run is not None and run.status.is_terminal:
                pending.discard(run_id)
        return not pending

    return ended


async def expect(b: Bench, run_ids: list[str], result: Any) -> None:
    for run_id in run_ids:
        run = await b.probe.get_run(run_id)
        if run is None or run.status != RunStatus.COMPLETED or run.get_result() != result:
            raise SystemExit(
                f"bench: run {run_id} did not complete as expected: "
                f"{run and run.status} {run and run.error}"
            )


# --- scenarios ------------------------------------------------------------------------------
async def scenario_ten_steps(b: Bench, runs: int) -> tuple[list[str], PumpResult]:
    ids = [await b.client.start(ten_steps) for _ in range(runs)]
    result = await pump(b)
    await expect(b, ids, sum(range(10)))
    return ids, result


async def scenario_sleep_scheduler(b: Bench, runs: int) -> tuple[list[str], PumpResult]:
    ids = [await b.client.start(sleeper, "sleep_scheduler", 2) for _ in range(runs)]
    result = await pump(b)
    wakes = []
    for run_id in ids:
        run = await b.probe.get_run(run_id)
        if run is None or run.status != RunStatus.SUSPENDED or run.wake_at is None:
            raise SystemExit(f"bench: run {run_id} should be suspended on its sleep: {run}")
        wakes.append(run.wake_at)
    # at(...) has second precision, rounded up: wait past the latest wake time, then fire.
    await asyncio.sleep(max(0.0, (max(wakes) - datetime.now(UTC)).total_seconds()) + 1.2)
    fired = await fire_due_schedules(
        b.sched, b.sched_sqs, datetime.now(UTC), group=b.stack.scheduler_group
    )
    if len(fired) != runs:
        raise SystemExit(f"bench: {len(fired)} schedules fired, expected {runs}")
    add(result, await pump(b, stop_when=await until_ended(b, ids), idle_polls=5, wait_seconds=1))
    await expect(b, ids, 3)
    return ids, result


async def scenario_sleep_sqs_delay(b: Bench, runs: int) -> tuple[list[str], PumpResult]:
    ids = [await b.client.start(sleeper, "sleep_sqs_delay", 2) for _ in range(runs)]
    result = await pump(b, stop_when=await until_ended(b, ids), idle_polls=8, wait_seconds=1)
    await expect(b, ids, 3)
    return ids, result


async def scenario_hook(b: Bench, runs: int) -> tuple[list[str], PumpResult]:
    ids = [await b.client.start(hooked) for _ in range(runs)]
    result = await pump(b)
    for run_id in ids:  # as an API call would: the client runtime resumes the hook by name
        await b.client.resume_hook_by_name(run_id, "approval", {"add": 2})
    add(result, await pump(b, stop_when=await until_ended(b, ids), idle_polls=5, wait_seconds=1))
    await expect(b, ids, 3)
    return ids, result


CHAIN_LINKS = 5


async def scenario_chain(b: Bench, runs: int) -> tuple[list[str], PumpResult]:
    ids = [await b.client.start(chain, 0, CHAIN_LINKS) for _ in range(runs)]
    result = await pump(b)
    for first in ids:
        links = await b.probe.get_workflow_chain(first)
        statuses = [r.status for r in links]
        want = [RunStatus.CONTINUED_AS_NEW] * (CHAIN_LINKS - 1) + [RunStatus.COMPLETED]
        if statuses != want:
            raise SystemExit(f"bench: chain {first} ended as {statuses}")
    return ids, result


@dataclass
class Scenario:
    name: str
    label: str
    run: Callable[[Bench, int], Awaitable[tuple[list[str], PumpResult]]]
    runs_arg: str
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""


SCENARIOS = [
    Scenario("ten_steps", "10 steps", scenario_ten_steps, "runs"),
    Scenario(
        "sleep_scheduler",
        "2 steps + 2 s sleep (Scheduler)",
        scenario_sleep_scheduler,
        "other_runs",
        {config.ENV_SQS_DELAY_MAX: "0"},
    ),
    Scenario(
        "sleep_sqs_delay", "2 steps + 2 s sleep (SQS delay)", scenario_sleep_sqs_delay, "other_runs"
    ),
    Scenario(
        "chain", f"continue-as-new {CHAIN_LINKS} runs x 2 steps", scenario_chain, "other_runs"
    ),
    Scenario("hook", "2 steps around a hook (resumed by name)", scenario_hook, "other_runs"),
]


@dataclass
class Figures:
    scenario: Scenario
    runs: int  # workflow runs started by the client (a chain counts once)
    steps: int
    pumped: PumpResult
    user: Counter[str]  # worker + client runtime requests by "service.Operation"
    by_client: dict[str, Counter[str]]
    wru_table: float
    wru_index: float
    rru: float
    wru_model: float
    rru_model: float
    estimated: int
    wru_by_op: list[tuple[str, int, float]]  # (write kind, requests, WRU)
    checks: list[str]
    trace: list[str]
    elapsed: float
    ms_per_message: float  # worker invocation time per message it drove

    def as_data(self) -> dict[str, Any]:
        """The counts as data (``--json``; ``tests/bench`` compares them with
        ``bench/capacity.py``'s model): per run, the user's requests by ``service.Operation``,
        the messages the worker received, the index WRU DynamoDB Local reported; and the
        elapsed milliseconds per message driven."""
        return {
            "runs": self.runs,
            "steps": self.steps,
            "requests_per_run": {op: c / self.runs for op, c in sorted(self.user.items()) if c},
            "messages_per_run": self.pumped.received / self.runs,
            "wru_index_per_run": self.wru_index / self.runs,
            "ms_per_message": self.ms_per_message,
        }


USER_LABELS = (
    "worker storage",
    "worker dispatcher",
    "client storage",
    "client dispatcher",
    "UNKNOWN client",
)


async def measure(b: Bench, sc: Scenario, runs: int, *, trace: bool) -> Figures:
    for name, value in sc.env.items():
        os.environ[name] = value
    await asyncio.to_thread(b.worker.reset)  # a fresh container: reads its env on first message
    client_ddb0 = Counter(b.client.storage.requests)
    client_disp0 = Counter(b.client.dispatcher.requests)
    TALLY.clear()
    INVOCATIONS.clear()
    _EMPTY[sc.name] = 0
    b.esm_sqs._bench_scenario = sc.name
    steps0 = STEPS[sc.name]
    t0 = time.perf_counter()
    try:
        ids, pumped = await sc.run(b, runs)
    finally:
        for name in sc.env:
            os.environ.pop(name, None)
    elapsed = time.perf_counter() - t0
    requests = Counter(TALLY.requests)
    log = list(TALLY.log)
    runtime = b.worker._runtime
    labels: dict[int | None, str] = {
        endpoint_of(b.client.storage._client): "client storage",
        endpoint_of(b.client.dispatcher.clients.opened.get("sqs")): "client dispatcher",
        endpoint_of(b.client.dispatcher.clients.opened.get("scheduler")): "client dispatcher",
        endpoint_of(b.esm_sqs): "ESM pump",
        endpoint_of(b.sched_sqs): "Scheduler stand-in",
        endpoint_of(b.sched): "Scheduler stand-in",
        endpoint_of(b.probe._client): "bench probe",
    }
    if runtime is not None:
        labels[endpoint_of(runtime.storage._client)] = "worker storage"
        for client in runtime.dispatcher.clients.opened.values():
            labels[endpoint_of(client)] = "worker dispatcher"
    labels.pop(None, None)
    by_client: dict[str, Counter[str]] = {}
    for (endpoint, op), count in requests.items():
        by_client.setdefault(labels.get(endpoint, "UNKNOWN client"), Counter())[op] += count
    user: Counter[str] = Counter()
    for label in USER_LABELS:
        user.update(by_client.get(label, Counter()))
    billed = {e for e, _ in requests if labels.get(e, "UNKNOWN client") in USER_LABELS}
    # cross-check against pyworkflow's own counters
    checks = []
    ddb_counted: Counter[str] = Counter()
    disp_counted: Counter[str] = Counter()
    if runtime is not None:
        ddb_counted.update(runtime.storage.requests)
        disp_counted.update(runtime.dispatcher.requests)
    ddb_counted.update(Counter(b.client.storage.requests) - client_ddb0)
    disp_counted.update(Counter(b.client.dispatcher.requests) - client_disp0)
    hooked_ddb = Counter(
        {op.split(".", 1)[1]: c for op, c in user.items() if op.startswith("dynamodb.")}
    )
    hooked_disp = Counter({op: c for op, c in user.items() if not op.startswith("dynamodb.")})
    checks.append(
        "storage.requests "
        + ("agree" if +ddb_counted == +hooked_ddb else f"DIFFER: {dict(ddb_counted)}")
    )
    checks.append(
        "dispatcher.requests "
        + ("agree" if +disp_counted == +hooked_disp else f"DIFFER: {dict(disp_counted)}")
    )
    if "UNKNOWN client" in by_client:
        checks.append("requests from an unlabelled client counted as the user's")
    lines: list[str] = []
    if trace and ids:
        follow = [r.run_id for r in await b.probe.get_workflow_chain(ids[0])] or ids[:1]
        for endpoint, op, what, raw, units in log:
            label = labels.get(endpoint, "UNKNOWN client")
            if label in USER_LABELS and any(run_id in raw for run_id in follow):
                lines.append(f"{label:18} {op:30} {units:14} {what}")
    return Figures(
        scenario=sc,
        runs=runs,
        steps=STEPS[sc.name] - steps0,
        pumped=pumped,
        user=user,
        by_client=by_client,
        wru_table=sum(v for e, v in TALLY.wru_table.items() if e in billed),
        wru_index=sum(v for e, v in TALLY.wru_index.items() if e in billed),
        rru=sum(v for e, v in TALLY.rru.items() if e in billed),
        wru_model=sum(v for e, v in TALLY.wru_model.items() if e in billed),
        rru_model=sum(v for e, v in TALLY.rru_model.items() if e in billed),
        estimated=sum(v for e, v in TALLY.estimated.items() if e in billed),
        wru_by_op=sorted(
            ((k, TALLY.writes_by_op[k], v) for k, v in TALLY.wru_by_op.items()), key=lambda t: -t[2]
        ),
        checks=checks,
        trace=lines,
        elapsed=elapsed,
        ms_per_message=1000.0
        * sum(s for s, _ in INVOCATIONS)
        / max(1, sum(m for _, m in INVOCATIONS)),
    )


# --- report ---------------------------------------------------------------------------------
def ops(counter: Counter[str], prefix: str) -> int:
    return sum(c for op, c in counter.items() if op.startswith(prefix))


def report(f: Figures, batch_size: int) -> dict[str, float]:
    u, steps, inv = f.user, f.steps, f.pumped.invocations
    messages = f.pumped.received
    ddb_writes = sum(u[f"dynamodb.{op}"] for op in DDB_WRITES)
    ddb_reads = sum(u[f"dynamodb.{op}"] for op in DDB_READS)
    scans = u["dynamodb.Scan"]
    history_queries = min(u["dynamodb.Query"], messages)  # one per message driven
    other_reads = ddb_reads - history_queries
    sqs_user = ops(u, "sqs.")
    creates = u["scheduler.CreateSchedule"]
    wru = f.wru_table + f.wru_index
    others = {
        "SQS": sqs_user * SQS,
        "Scheduler": creates * SCHEDULER,
        "Lambda requests": inv * LAMBDA,
    }
    cost = {"DynamoDB writes": f.wru_model * WRU, "DynamoDB reads": f.rru_model * RRU, **others}
    measured = {"DynamoDB writes": wru * WRU, "DynamoDB reads": f.rru * RRU, **others}
    total = sum(cost.values())
    total_measured = sum(measured.values())
    esm = f.by_client.get("ESM pump", Counter())
    stand_in = f.by_client.get("Scheduler stand-in", Counter())
    esm_billed = ops(esm, "sqs.") + stand_in["sqs.SendMessage"]
    per_m = 1e6 / steps
    sc = f.scenario
    print(
        f"\n== {sc.label}: {f.runs} runs, {steps} steps ({steps / f.runs:g}/run), "
        f"{inv} Lambda invocations for {messages} messages (ESM batch <= {batch_size}), "
        f"{f.elapsed:.1f} s, worker {f.ms_per_message:.0f} ms per message"
    )
    print(f"   {'request':32} {'total':>6} {'/run':>7} {'/step':>7}   sent by")
    for op in sorted(u):
        who = ", ".join(
            sorted(lab for lab, c in f.by_client.items() if c.get(op) and lab in USER_LABELS)
        )
        print(f"   {op:32} {u[op]:6} {u[op] / f.runs:7.2f} {u[op] / steps:7.3f}   {who}")
    print(f"   {'Lambda invocations':32} {inv:6} {inv / f.runs:7.2f} {inv / steps:7.3f}")
    w = ddb_writes / steps
    print(
        f"   DynamoDB writes/step: {w:.3f} requests (goal <= {GOAL_WRITES_PER_STEP}: "
        f"{_ok(w <= GOAL_WRITES_PER_STEP)}); WRU/step: {f.wru_model / steps:.3f} at <= 1 KB "
        f"(transactions x2), {wru / steps:.3f} as DynamoDB Local reports = "
        f"{f.wru_table / steps:.3f} table + {f.wru_index / steps:.3f} GSI maintenance"
    )
    print(
        "   WRU by write (requests x WRU each): "
        + ", ".join(f"{kind} {n} x {units / n:.1f}" for kind, n, units in f.wru_by_op)
    )
    print(
        f"   DynamoDB reads/step beyond one history Query per message: "
        f"{other_reads / steps:.3f} ({ddb_reads} reads - {history_queries} history Queries "
        f"= {other_reads}) (goal 0: {_ok(other_reads == 0)}); RRU/step {f.rru_model / steps:.3f}"
        f" (model), {f.rru / steps:.3f} (reported)"
    )
    print(
        f"   Scans: {scans} (goal 0: {_ok(scans == 0)}); DynamoDB requests per run: "
        f"{(ddb_writes + ddb_reads) / f.runs:.1f}"
        + (f"; {f.estimated} answers without ConsumedCapacity estimated" if f.estimated else "")
    )
    for title, costs in (
        ("model: items <= 1 KB, no GSI writes", cost),
        ("DynamoDB Local's consumed capacity: item sizes + GSI writes", measured),
    ):
        t = sum(costs.values())
        print(f"   $/M steps, {title}:")
        print(
            "     "
            + ", ".join(f"{k} {v * per_m:.3f}" for k, v in costs.items())
            + f" => ${t * per_m:.3f}/M steps (goal <= ${GOAL_COST_PER_M_STEPS:.2f}: "
            f"{_ok(t * per_m <= GOAL_COST_PER_M_STEPS)}), ${t * 1e6 / f.runs:.2f}/M runs"
        )
    esm_ops = ", ".join(f"{op.split('.', 1)[1]} {c}" for op, c in sorted(esm.items()))
    print(
        f"   Lambda ESM polling (billed SQS, amortised; not above): {esm_ops} "
        f"({_EMPTY.get(sc.name, 0)} of the receives empty)"
    )
    if stand_in:
        print(
            "   Scheduler stand-in: "
            + ", ".join(f"{op} {c}" for op, c in sorted(stand_in.items()))
            + " (AWS bills only the target SendMessage, to the queue owner)"
        )
    print(
        f"   ESM + Scheduler delivery as measured: {esm_billed} SQS requests = "
        f"${esm_billed * SQS * per_m:.3f}/M steps (Lambda duration is never included)"
    )
    print(f"   cross-check: {'; '.join(f.checks)}")
    if f.trace:
        print("   trace of the first run" + (" chain" if sc.name == "chain" else "") + ":")
        for line in f.trace:
            print(f"     {line}")
    return {
        "steps": steps,
        "cost": total,
        "measured": total_measured,
        "writes": ddb_writes,
        "runs": f.runs,
        "ddb": ddb_writes + ddb_reads,
        "wru": wru,
    }


def _ok(good: bool) -> str:
    return "ok" if good else "MISSED"


async def run_all(args: argparse.Namespace) -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    from pyworkflow.dev.dynamodb_local import DynamoDBLocalError, running

    try:
        with running() as ddb, moto_server.start() as moto:
            for name, value in {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL_SQS": moto.endpoint_url,
                "AWS_ENDPOINT_URL_SCHEDULER": moto.endpoint_url,
                "POWERTOOLS_METRICS_NAMESPACE": "pyworkflow-bench",
            }.items():
                os.environ[name] = value
            os.environ.pop("AWS_PROFILE", None)
            stack = moto_server.create_stack(
                moto.endpoint_url,
                "bench",
                region=REGION,
                visibility_timeout=30,
                max_receive_count=4,
            )
            os.environ.update(stack.env())
            os.environ[config.ENV_MODULE] = ""  # workflows are already registered here
            os.environ[config.ENV_MAX_RECEIVES] = "3"
            os.environ[config.ENV_STORAGE] = "dynamodb"
            os.environ[config.ENV_DYNAMODB_TABLE] = "pw-bench"
            os.environ[config.ENV_DYNAMODB_ENDPOINT] = ddb.endpoint_url
            os.environ.pop(config.ENV_SQS_DELAY_MAX, None)
            await bench(args, stack)
    except DynamoDBLocalError as exc:
        raise SystemExit(f"bench: {exc}") from None


async def bench(args: argparse.Namespace, stack: moto_server.AwsStack) -> None:
    import aioboto3  # type: ignore[import-untyped]

    from pyworkflow.handlers import worker
    from pyworkflow.runtime.aws import AwsRuntime
    from pyworkflow.runtime.storage_factory import dynamodb_backend
    from pyworkflow.settings import get_settings
    from pyworkflow.transport.aws import AwsDispatcher

    session = aioboto3.Session()
    storage = dynamodb_backend(get_settings(), create_table=True)
    await storage.ensure_table()
    probe = dynamodb_backend(get_settings())
    from tests.aws.ops import AwsOps  # the service's start, on this runtime

    client = AwsOps(AwsRuntime(storage, AwsDispatcher.from_env(session=session)))
    worker.reset()
    try:
        async with (
            session.client("sqs") as esm_sqs,
            session.client("sqs") as sched_sqs,
            session.client("scheduler") as sched,
        ):
            b = Bench(
                stack=stack,
                worker=worker,
                client=client,
                esm_sqs=esm_sqs,
                sched_sqs=sched_sqs,
                sched=sched,
                probe=probe,
                batch_size=args.batch_size,
            )
            hook_empty_receives(esm_sqs)
            await probe.get_run("run_warmup")  # open the probe's client (not counted below)
            out = sys.stderr if args.json else sys.stdout
            print(
                f"pyworkflow AWS requests per step: DynamoDB Local + moto {REGION}, "
                f"ESM batch size {args.batch_size}",
                file=out,
            )
            print(
                "prices: DynamoDB on-demand $0.625/M WRU, $0.125/M RRU (transactional x2, "
                "items <= 1 KB, Query ~ 1 RRU); SQS $0.40/M; Scheduler $1.00/M invocations "
                "(CreateSchedule counted as one); Lambda $0.20/M requests, duration excluded",
                file=out,
            )
            totals = []
            data = {}
            for sc in SCENARIOS:
                if args.only and sc.name not in args.only:
                    continue
                runs = getattr(args, sc.runs_arg)
                figures = await measure(b, sc, runs, trace=args.trace)
                data[sc.name] = figures.as_data()
                if not args.json:
                    totals.append((sc, report(figures, args.batch_size)))
            if args.json:
                print(json.dumps(data, indent=1))
            summary(totals)
    finally:
        await asyncio.to_thread(worker.reset)
        await client.close()
        await probe.close()


def hook_empty_receives(esm_sqs: Any) -> None:
    """Count the ESM's empty ReceiveMessage answers (idle polling) per scenario."""
    esm_sqs._bench_scenario = ""

    def after(parsed: Any = None, **_: Any) -> None:
        if isinstance(parsed, dict) and not parsed.get("Messages"):
            _EMPTY[esm_sqs._bench_scenario] = _EMPTY.get(esm_sqs._bench_scenario, 0) + 1

    esm_sqs.meta.events.register("after-call.sqs.ReceiveMessage", after)


def summary(totals: list[tuple[Scenario, dict[str, float]]]) -> None:
    if not totals:
        return
    print("\n== summary (user-billed requests; ESM polling and Lambda duration excluded)")
    print(
        f"   {'scenario':36} {'$/M steps':>10} {'$/M steps':>10} {'DDB writes':>11} "
        f"{'WRU/step':>9} {'DDB req':>8}"
    )
    print(
        f"   {'':36} {'<=1KB':>10} {'measured':>10} {'per step':>11} {'measured':>9} {'per run':>8}"
    )
    for sc, t in totals:
        print(
            f"   {sc.label:36} {t['cost'] * 1e6 / t['steps']:10.3f} "
            f"{t['measured'] * 1e6 / t['steps']:10.3f} {t['writes'] / t['steps']:11.3f} "
            f"{t['wru'] / t['steps']:9.3f} {t['ddb'] / t['runs']:8.1f}"
        )
    steps = sum(t["steps"] for _, t in totals)
    cost = sum(t["cost"] for _, t in totals) * 1e6 / steps
    measured = sum(t["measured"] for _, t in totals) * 1e6 / steps
    print(f"   {'all scenarios':36} {cost:10.3f} {measured:10.3f}")
    print(
        f"   goals: <= {GOAL_WRITES_PER_STEP} DynamoDB writes/step, 0 reads/step after the "
        f"history Query, 0 Scans, <= ${GOAL_COST_PER_M_STEPS:.2f}/M steps"
    )
    for name, price in ANCHORS:
        print(
            f"   anchor: {name} ${price:.2f}/M steps = {price / cost:.1f}x (<=1KB model), "
            f"{price / measured:.1f}x (measured) this"
        )
    ten = next((t for sc, t in totals if sc.name == "ten_steps"), None)
    if ten:
        print(
            f"   anchor: pyworkflow-engine 0.1.9 DynamoDB backend "
            f"{ENGINE_019_CALLS_PER_10_STEP_RUN} calls per 10-step run; here "
            f"{ten['ddb'] / ten['runs']:.1f} DynamoDB requests per 10-step run"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of the 10-step workflow")
    parser.add_argument(
        "--other-runs",
        type=int,
        default=5,
        help="runs of the sleep workflows and chains (a chain counts once)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=10,
        help="ESM batch size (messages per Lambda invocation, 1..10)",
    )
    parser.add_argument("--only", nargs="*", choices=[s.name for s in SCENARIOS])
    parser.add_argument(
        "--trace", action="store_true", help="list the requests of the first run of each scenario"
    )
    parser.add_argument(
        "--json", action="store_true", help="print each scenario's per-run counts as JSON only"
    )
    args = parser.parse_args()
    asyncio.run(run_all(args))


if __name__ == "__main__":
    main()

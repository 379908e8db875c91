"""The capacity model of pyworkflow on AWS: for a workload, the requests one run makes, the load
on the hottest partition of the table and of every index, the Scheduler, SQS and Lambda rates,
and the cost per million steps, each against its AWS limit.

    python bench/capacity.py --runs-per-s 10000 --steps 10 --sleeps 0 --hooks 0 [--layout old|new]

Nothing here is a second copy of the table layout: a run's life (pending -> running ->
[suspended -> running] x (sleeps + hooks) -> completed, and its hooks' pending -> received) is
turned into items by ``pyworkflow.storage.dynamodb_items.run_item`` (and ``hook_item``) with
the ``CURRENT`` (``--layout new``) or
``LEGACY`` (``--layout old``: before write-sharding, commit bff4852) key families, and the
index writes are the differences between consecutive items, counted as DynamoDB bills them: an
entry that appears or goes is one write, a changed index key is two (delete + put), a changed
projected attribute one. Timer paths come from ``pyworkflow.transport.storm``. The request
sequence per drive is the one ``bench/aws_requests.py`` counts on the local stack;
``tests/bench/test_capacity_matches_local_stack.py`` checks the two agree exactly.

Assumptions (printed with the figures): items and index entries <= 1 KB (1 WRU a write, 2 per
transaction item; 1 RRU a strongly consistent read <= 4 KB); every run is of one workflow (the
worst case for the workflow index); an index family spreads over its shards by crc32 of the
record id, so its hottest shard takes total / shards on average (uniform hashing; the busiest
second of one shard is printed too, as "1-s peak"); a run's own items
(``RUN#<id>``) take at most its busiest drive's writes within one drive's duration.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyworkflow.core.models import Hook, HookStatus, RunStatus, WorkflowRun  # noqa: E402
from pyworkflow.storage import dynamodb_items as items  # noqa: E402
from pyworkflow.transport import storm  # noqa: E402

# --- prices: AWS list prices, us-east-1, 2024 ---------------------------------------------------
PRICE_WRU = 0.625e-6  # DynamoDB on-demand, per write request unit
PRICE_RRU = 0.125e-6  # DynamoDB on-demand, per read request unit
PRICE_SQS = 0.40e-6  # SQS standard, per request
PRICE_SCHEDULER = 1.00e-6  # EventBridge Scheduler, per invocation (API calls free)
PRICE_LAMBDA_REQUEST = 0.20e-6  # Lambda, per invocation
PRICE_LAMBDA_GB_S = 0.0000133334  # Lambda arm64 (template.yaml's architecture), per GB-second

# --- limits --------------------------------------------------------------------------------------
PARTITION_WCU = 1_000.0  # DynamoDB, per partition (table and every GSI): a hard limit
PARTITION_RCU = 3_000.0
TABLE_WCU_QUOTA = 40_000.0  # on-demand, per table (and per GSI) by default; adjustable
DELETE_SCHEDULE_PER_S = 1_000.0  # Scheduler DeleteSchedule requests, default; adjustable
SAFE_FRACTION = 0.5  # a partition passes under half its limit

#: the default per-drive duration (ms): a 10-step drive measured on the local stack, 190 ms
#: (``python bench/aws_requests.py --only ten_steps --runs 50 --batch-size 1`` prints "worker
#: ... ms per message"); an upper bound on AWS, where DynamoDB answers faster than DynamoDB Local
DEFAULT_DRIVE_MS = 190.0
#: the worker's memory (template.yaml, Globals MemorySize)
DEFAULT_MEMORY_MB = 1024
T0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)  # any instant: only differences matter


@dataclass(frozen=True)
class Workload:
    runs_per_s: float = 1_000.0
    steps: int = 10
    sleeps: int = 0
    hooks: int = 0
    sleep_seconds: float = 60.0
    timers: storm.TimerMode = "run"
    sqs_delay_max: float = storm.SQS_MAX_DELAY_SECONDS
    lead_seconds: float = storm.DEFAULT_LEAD_SECONDS
    batch_size: int = 10
    drive_ms: float = DEFAULT_DRIVE_MS
    memory_mb: int = DEFAULT_MEMORY_MB
    layout: items.Layout = items.CURRENT
    workflow: str = "busy_workflow"

    @property
    def steps_per_s(self) -> float:
        return self.runs_per_s * self.steps


@dataclass
class RunCost:
    """What one run costs, by request (named ``service.Operation`` as aws_requests.py counts the
    user's requests) and by index partition."""

    requests: Counter[str] = field(default_factory=Counter)
    scheduler_invocations: float = 0.0
    messages: float = 0.0  # SQS messages a worker receives (its drives and early wakes)
    wru_table: float = 0.0
    rru: float = 0.0
    #: (index, family prefix, partition name) -> index writes per run
    index_writes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    busiest_drive_wru: float = 0.0

    @property
    def wru_index(self) -> float:
        return float(sum(self.index_writes.values()))

    def dynamodb(self, kinds: set[str]) -> float:
        return float(sum(c for op, c in self.requests.items() if op.split(".", 1)[1] in kinds))


WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


# --- index writes from item differences -----------------------------------------------------------
def family_of(layout: items.Layout, index: str, key: str) -> tuple[items.Family, str]:
    """The family and partition name (``key`` without its shard) an index key belongs to."""
    for family in layout.families:
        if family.index != index or not (
            key == family.prefix or key.startswith(family.prefix + "#")
        ):
            continue
        rest = key[len(family.prefix) + 1 :]
        if family.shards > 1:
            rest = rest.rpartition("#")[0] if "#" in rest else ""
        return family, rest
    raise ValueError(f"{index} key {key!r} belongs to no family of the layout")


def _entry(item: items.Item | None, index: str) -> tuple[str, str] | None:
    pk, sk = items.INDEXES[index]
    if item is None or pk not in item or sk not in item:
        return None
    return item[pk]["S"], item[sk]["S"]


def _projected(item: items.Item, index: str) -> dict[str, Any]:
    projection = items.table_definition("t")["GlobalSecondaryIndexes"]
    spec = next(g["Projection"] for g in projection if g["IndexName"] == index)
    if spec["ProjectionType"] == "ALL":
        return dict(item)
    return {a: item.get(a) for a in spec.get("NonKeyAttributes", [])}


def index_writes(
    layout: items.Layout, before: items.Item | None, after: items.Item | None
) -> Counter[tuple[str, str, str]]:
    """The GSI writes DynamoDB makes when ``before`` becomes ``after``, by partition."""
    writes: Counter[tuple[str, str, str]] = Counter()

    def count(index: str, key: str) -> None:
        family, name = family_of(layout, index, key)
        writes[(index, family.prefix, name)] += 1

    for index in items.INDEXES:
        old, new = _entry(before, index), _entry(after, index)
        if old is not None and (new is None or new != old):
            count(index, old[0])  # the entry goes (or moves: delete + put)
        if new is not None and (old is None or new != old):
            count(index, new[0])
        elif new is not None and before is not None and after is not None:
            if _projected(before, index) != _projected(after, index):
                count(index, new[0])  # updated in place
    return writes


# --- one run's requests ------------------------------------------------------------------------
def _segments(steps: int, waits: int) -> list[int]:
    """Steps between waits, spread evenly; the model needs a step after every wait."""
    if waits and steps < waits + 1:
        raise ValueError("the model needs --steps >= --sleeps + 1 (a step after every wait)")
    base, extra = divmod(steps, waits + 1)
    return [base + (1 if i < extra else 0) for i in range(waits + 1)]


RUN_ID = "run_capacity0"


def run_cost(w: Workload) -> RunCost:
    """The requests one run of the workload makes, in the order the worker (and, for a hook,
    the API) makes them: see ``bench/aws_requests.py --trace``. Its sleeps come first, then its
    hooks, with the steps spread evenly between them."""
    cost = RunCost()
    r = cost.requests
    stored: dict[str, items.Item | None] = {"run": None}
    run = WorkflowRun(run_id=RUN_ID, workflow_name=w.workflow, created_at=T0, updated_at=T0)

    def write(op: str, after: items.Item, kind: str = "run") -> float:
        cost.index_writes.update(index_writes(w.layout, stored.get(kind), after))
        stored[kind] = after
        r[f"dynamodb.{op}"] += 1
        cost.wru_table += 1.0
        return 1.0

    def update_run(record: WorkflowRun) -> float:
        return write("UpdateItem", items.run_item(record, 30.0, layout=w.layout))

    def events(op: str, count: int) -> float:
        r[f"dynamodb.{op}"] += count
        cost.wru_table += count
        return float(count)

    def read(op: str, units: float = 1.0) -> None:
        r[f"dynamodb.{op}"] += 1
        cost.rru += units

    # the client starts it: one PutItem (the run and its first event), one SendMessage
    write("PutItem", items.run_item(run, 30.0, layout=w.layout))
    r["sqs.SendMessage"] += 1
    waits = ["sleep"] * w.sleeps + ["hook"] * w.hooks
    segments = _segments(w.steps, len(waits))
    long_sleep = w.sleep_seconds > w.sqs_delay_max
    for d, steps in enumerate(segments):
        after = waits[d - 1] if d else None  # the wait this drive resumes from
        cost.messages += 1
        read("GetItem")  # the run, before taking its lease
        running = run.model_copy(
            update={"status": RunStatus.RUNNING, "lease_owner": "worker", "wake_at": None}
        )
        wru = update_run(running)
        read("Query")  # the history (and the run item's first event)
        if after is None:
            wru += events("PutItem", steps)
        elif after == "sleep":  # its completion rides with the next step's result
            r["dynamodb.TransactWriteItems"] += 1
            cost.wru_table += 4.0  # 2 items x 2 (transactional)
            wru += 4.0 + events("PutItem", steps - 1)
        else:  # a hook: replay looks it up, then its receipt and the steps are written
            read("Query", 0.5)
            wru += events("PutItem", 1 + steps)
        if d == len(segments) - 1:
            ended = running.model_copy(update={"status": RunStatus.COMPLETED, "completed_at": T0})
            wru += update_run(ended)  # the ending: its last events in ``tail`` + the record
            if w.hooks:
                read("Query", 0.5)  # the run's pending hooks, disposed of at its end
        elif waits[d] == "sleep":
            wru += events("PutItem", 1)  # sleep started
            wake = T0 + timedelta(seconds=w.sleep_seconds * (d + 1))
            asleep = {"status": RunStatus.SUSPENDED, "lease_owner": None, "wake_at": wake}
            wru += update_run(running.model_copy(update=asleep))
            _timer(w, cost, long_sleep)
        else:
            wru += _hook(w, cost, d, write, read, running)
        run = running
        cost.busiest_drive_wru = max(cost.busiest_drive_wru, wru)
    # No DeleteSchedule at the ending: the run's last wait was woken by its own timer, spent
    # (the lease write forgets its key); only a run ending before its timer fires deletes one.
    return cost


def _hook(w: Workload, cost: RunCost, d: int, write: Any, read: Any, running: WorkflowRun) -> float:
    """A hook wait: the worker creates the hook and suspends; the API (resume by name)
    receives it, makes the run due (``Executor.touch``) and sends its wake-up."""
    hook = Hook(
        token_hash=f"{d:064x}",
        run_id=RUN_ID,
        hook_id=f"hook_approval_{d}",
        name="approval",
        op=d + 2,
        created_at=T0,
    )
    read("Query", 0.5)  # an existing hook of this op? (a retried drive must not make two)
    wru = write("PutItem", items.hook_item(hook, 30.0, layout=w.layout), f"hook{d}")
    wru += write_event(cost)  # hook created
    read("Query", 0.5)
    asleep = running.model_copy(update={"status": RunStatus.SUSPENDED, "lease_owner": None})
    wru += write("UpdateItem", items.run_item(asleep, 30.0, layout=w.layout))
    # the API: find it by name, read the run, receive it, touch the run, wake it
    read("Query", 0.5)
    read("GetItem")
    received = hook.model_copy(update={"status": HookStatus.RECEIVED, "received_at": T0})
    write("PutItem", items.hook_item(received, 30.0, layout=w.layout), f"hook{d}")
    read("GetItem")
    write(
        "UpdateItem",
        items.run_item(
            asleep.model_copy(update={"wake_at": T0 + timedelta(seconds=d + 1)}),
            30.0,
            layout=w.layout,
        ),
    )
    cost.requests["sqs.SendMessage"] += 1
    return wru


def write_event(cost: RunCost) -> float:
    cost.requests["dynamodb.PutItem"] += 1
    cost.wru_table += 1.0
    return 1.0


def _timer(w: Workload, cost: RunCost, long_sleep: bool) -> None:
    """One sleep's wake-up: SQS DelaySeconds; or a Scheduler hop (its own schedule, or its
    minute's bucket), which fires ``lead`` early when it can and is re-armed on SQS."""
    r = cost.requests
    if not long_sleep:
        r["sqs.SendMessage"] += 1
        return
    when = T0 + timedelta(seconds=w.sleep_seconds)
    early = storm.scheduler_fire_time(when, T0, w.lead_seconds) is not None
    if w.timers == "run":
        r["scheduler.CreateSchedule"] += 1
        cost.scheduler_invocations += 1
    else:  # its minute's bucket: the sweep pages the due index (1,000 keys a Query, ~100 B
        # each, eventually consistent) and fetches the records (BatchGetItem, 100 a request,
        # consistent), then sends the wake-up delayed to its time (SendMessageBatch, 10 a request)
        r["sqs.SendMessageBatch"] += 1 / storm.Quotas().sqs_batch_entries
        r["dynamodb.Query"] += 1 / 1000
        r["dynamodb.BatchGetItem"] += 1 / 100
        cost.rru += 1000 * 100 / 4096 * 0.5 / 1000 + 1.0
        return
    if early:  # woken early: one read, then re-armed on SQS for the rest
        cost.messages += 1
        r["dynamodb.GetItem"] += 1
        cost.rru += 1
        r["sqs.SendMessage"] += 1


# --- the fleet ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    what: str
    value: float
    limit: float | None
    unit: str
    key: str = ""
    hard: bool = True  # a per-partition limit (False: an adjustable account quota)

    @property
    def percent(self) -> float | None:
        return None if not self.limit else 100.0 * self.value / self.limit

    @property
    def passes(self) -> bool:
        return self.limit is None or self.value < SAFE_FRACTION * self.limit


@dataclass(frozen=True)
class Hot:
    """An index's hottest partition: its key (shard 0 shown), writes/s, the family's shards and
    the shards it would need for < 50 % of a partition's limit."""

    key: str
    rate: float
    shards: int
    needed: int

    @property
    def peak(self) -> float:
        """The busiest shard in one second when writes land at random (Poisson counts): about
        mean + sqrt(2 ln shards x mean). DynamoDB's burst capacity absorbs such seconds; the
        verdict is on the mean, as stated."""
        if self.shards <= 1:
            return self.rate
        return self.rate + math.sqrt(2.0 * math.log(self.shards) * self.rate)


def hottest(
    layout: items.Layout,
    per_s: float,
    writes: Counter[tuple[str, str, str]],
    drive_s: float = DEFAULT_DRIVE_MS / 1000.0,
) -> dict[str, Hot]:
    """Per index, its hottest partition. A family's writes spread evenly over its shards
    (uniform hashing: the hottest shard takes total / shards). A key named after the run itself
    (the hooks of a run) takes only that run's writes: at most all of them within one drive."""
    out: dict[str, Hot] = {}
    for (index, prefix, name), count in writes.items():
        family = next(f for f in layout.families if f.index == index and f.prefix == prefix)
        if name == RUN_ID:
            hot = Hot(f"{prefix}#<run_id>", count / drive_s, family.shards, 1)
        else:
            total = per_s * count
            needed = max(1, math.floor(total / (SAFE_FRACTION * PARTITION_WCU)) + 1)
            hot = Hot(family.keys(name or None)[0], total / family.shards, family.shards, needed)
        if index not in out or hot.rate > out[index].rate:
            out[index] = hot
    return out


def partition_rows(w: Workload, cost: RunCost) -> list[Row]:
    rows = []
    drive_s = w.drive_ms / 1000.0
    rows.append(
        Row(
            "table, one run's RUN#<id> (busiest drive)",
            cost.busiest_drive_wru / drive_s,
            PARTITION_WCU,
            "WCU/s",
            "RUN#<run_id>",
        )
    )
    reads_per_drive = cost.rru / max(cost.messages, 1.0)
    rows.append(
        Row(
            "table, one run's RUN#<id> reads",
            reads_per_drive / drive_s,
            PARTITION_RCU,
            "RCU/s",
            "RUN#<run_id>",
        )
    )
    hot = hottest(w.layout, w.runs_per_s, cost.index_writes, drive_s)
    for index in items.INDEXES:
        if index not in hot:
            rows.append(Row(f"{index} hottest partition", 0.0, PARTITION_WCU, "WCU/s", "(unused)"))
            continue
        h = hot[index]
        peak = 100.0 * h.peak / PARTITION_WCU
        note = f"{h.key} ({h.shards} shards; {h.needed} for < 50 %; 1-s peak ~{peak:.0f} %)"
        rows.append(Row(f"{index} hottest partition", h.rate, PARTITION_WCU, "WCU/s", note))
    return rows


def quota_rows(w: Workload, cost: RunCost) -> list[Row]:
    per_s = w.runs_per_s
    msgs = per_s * cost.messages
    table = per_s * cost.wru_table
    by_index: Counter[str] = Counter()
    for (index, _, _), c in cost.index_writes.items():
        by_index[index] += c
    busiest = max(by_index.items(), key=lambda kv: kv[1], default=("-", 0))
    q = storm.Quotas()
    return [
        Row("table writes (on-demand table quota)", table, TABLE_WCU_QUOTA, "WCU/s", hard=False),
        Row(
            f"busiest GSI writes ({busiest[0]}; quota = table's?)",
            per_s * busiest[1],
            TABLE_WCU_QUOTA,
            "WCU/s",
            hard=False,
        ),
        Row(
            "Scheduler invocations",
            per_s * cost.scheduler_invocations,
            q.scheduler_invocations_per_s,
            "/s",
            hard=False,
        ),
        Row(
            "Scheduler CreateSchedule",
            per_s * cost.requests["scheduler.CreateSchedule"],
            q.create_schedule_per_s,
            "/s",
            hard=False,
        ),
        Row(
            "Scheduler DeleteSchedule",
            per_s * cost.requests["scheduler.DeleteSchedule"],
            DELETE_SCHEDULE_PER_S,
            "/s",
            hard=False,
        ),
        Row(
            "SQS messages sent",
            per_s * (cost.requests["sqs.SendMessage"] + cost.requests["sqs.SendMessageBatch"] * 10),
            None,
            "/s",
            hard=False,
        ),
        Row(
            "Lambda concurrency (messages/s x drive)",
            msgs * w.drive_ms / 1000.0,
            float(min(q.lambda_concurrency, q.lambda_sqs_max)),
            "",
            hard=False,
        ),
    ]


def cost_per_million_steps(w: Workload, cost: RunCost) -> dict[str, float]:
    """$ per million steps by item; ESM polling at full batches (a ReceiveMessage and a
    DeleteMessageBatch per batch); Lambda duration = messages x drive x memory."""
    runs = 1e6 / w.steps
    sqs = (
        cost.requests["sqs.SendMessage"]
        + cost.requests["sqs.SendMessageBatch"]
        + 2 * cost.messages / w.batch_size
    )
    gb_s = cost.messages * w.drive_ms / 1000.0 * w.memory_mb / 1024.0
    return {
        "DynamoDB table writes": runs * cost.wru_table * PRICE_WRU,
        "DynamoDB index writes": runs * cost.wru_index * PRICE_WRU,
        "DynamoDB reads": runs * cost.rru * PRICE_RRU,
        "SQS (sends + ESM polling)": runs * sqs * PRICE_SQS,
        "Scheduler invocations": runs * cost.scheduler_invocations * PRICE_SCHEDULER,
        "Lambda requests": runs * cost.messages / w.batch_size * PRICE_LAMBDA_REQUEST,
        "Lambda duration": runs * gb_s * PRICE_LAMBDA_GB_S,
    }


# --- report ---------------------------------------------------------------------------------------
def _fmt(row: Row) -> str:
    pct = row.percent
    verdict = "" if row.limit is None else ("PASS" if row.passes else "FAIL")
    limit = "no limit" if row.limit is None else f"{row.limit:,.0f}"
    pct_text = "" if pct is None else f"{pct:6.1f} %"
    figures = f"{row.value:12,.1f} {row.unit:6} {limit:>10} {pct_text:>8}"
    return f"  {row.what:46} {figures}  {verdict:4}  {row.key}"


def report(w: Workload, name: str) -> bool:
    """Print the model for ``w``; True when every partition is under half its limit."""
    cost = run_cost(w)
    print(
        f"\n== layout {name}: {w.runs_per_s:,.0f} run starts/s, {w.steps} steps, {w.sleeps} sleeps "
        f"of {w.sleep_seconds:g} s ({w.timers} timers), {w.hooks} hooks => "
        f"{w.steps_per_s:,.0f} steps/s"
    )
    r = cost.requests
    print(
        "  per run: "
        + ", ".join(f"{op} {c:g}" for op, c in sorted(r.items()))
        + f"; Scheduler invocations {cost.scheduler_invocations:g}"
        + f"; messages driven {cost.messages:g}"
    )
    print(
        f"  per run: {cost.dynamodb(WRITES):g} DynamoDB writes "
        f"({cost.dynamodb(WRITES) / w.steps:.2f}/step), {cost.dynamodb(READS):g} reads; "
        f"WRU {cost.wru_table:g} table + "
        f"{cost.wru_index:g} index = {(cost.wru_table + cost.wru_index) / w.steps:.2f}/step; "
        f"RRU {cost.rru:g}"
    )
    print(
        "  index writes per run: "
        + ", ".join(
            f"{i} {p}{'#' + n if n else ''} {c}"
            for (i, p, n), c in sorted(cost.index_writes.items())
        )
    )
    columns = f"{'load':>12} {'':6} {'limit':>10} {'%':>8}"
    print(f"  {'partition (hard limit: must stay < 50 %)':46} {columns}  {'':4}  hottest key")
    rows = partition_rows(w, cost)
    for row in rows:
        print(_fmt(row))
    print(f"  {'quota (default, adjustable on request)':46}")
    for row in quota_rows(w, cost):
        print(_fmt(row))
    costs = cost_per_million_steps(w, cost)
    total = sum(costs.values())
    print(
        "  $/M steps: "
        + ", ".join(f"{k} {v:.3f}" for k, v in costs.items())
        + f" => ${total:.3f} (without Lambda duration ${total - costs['Lambda duration']:.3f}, "
        f"without index writes ${total - costs['DynamoDB index writes']:.3f})"
    )
    worst = max(rows, key=lambda row: row.value / (row.limit or 1.0))
    ok = all(row.passes for row in rows)
    print(
        f"  hottest partition: {worst.key} at {worst.percent:.1f} % of {worst.limit:,.0f} "
        f"{worst.unit}: every partition < 50 %: {'PASS' if ok else 'FAIL'}"
    )
    return ok


def workload(args: argparse.Namespace, layout: items.Layout) -> Workload:
    return Workload(
        runs_per_s=args.runs_per_s,
        steps=args.steps,
        sleeps=args.sleeps,
        hooks=args.hooks,
        sleep_seconds=args.sleep_seconds,
        timers=args.timers,
        batch_size=args.batch_size,
        drive_ms=args.drive_ms,
        memory_mb=args.memory_mb,
        layout=layout,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-per-s", type=float, default=10_000.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sleeps", type=int, default=0)
    parser.add_argument("--hooks", type=int, default=0, help="hooks per run, resumed by name")
    parser.add_argument("--sleep-seconds", type=float, default=60.0)
    parser.add_argument("--timers", choices=storm.TIMER_MODES, default="run")
    parser.add_argument("--layout", choices=("old", "new", "both"), default="both")
    parser.add_argument("--batch-size", type=int, default=10, help="ESM messages per invocation")
    parser.add_argument("--drive-ms", type=float, default=DEFAULT_DRIVE_MS)
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB)
    args = parser.parse_args(argv)
    print(
        "pyworkflow capacity model. Prices: us-east-1 on-demand list prices (2024): DynamoDB "
        "$0.625/M WRU, $0.125/M RRU; SQS $0.40/M requests; Scheduler $1.00/M invocations; Lambda "
        "arm64 $0.20/M requests + $0.0000133334/GB-s. Assumes items <= 1 KB, every run of one "
        "workflow, uniform hashing over a family's shards (hottest shard = total / shards), "
        f"{args.drive_ms:g} ms per drive, {args.memory_mb} MB."
    )
    layouts = {"old": items.LEGACY, "new": items.CURRENT}
    chosen = ["old", "new"] if args.layout == "both" else [args.layout]
    try:
        results = {name: report(workload(args, layouts[name]), name) for name in chosen}
    except ValueError as exc:
        parser.error(str(exc))
    return 0 if results.get("new", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())

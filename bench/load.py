"""Load through the local AWS stack: N runs of a 10-step workflow, started over HTTP, driven by the
worker fed from SQS with the template's batch size.

The stack is ``pyworkflow dev``'s (``pyworkflow.dev.stack.LocalStack``): DynamoDB Local (Java), a
moto server for SQS and Scheduler, the API function behind the HTTP API shim and the worker
function behind Lambda's SQS event source (batches of up to 10, ReportBatchItemFailures), each
function one container (one thread). ``--starters`` client threads POST ``/runs`` as fast as the
API answers, while the worker drains the queue.

Printed: runs/s and steps/s (first start to last completion), p50/p99/max start-to-completion
latency from the run records (``created_at`` → ``completed_at``), worker invocations and average
batch, and the correctness figures: lost runs (not completed), duplicated runs (a run with other
than one ``workflow.completed`` event) and duplicated step executions (counted through a side
channel in ``bench/load_workflows.py``, outside the engine's records). Exit status 1 if any is
non-zero.

    python bench/load.py [--runs 2000] [--steps 10] [--starters 4] [--rate R]

With ``--rate`` the starts arrive at R per second (below the stack's capacity the latency is the
work's own; above it, as by default, runs queue and the latency is mostly waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyworkflow.core.events import EventType  # noqa: E402
from pyworkflow.dev.stack import LocalStack  # noqa: E402
from pyworkflow.storage.dynamodb import DynamoDBStorageBackend  # noqa: E402

WORKFLOWS_MODULE = "bench.load_workflows"
EXECUTIONS = "LOAD_EXECUTIONS"  # bench/load_workflows.py's side channel


@dataclass
class LoadReport:
    runs: int
    steps: int
    started: int = 0
    completed: int = 0
    lost: int = 0  # started, never completed
    duplicated_runs: int = 0  # other than exactly one workflow.completed event
    duplicated_steps: int = 0  # step executions beyond one per (run, step)
    missing_steps: int = 0  # steps of completed runs never executed (side channel)
    wall_seconds: float = 0.0  # first start to last completion
    start_seconds: float = 0.0  # first start to last start answered
    latencies: list[float] = field(default_factory=list)  # start-to-completion, seconds
    completed_ids: set[str] = field(default_factory=set)
    invocations: int = 0
    messages: int = 0
    problems: list[str] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def lines(self) -> list[str]:
        wall = max(self.wall_seconds, 1e-9)
        return [
            f"runs started          {self.started} of {self.runs} "
            f"({self.started / max(self.start_seconds, 1e-9):.0f} starts/s through the API)",
            f"runs completed        {self.completed}",
            f"throughput            {self.completed / wall:.1f} runs/s, "
            f"{self.completed * self.steps / wall:.0f} steps/s ({self.wall_seconds:.1f} s)",
            f"start→completion      p50 {self.percentile(50):.2f} s, "
            f"p99 {self.percentile(99):.2f} s, max {self.percentile(100):.2f} s",
            f"worker invocations    {self.invocations} "
            f"({self.messages / max(1, self.invocations):.1f} messages per batch)",
            f"lost runs             {self.lost}",
            f"duplicated runs       {self.duplicated_runs}",
            f"duplicated steps      {self.duplicated_steps}",
            f"missing steps         {self.missing_steps}",
        ]

    @property
    def ok(self) -> bool:
        return not (
            self.lost or self.duplicated_runs or self.duplicated_steps or self.missing_steps
        )


def _post_run(api_url: str, steps: int) -> str:
    body = json.dumps({"workflow": "load_steps", "args": [steps]}).encode()
    request = urllib.request.Request(
        api_url + "/runs", data=body, method="POST", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["run_id"])


def _executions(path: Path) -> Counter[tuple[str, int]]:
    counts: Counter[tuple[str, int]] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            run_id, index = line.split()
            counts[(run_id, int(index))] += 1
    return counts


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))


async def _check(
    storage: DynamoDBStorageBackend, run_ids: list[str], report: LoadReport, began: datetime
) -> None:
    """Read every run's record and history: completed once, latency from the record."""
    limit = asyncio.Semaphore(16)
    last = began

    async def one(run_id: str) -> None:
        nonlocal last
        async with limit:
            run = await storage.get_run(run_id)
            events = await storage.read_events(run_id)
        ends = sum(1 for e in events if e.type == EventType.WORKFLOW_COMPLETED)
        if run is None or run.status.value != "completed" or run.completed_at is None:
            report.lost += 1
            report.problems.append(f"lost {run_id}: {run.status.value if run else 'no record'}")
            return
        report.completed += 1
        report.completed_ids.add(run_id)
        if ends != 1:
            report.duplicated_runs += 1
            report.problems.append(f"{run_id} has {ends} workflow.completed events")
        report.latencies.append((run.completed_at - run.created_at).total_seconds())
        last = max(last, run.completed_at)

    await asyncio.gather(*(one(r) for r in run_ids))
    report.wall_seconds = (last - began).total_seconds()


def _wait(path: Path, expected: int, quiet: float) -> None:
    """Until the side channel holds every step execution, or nothing new came for ``quiet`` s
    (the runs left are then lost: the check counts them)."""
    seen, since = -1, time.monotonic()
    while True:
        now_lines = _lines(path)
        if now_lines >= expected:
            return
        if now_lines != seen:
            seen, since = now_lines, time.monotonic()
        elif time.monotonic() - since > quiet:
            return
        time.sleep(0.25)


def load(
    *,
    runs: int,
    steps: int = 10,
    starters: int = 4,
    rate: float | None = None,
    quiet: float = 30.0,
    dynamodb_endpoint: str | None = None,
    progress: bool = False,
) -> LoadReport:
    """Start a local stack (reusing the DynamoDB Local at ``dynamodb_endpoint`` if given), push
    ``runs`` runs through it, and report."""
    report = LoadReport(runs=runs, steps=steps)
    with tempfile.TemporaryDirectory() as tmp:
        executions = Path(tmp) / "executions.txt"
        stack = LocalStack(
            module=WORKFLOWS_MODULE,
            port=0,
            stack_name=f"load{os.getpid()}x{time.time_ns() % 100_000}",
            dynamodb_endpoint=dynamodb_endpoint,
            env={
                EXECUTIONS: str(executions),
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            },
            on_progress=(lambda line: print(line, flush=True)) if progress else lambda _: None,
        )
        with stack:
            info = stack.info
            if info is None:  # started, so never
                raise RuntimeError("the local stack did not start")
            began = datetime.now(UTC)
            t0 = time.monotonic()
            with ThreadPoolExecutor(starters) as pool:
                futures = []
                for i in range(runs):
                    if rate:  # arrivals at a steady rate, not one burst
                        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                    futures.append(pool.submit(_post_run, info.api_url, steps))
                run_ids = [f.result() for f in futures]
            report.start_seconds = time.monotonic() - t0
            report.started = len(run_ids)
            _wait(executions, runs * steps, quiet)
            source = stack.sources[0] if stack.sources else None

            async def check() -> None:
                storage = DynamoDBStorageBackend(
                    next(iter(info.tables.values())),
                    region=info.region,
                    endpoint_url=info.dynamodb_endpoint,
                )
                try:
                    await _check(storage, run_ids, report, began)
                finally:
                    await storage.close()

            asyncio.run(check())
            if source is not None:
                report.invocations = source.stats.invocations
                report.messages = source.stats.received
        counts = _executions(executions)
    wanted = set(run_ids)
    for (run_id, _), n in counts.items():
        if run_id in wanted and n > 1:
            report.duplicated_steps += n - 1
            report.problems.append(f"{run_id} step executed {n} times")
    report.missing_steps = sum(
        1
        for run_id in report.completed_ids
        for index in range(steps)
        if not counts[(run_id, index)]
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--starters", type=int, default=4, help="client threads POSTing /runs")
    parser.add_argument(
        "--rate", type=float, default=None, help="starts per second (default: as fast as taken)"
    )
    parser.add_argument(
        "--quiet", type=float, default=30.0, help="give up after s without progress"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the worker logs each message at INFO
    # (also once the stack has restored the environment: its last metrics flush)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    report = load(
        runs=args.runs,
        steps=args.steps,
        starters=args.starters,
        rate=args.rate,
        quiet=args.quiet,
        progress=True,
    )
    print(f"{args.runs} runs x {args.steps} steps through the local stack")
    print("\n".join(report.lines()))
    for problem in report.problems[:20]:
        print("  ", problem)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()

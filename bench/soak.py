"""Soak: many runs through the local AWS stack while messages are duplicated and workers crash.

Each run is ``faults_busy`` (tests/faults/workflows.py): five steps, a step that fails once and is
retried after 1 s, a 1 s sleep and a child run, i.e. about six wake-up messages. Runs are started by
a client-side ``AwsRuntime`` (as the API would) and driven by ``pyworkflow/handlers/worker.py`` fed
by an SQS event source played here (moto server; storage SQLite, or DynamoDB Local with
``--dynamodb``), batches of up to 10, in real time:

- ``--dup`` of received messages are sent again (SQS's at-least-once delivery), spread evenly;
- ``--crash`` of invocations (spread evenly) crash the worker at a random crash point of
  ``pyworkflow.runtime.faults`` (``InjectedCrash``): its batch is left undeleted and comes back
  after the visibility timeout (6 s; the run lease is shorter), and a new container takes over;
- the deployed stack's 5-minute sweep runs every ``--sweep`` seconds;
- runs start batch_size / 2 per delivered batch, as arrivals rather than one burst.

Then it prints runs started / completed / failed / lost (not terminal when the queue had been
quiet for ``--quiet`` seconds), duplicate step executions (beyond the one execution each step
needs, and the retried step's two), histories breaking an invariant, the dead-letter queue's
count and the wall time.

    python bench/soak.py [--runs 500] [--dup 0.12] [--crash 0.07] [--seed 1] [--dynamodb]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyworkflow import config  # noqa: E402
from pyworkflow.dev import moto_server  # noqa: E402
from pyworkflow.dev.pumps import FakeLambdaContext, receive_batch, settle, sqs_event  # noqa: E402
from pyworkflow.runtime.aws import AwsRuntime  # noqa: E402
from pyworkflow.runtime.executor import LIVE_OWNERS  # noqa: E402
from pyworkflow.runtime.faults import Faults, InjectedCrash, inject  # noqa: E402
from pyworkflow.transport.aws import AwsDispatcher  # noqa: E402

REGION = "us-east-1"
VISIBILITY_TIMEOUT = 6
MAX_RECEIVES = 4  # the worker fails a run on the 4th failing delivery...
MAX_RECEIVE_COUNT = 5  # ...and SQS dead-letters the message after the 5th
CRASH_WITHIN = 12  # a crash falls within this many points of the invocation's start
# step executions a run of faults_busy needs: five adds, the retried step twice, the child's add
NEEDED = {"slow_add": 1, "flaky_fast": 2, "add": 1}


class SoakReport(BaseModel):
    runs: int
    started: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    broken: int = 0
    duplicate_step_executions: int = 0
    dlq: int = 0
    messages: int = 0
    duplicated: int = 0
    invocations: int = 0
    crashes: int = 0
    sweeps_woke: int = 0
    wall_seconds: float = 0.0
    problems: list[str] = []

    def lines(self) -> list[str]:
        return [
            f"runs started        {self.started}",
            f"runs completed      {self.completed}",
            f"runs failed         {self.failed}",
            f"runs lost           {self.lost}",
            f"broken histories    {self.broken}",
            f"duplicate step executions {self.duplicate_step_executions}",
            f"DLQ messages        {self.dlq}",
            f"messages delivered  {self.messages} (duplicated {self.duplicated}, "
            f"{self.duplicated / max(1, self.messages):.1%})",
            f"invocations         {self.invocations} (crashed {self.crashes}, "
            f"{self.crashes / max(1, self.invocations):.1%})",
            f"runs woken by sweep {self.sweeps_woke}",
            f"wall time           {self.wall_seconds:.1f} s",
        ]


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Soak:
    def __init__(
        self,
        stack: moto_server.AwsStack,
        storage: Any,
        *,
        runs: int,
        dup: float,
        crash: float,
        seed: int,
        quiet: float,
        sweep_every: float,
        batch_size: int,
    ) -> None:
        from pyworkflow.handlers import worker

        self.stack = stack
        self.storage = storage
        self.worker = worker
        self.report = SoakReport(runs=runs)
        self.dup, self.crash = dup, crash
        self.rng = random.Random(seed)
        self.batch_size = batch_size
        self.starts_per_batch = max(1, batch_size // 2)
        self.quiet, self.sweep_every = quiet, sweep_every
        self.faults = Faults(armed=False)
        self.container: AwsRuntime | None = None

    def new_container(self) -> None:
        """A fresh worker "container" (the old one died, if any): its own lease owner."""
        if self.container is not None:
            LIVE_OWNERS.discard(self.container.executor.owner)
        self.container = inject(AwsRuntime.from_env(), self.faults)
        self.worker.reset(self.container)

    async def run(self) -> SoakReport:
        import aioboto3

        from tests.faults.harness import broken_invariants, family, step_calls

        began = time.perf_counter()
        session = aioboto3.Session()
        from tests.aws.ops import AwsOps  # the service's start, on this runtime

        client = AwsOps(AwsRuntime(self.storage, AwsDispatcher.from_env(session=session)))
        await asyncio.to_thread(self.new_container)
        keys = [f"soak{self.rng.getrandbits(48):x}-{i}" for i in range(self.report.runs)]
        run_ids: list[str] = []
        async with session.client("sqs") as sqs:
            await self._pump(sqs, client, run_ids, keys)
            self.report.dlq = int(
                (
                    await sqs.get_queue_attributes(
                        QueueUrl=self.stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
                    )
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
        for key, run_id in zip(keys, run_ids, strict=True):
            fam = await family(self.storage, run_id)
            top = fam.runs[0]
            if not all(r.status.is_terminal for r in fam.runs):
                self.report.lost += 1
                self.report.problems.append(
                    f"lost {run_id}: {[(r.run_id, r.status.value) for r in fam.runs]}"
                )
            elif top.status.value == "completed" and fam.result == 140:
                self.report.completed += 1
            else:
                self.report.failed += 1
                self.report.problems.append(f"failed {run_id}: {top.error}")
            problems = broken_invariants(fam)
            if problems:
                self.report.broken += 1
                self.report.problems += problems
            for name, n in step_calls(key).items():
                self.report.duplicate_step_executions += max(
                    0, n - NEEDED.get(name.split(":", 1)[0], 1)
                )
        await client.close()
        await asyncio.to_thread(self.worker.reset)
        self.report.wall_seconds = time.perf_counter() - began
        return self.report

    async def _pump(self, sqs: Any, client: Any, run_ids: list[str], keys: list[str]) -> None:
        """Start runs a few at a time (arrivals, not one burst), deliver, sweep now and then."""
        from tests.faults import workflows as wf

        last_progress = last_sweep = time.monotonic()
        while True:
            for key in keys[len(run_ids) : len(run_ids) + self.starts_per_batch]:
                run_ids.append(await client.start(wf.busy, key))
                self.report.started += 1
            now = time.monotonic()
            if now - last_sweep >= self.sweep_every:
                last_sweep = now
                self.report.sweeps_woke += len(await client.sweep())
            messages = await receive_batch(
                sqs, self.stack.queue_url, batch_size=self.batch_size, wait_seconds=1
            )
            if not messages:
                if len(run_ids) < len(keys):
                    continue
                if now - last_progress >= self.quiet or await self._all_done(run_ids):
                    return
                continue
            last_progress = time.monotonic()
            self.report.messages += len(messages)
            for m in messages:
                if _due(self.dup, self.report.messages - len(messages) + 1 + messages.index(m)):
                    self.report.duplicated += 1
                    await sqs.send_message(QueueUrl=self.stack.queue_url, MessageBody=m["Body"])
            await self._invoke(sqs, messages)

    async def _invoke(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        self.report.invocations += 1
        if not self.faults.armed and _due(self.crash, self.report.invocations):
            # Crash at one of the next few points; an invocation that writes nothing (a
            # duplicate) passes it on to the next one, so the share of crashes holds.
            self.faults.crashed = None
            self.faults.crash_at = self.faults.count + self.rng.randint(1, CRASH_WITHIN)
            self.faults.armed = True
        event = sqs_event(messages, queue_arn=self.stack.queue_arn, region=REGION)
        try:
            response = await asyncio.to_thread(self.worker.handler, event, FakeLambdaContext())
        except InjectedCrash:
            # The container died: nothing of its batch is deleted; SQS shows the messages again
            # after the visibility timeout.
            self.report.crashes += 1
            self.faults.armed = False
            await asyncio.to_thread(self.new_container)
            return
        await settle(sqs, self.stack.queue_url, messages, response, retry_failed_now=False)

    async def _all_done(self, run_ids: list[str]) -> bool:
        for run_id in run_ids:
            run = await self.storage.get_run(run_id)
            if run is None or not run.status.is_terminal:
                return False
        return True


def _due(rate: float, n: int) -> bool:
    """Whether the ``n``-th item (1-based) is one of a ``rate`` share spread evenly."""
    return int(n * rate) > int((n - 1) * rate)


async def soak(
    *,
    runs: int = 500,
    dup: float = 0.12,
    crash: float = 0.07,
    seed: int = 1,
    dynamodb_endpoint: str | None = None,
    quiet: float = 30.0,
    sweep_every: float = 60.0,
    batch_size: int = 10,
) -> SoakReport:
    """Run the soak on a fresh moto server and stack; storage SQLite (a temporary file) or the
    DynamoDB Local at ``dynamodb_endpoint``."""
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    with moto_server.start() as moto, TemporaryDirectory() as tmp, environ(credentials):
        stack = moto_server.create_stack(
            moto.endpoint_url,
            f"soak{seed}-{random.getrandbits(24):x}",
            region=REGION,
            visibility_timeout=VISIBILITY_TIMEOUT,
            max_receive_count=MAX_RECEIVE_COUNT,
        )
        env = {
            "AWS_ENDPOINT_URL_SQS": moto.endpoint_url,
            "AWS_ENDPOINT_URL_SCHEDULER": moto.endpoint_url,
            "POWERTOOLS_METRICS_NAMESPACE": "pyworkflow-soak",
            "POWERTOOLS_DEV": "false",
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines on stdout, one per invocation
            config.ENV_MODULE: "tests.faults.workflows",
            config.ENV_MAX_RECEIVES: str(MAX_RECEIVES),
            **stack.env(),
        }
        if dynamodb_endpoint:
            env.update(
                {
                    config.ENV_STORAGE: "dynamodb",
                    config.ENV_DYNAMODB_TABLE: f"pw-{stack.scheduler_group}",
                    config.ENV_DYNAMODB_ENDPOINT: dynamodb_endpoint,
                }
            )
        else:
            env.update(
                {config.ENV_STORAGE: "sqlite", config.ENV_DB_PATH: str(Path(tmp) / "soak.db")}
            )
        with environ(env):
            storage: Any
            if dynamodb_endpoint:
                from pyworkflow.runtime.storage_factory import dynamodb_backend
                from pyworkflow.settings import get_settings

                storage = dynamodb_backend(get_settings(), create_table=True)
                await storage.ensure_table()
            else:
                from pyworkflow.storage.sqlite import SQLiteStorageBackend

                storage = SQLiteStorageBackend(Path(tmp) / "soak.db")
            try:
                return await Soak(
                    stack,
                    storage,
                    runs=runs,
                    dup=dup,
                    crash=crash,
                    seed=seed,
                    quiet=quiet,
                    sweep_every=sweep_every,
                    batch_size=batch_size,
                ).run()
            finally:
                await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--dup", type=float, default=0.12, help="share of messages sent twice")
    parser.add_argument("--crash", type=float, default=0.07, help="share of crashed invocations")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet", type=float, default=30.0)
    parser.add_argument(
        "--sweep", type=float, default=60.0, help="seconds between sweeps (the stack's is 300)"
    )
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--dynamodb", action="store_true", help="storage on DynamoDB Local")
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)  # the worker logs every message at INFO
    if args.dynamodb:
        from pyworkflow.dev.dynamodb_local import running

        with running() as ddb:
            report = asyncio.run(
                soak(
                    runs=args.runs,
                    dup=args.dup,
                    crash=args.crash,
                    seed=args.seed,
                    dynamodb_endpoint=ddb.endpoint_url,
                    quiet=args.quiet,
                    sweep_every=args.sweep,
                    batch_size=args.batch_size,
                )
            )
    else:
        report = asyncio.run(
            soak(
                runs=args.runs,
                dup=args.dup,
                crash=args.crash,
                seed=args.seed,
                quiet=args.quiet,
                sweep_every=args.sweep,
                batch_size=args.batch_size,
            )
        )
    print("\n".join(report.lines()))
    for problem in report.problems[:20]:
        print("  ", problem)
    sys.exit(1 if report.lost or report.broken else 0)


if __name__ == "__main__":
    main()

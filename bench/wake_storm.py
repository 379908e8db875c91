"""A wake storm on the local stack: ``--runs`` runs sleep until one instant with
``PYWORKFLOW_TIMERS=bucket`` (DynamoDB Local or SQLite, moto's Scheduler and SQS), then the
instant's one bucket schedule fires and its sweep wakes them all; every run is driven.

Prints how long each phase took on this machine (suspending the runs, the bucket sweep's
fan-out, driving the woken runs), the requests made, the lateness each run recorded (its
``sleep.completed`` time minus the instant, on the stack's clock), and the storm model of
``pyworkflow/transport/storm.py`` for a million runs due at once, per-run schedules vs buckets,
with the fan-out rate and per-drive time measured here.

The stack's clock is a ``ManualClock`` moved to where Scheduler and SQS would deliver: the
sweep's messages are delayed to the instant in SQS, so the bench drives the bodies it sent
rather than wait for moto to release them.

    python bench/wake_storm.py --runs 20000 [--storage dynamodb|sqlite] [--concurrency 32]

Needs Java 17 for DynamoDB Local (pyworkflow/dev/dynamodb_local.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from pyworkflow import config, sleep, workflow  # noqa: E402
from pyworkflow.core.clock import ManualClock  # noqa: E402
from pyworkflow.core.events import EventType  # noqa: E402
from pyworkflow.core.models import RunStatus  # noqa: E402
from pyworkflow.core.registry import get_workflow  # noqa: E402
from pyworkflow.dev import moto_server  # noqa: E402
from pyworkflow.dev.pumps import fire_due_schedules  # noqa: E402
from pyworkflow.runtime.aws import AwsRuntime  # noqa: E402
from pyworkflow.settings import reset_settings  # noqa: E402
from pyworkflow.storage.base import StorageBackend  # noqa: E402
from pyworkflow.transport.aws import AwsDispatcher  # noqa: E402
from pyworkflow.transport.storm import (  # noqa: E402
    DEFAULT_LEAD_SECONDS,
    Workload,
    bucket_start,
    floor_to,
    plan_wake,
)

REGION = "us-east-1"


@workflow(name="bench_sleep_until")
async def sleep_until(when: str) -> str:
    await sleep(datetime.fromisoformat(when))
    return "woke"


async def each(items: list[Any], call: Any, concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> None:
        async with slots:
            await call(item)

    await asyncio.gather(*(one(i) for i in items))


async def storm(args: argparse.Namespace, storage: StorageBackend, stack: Any) -> None:
    import aioboto3

    clock = ManualClock(datetime.now(UTC))
    instant = floor_to(clock.now() + timedelta(hours=2), 60)
    dispatcher = AwsDispatcher.from_env(clock=clock)
    runtime = AwsRuntime(storage, dispatcher, clock=clock)
    sqs_client = await dispatcher.clients.get("sqs")
    bodies: list[tuple[int, str]] = []
    original = sqs_client.send_message_batch

    async def record(**kwargs: Any) -> Any:
        bodies.extend((e.get("DelaySeconds", 0), e["MessageBody"]) for e in kwargs["Entries"])
        return await original(**kwargs)

    sqs_client.send_message_batch = record
    ids: list[str] = []
    defn = get_workflow("bench_sleep_until")
    if defn is None:
        raise SystemExit("the bench's workflow is not registered")

    async def start(_: int) -> None:
        run, _events = await runtime.create_run(defn, (instant.isoformat(),), {})
        await runtime.drive_message({"run_id": run.run_id, "reason": "start"})
        ids.append(run.run_id)

    began = time.perf_counter()
    await each(list(range(args.runs)), start, args.concurrency)
    suspend_s = time.perf_counter() - began

    session = aioboto3.Session()
    async with session.client("sqs") as sqs, session.client("scheduler") as scheduler:
        fire = bucket_start(instant, DEFAULT_LEAD_SECONDS) + timedelta(seconds=20)
        clock.advance((fire - clock.now()).total_seconds())
        fired = await fire_due_schedules(scheduler, sqs, clock.now(), group=stack.scheduler_group)
        response = await sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=2)
        (message,) = response["Messages"]
    swept_at = clock.now()
    reading = [0.0]
    list_due_runs = storage.list_due_runs

    async def timed_list(*a: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return await list_due_runs(*a, **kw)
        finally:
            reading[0] += time.perf_counter() - start

    storage.list_due_runs = timed_list  # type: ignore[method-assign]
    began = time.perf_counter()
    outcome = await runtime.drive_message(message["Body"])
    fanout_s = time.perf_counter() - began
    storage.list_due_runs = list_due_runs  # type: ignore[method-assign]

    clock.advance((swept_at + timedelta(seconds=bodies[0][0]) - clock.now()).total_seconds())
    began = time.perf_counter()
    await each([b for _, b in bodies], runtime.drive_message, args.concurrency)
    drive_s = time.perf_counter() - began

    late: list[float] = []
    for run_id in ids:
        run = await storage.get_run(run_id)
        if run is None or run.status != RunStatus.COMPLETED:
            raise SystemExit(f"run {run_id} did not complete: {run}")
        events = await storage.get_events(run_id)
        done = next(e for e in events if e.type == EventType.SLEEP_COMPLETED)
        late.append((done.timestamp - instant).total_seconds())
    await dispatcher.close()

    n = args.runs
    print(f"storage: {args.storage}; {n} runs sleeping until {instant:%H:%M:%S}; bucket mode")
    print(
        f"suspend   {suspend_s:8.1f} s  {n / suspend_s:8.0f} runs/s  "
        f"(concurrency {args.concurrency})"
    )
    print(
        f"fan-out   {fanout_s:8.1f} s  {n / fanout_s:8.0f} runs/s  "
        f"(one sweep, {outcome.woken} woken; reading the due index {reading[0]:.1f} s, "
        f"SendMessageBatch to moto {fanout_s - reading[0]:.1f} s)"
    )
    print(
        f"drive     {drive_s:8.1f} s  {n / drive_s:8.0f} runs/s  (concurrency {args.concurrency})"
    )
    print(f"schedules fired: {fired}; requests: {dict(sorted(dispatcher.requests.items()))}")
    print(f"lateness recorded: min {min(late):.3f} s, max {max(late):.3f} s (requirement: < 1 s)")
    measured = Workload(
        drive_seconds=drive_s * args.concurrency / n, fanout_runs_per_s=n / fanout_s
    )
    assumed = Workload()
    for label, workload in (
        (
            f"assumed on AWS (drive {assumed.drive_seconds * 1000:.0f} ms, "
            f"fan-out {assumed.fanout_runs_per_s:.0f} runs/s)",
            assumed,
        ),
        (
            f"as measured here (drive {measured.drive_seconds * 1000:.0f} ms, "
            f"fan-out {measured.fanout_runs_per_s:.0f} runs/s)",
            measured,
        ),
    ):
        print(f"model, 1,000,000 runs due at once, AWS default quotas, {label}:")
        show(workload)


def show(workload: Workload) -> None:
    for mode in ("run", "bucket"):
        plan = plan_wake(1_000_000, mode, workload=workload)  # type: ignore[arg-type]
        verdict = "within" if plan.within_target else "BREACHES"
        print(
            f"  {mode:6} {plan.seconds:7.0f} s to wake all ({verdict} 600 s); "
            f"{plan.scheduler_invocations} Scheduler invocations, "
            f"{plan.create_schedule_requests} CreateSchedule, {plan.sqs_send_requests} SQS "
            f"send requests, peak {plan.peak_wakes_per_s:.0f} drives/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--storage", choices=("dynamodb", "sqlite"), default="dynamodb")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "PYWORKFLOW_TIMERS": "bucket",
    }.items():
        os.environ[name] = value
    with moto_server.start() as moto, tempfile.TemporaryDirectory() as tmp:
        os.environ["AWS_ENDPOINT_URL_SQS"] = moto.endpoint_url
        os.environ["AWS_ENDPOINT_URL_SCHEDULER"] = moto.endpoint_url
        stack = moto_server.create_stack(moto.endpoint_url, "storm", region=REGION)
        os.environ.update(stack.env())
        if args.storage == "sqlite":
            from pyworkflow.storage.sqlite import SQLiteStorageBackend

            reset_settings()
            asyncio.run(storm(args, SQLiteStorageBackend(Path(tmp) / "storm.db"), stack))
            return
        from pyworkflow.dev.dynamodb_local import running

        with running() as ddb:
            os.environ[config.ENV_STORAGE] = "dynamodb"
            os.environ[config.ENV_DYNAMODB_TABLE] = "pw-storm"
            os.environ[config.ENV_DYNAMODB_ENDPOINT] = ddb.endpoint_url
            reset_settings()

            async def go() -> None:
                from pyworkflow.runtime.storage_factory import dynamodb_backend
                from pyworkflow.settings import get_settings

                storage = dynamodb_backend(get_settings(), create_table=True)
                await storage.ensure_table()
                try:
                    await storm(args, storage, stack)
                finally:
                    await storage.close()

            asyncio.run(go())


if __name__ == "__main__":
    main()

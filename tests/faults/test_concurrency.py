"""The same run driven by several workers at once: one history, each step's result recorded
once, no double completion, no lost wake-up. Embedded (separate runtimes, one SQLite file or one
PostgreSQL/MySQL store) and
AWS (several worker "containers", every message delivered to several of them at once, and every
message sent twice). ``tests/aws`` already covers one message delivered twice to a ten-step run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pyworkflow import step, workflow
from pyworkflow.core.clock import ManualClock, new_id
from pyworkflow.core.events import EventType
from pyworkflow.core.models import RunStatus
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.dev.pumps import FakeLambdaContext, receive_batch, settle, sqs_event
from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.storage import SQLiteStorageBackend
from pyworkflow.storage.base import StorageBackend
from tests.aws.conftest import REGION, Aws
from tests.aws.test_worker_e2e import load_container
from tests.faults import workflows as wf
from tests.faults.harness import QueuedLocalRuntime, broken_invariants, family, step_calls
from tests.storage.sql_servers import SQL_SERVERS, make_sql_backend

BUSY_RESULT = 140  # 0+1+2+3+4, +10 (the retried step), + the child's 100 + 20


async def drive_together(
    runtimes: list[QueuedLocalRuntime], run_id: str, clock: ManualClock, *, steal: bool
) -> None:
    """All workers drive the run at once, again and again, moving time to each wait's end."""
    for _ in range(20):
        await asyncio.gather(*(rt.executor.drive(run_id, steal=steal) for rt in runtimes))
        due = await runtimes[0].storage.list_due_runs(clock.now())
        await asyncio.gather(*(rt.drive(c.run_id, steal=steal) for rt in runtimes for c in due))
        run = await runtimes[0].storage.get_run(run_id)
        assert run is not None
        if run.status.is_terminal:
            return
        if run.wake_at is not None:
            clock.advance(max(0.0, (run.wake_at - clock.now()).total_seconds()))


def open_store(kind: str, tmp_path: Path) -> StorageBackend:
    """One more connection (pool) to the test's store: a SQLite file or a server's."""
    if kind == "sqlite":
        return SQLiteStorageBackend(tmp_path / "runs.db")
    return make_sql_backend(kind, tmp_path)


@pytest.mark.parametrize("kind", ["sqlite", *SQL_SERVERS])
@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("steal", [False, True], ids=["leased", "stealing"])
async def test_workers_driving_one_run_at_once(
    tmp_path: Path, workers: int, steal: bool, kind: str
) -> None:
    clock = ManualClock()
    runtimes = [QueuedLocalRuntime(open_store(kind, tmp_path), clock=clock) for _ in range(workers)]
    key = new_id("k")
    defn = get_workflow_by_func(wf.busy)
    assert defn is not None
    run, _ = await runtimes[0].executor.create(defn, (key,), {})
    await drive_together(runtimes, run.run_id, clock, steal=steal)
    fam = await family(runtimes[0].storage, run.run_id)
    assert broken_invariants(fam) == []
    assert fam.result == BUSY_RESULT
    calls = step_calls(key)
    print(f"\n{workers} workers, steal={steal}: step executions {calls}")
    if not steal:  # the lease keeps every other worker out: each step ran once
        assert all(n == 1 for name, n in calls.items() if not name.startswith("flaky"))
    for rt in runtimes:
        LIVE_OWNERS.discard(rt.executor.owner)
        await rt.storage.close()


GATE: dict[str, asyncio.Event] = {}
ENTERED: dict[str, asyncio.Event] = {}
RAN: dict[str, int] = {}


@step
async def stalls_first_time(key: str) -> str:
    RAN[key] = RAN.get(key, 0) + 1
    if RAN[key] == 1:  # the first holder stalls here (a GC pause, a frozen container...)
        ENTERED[key].set()
        await GATE[key].wait()
        return "late"
    return "on time"


@workflow(name="faults_stalling")
async def stalling(key: str) -> str:
    return await stalls_first_time(key)


@pytest.mark.parametrize("kind", ["sqlite", *SQL_SERVERS])
async def test_a_holder_whose_lease_expired_cannot_write_when_it_wakes_up(
    tmp_path: Path, kind: str
):
    clock = ManualClock()
    first, second = (
        QueuedLocalRuntime(open_store(kind, tmp_path), clock=clock, lease_seconds=60)
        for _ in range(2)
    )
    key = new_id("k")
    GATE[key], ENTERED[key] = asyncio.Event(), asyncio.Event()
    defn = get_workflow_by_func(stalling)
    assert defn is not None
    run, _ = await first.executor.create(defn, (key,), {})
    late = asyncio.create_task(first.executor.drive(run.run_id))
    await ENTERED[key].wait()
    assert (await second.executor.drive(run.run_id)).status == RunStatus.RUNNING  # held: no-op
    clock.advance(61)  # the first holder's lease runs out while it is stalled
    done = await second.executor.drive(run.run_id)
    assert done.status == RunStatus.COMPLETED and done.get_result() == "on time"
    GATE[key].set()  # the first holder wakes up and tries to record its result
    after = await late
    assert after.status == RunStatus.COMPLETED and after.get_result() == "on time"
    events = await first.storage.get_events(run.run_id)
    assert [e.type for e in events] == [
        EventType.WORKFLOW_STARTED,
        EventType.STEP_COMPLETED,
        EventType.WORKFLOW_COMPLETED,
    ]
    assert RAN[key] == 2  # at-least-once: it ran twice, its result is recorded once
    for rt in (first, second):
        LIVE_OWNERS.discard(rt.executor.owner)
        await rt.storage.close()


@pytest.fixture
def containers(aws_env: Any) -> Any:
    made = [load_container(f"faults_container_{i}") for i in range(3)]
    yield made
    for container in made:
        container.reset()
        container._loop.close()


async def test_every_message_delivered_to_three_workers_and_sent_twice(
    aws: Aws,
    containers: list[Any],
) -> None:
    key = new_id("k")
    run_id = await aws.client.start(wf.busy, key)
    duplicated: set[str] = set()
    deliveries = 0
    for _ in range(200):
        messages = await receive_batch(aws.sqs, aws.stack.queue_url, wait_seconds=1)
        if not messages:
            fam = await family(aws.storage, run_id)
            if all(r.status.is_terminal for r in fam.runs):
                break
            continue
        for m in messages:  # SQS may deliver any message twice: send each once more
            if m["Body"] not in duplicated:
                duplicated.add(m["Body"])
                await aws.sqs.send_message(QueueUrl=aws.stack.queue_url, MessageBody=m["Body"])
        event = sqs_event(messages, queue_arn=aws.stack.queue_arn, region=REGION)
        responses = await asyncio.gather(
            *(asyncio.to_thread(c.handler, event, FakeLambdaContext()) for c in containers)
        )
        deliveries += len(messages) * len(containers)
        # A record is done once any worker handled it; the others' failures are retries.
        failed = set.intersection(
            *({f["itemIdentifier"] for f in r["batchItemFailures"]} for r in responses)
        )
        await settle(
            aws.sqs,
            aws.stack.queue_url,
            messages,
            {"batchItemFailures": [{"itemIdentifier": i} for i in failed]},
        )
    fam = await family(aws.storage, run_id)
    assert broken_invariants(fam) == []
    assert fam.result == BUSY_RESULT
    calls = step_calls(key)
    print(
        f"\n{deliveries} deliveries of {len(duplicated)} distinct messages (each sent twice): "
        f"step executions {calls}"
    )
    assert all(n == 1 for name, n in calls.items() if not name.startswith("flaky"))
    assert calls["flaky_fast:"] == 2
    completed = [
        e for h in fam.histories.values() for e in h if e.type == EventType.WORKFLOW_COMPLETED
    ]
    assert len(completed) == 2  # the parent and its child, once each

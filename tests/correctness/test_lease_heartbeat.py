"""A live owner keeps its run (audit behaviour 3): while a step runs longer than the lease, its
owner renews the lease (a heartbeat, on every runtime), so no other worker takes the run over
and the step runs once; a dead owner's lease still expires and is taken. Real time, short
leases: a 1 s lease against a 3 s step."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from pyworkflow import RunStatus, step, workflow
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.runtime.faults import Faults, InjectedCrash, inject
from pyworkflow.runtime.worker import run_once
from pyworkflow.storage import SQLiteStorageBackend
from tests.faults.harness import QueuedLocalRuntime

LEASE = 1.0
STEP_SECONDS = 3.0
CALLS: list[str] = []


@step(max_retries=0)
async def lh_long_async() -> str:
    CALLS.append("async")
    await asyncio.sleep(STEP_SECONDS)
    return "async"


@step(max_retries=0)
def lh_long_blocking() -> str:
    CALLS.append("def")
    time.sleep(STEP_SECONDS)  # a plain def step: in a thread, the loop keeps beating
    return "def"


@workflow
async def lh_flow(kind: str) -> str:
    return await (lh_long_async() if kind == "async" else lh_long_blocking())


def _runtime(db: Path) -> QueuedLocalRuntime:
    return QueuedLocalRuntime(SQLiteStorageBackend(db), lease_seconds=LEASE)


async def _keep_polling(rt: QueuedLocalRuntime, until: asyncio.Task) -> None:
    """A second worker passing over due runs (expired leases included) while ``until`` runs."""
    while not until.done():
        await run_once(rt)
        await asyncio.sleep(LEASE / 4)


async def test_a_step_longer_than_the_lease_runs_once_while_its_owner_lives(tmp_path):
    for kind in ("async", "def"):
        CALLS.clear()
        owner, other = _runtime(tmp_path / f"{kind}.db"), _runtime(tmp_path / f"{kind}.db")
        run, history = await owner.executor.create(
            get_workflow_by_func(lh_flow), (kind,), {}, lease=True
        )
        driving = asyncio.create_task(owner.executor.execute(run, history))
        await _keep_polling(other, driving)
        final = await driving
        assert final.status == RunStatus.COMPLETED and final.get_result() == kind
        assert CALLS == [kind]
        stored = await other.storage.get_run(run.run_id)
        assert stored.status == RunStatus.COMPLETED


async def test_a_dead_owners_lease_still_expires_and_is_taken(tmp_path):
    CALLS.clear()
    db = tmp_path / "runs.db"
    faults = Faults(crash_on="before append_events(step.completed)")
    owner, other = inject(_runtime(db), faults), _runtime(db)
    run, history = await owner.executor.create(
        get_workflow_by_func(lh_flow), ("async",), {}, lease=True
    )
    try:
        await owner.executor.execute(run, history)
    except InjectedCrash:
        LIVE_OWNERS.discard(owner.executor.owner)  # the process is gone, its heartbeat too
    assert faults.crashed
    held = await other.storage.get_run(run.run_id)
    assert held.lease_owner == owner.executor.owner and held.status == RunStatus.RUNNING
    await asyncio.sleep(LEASE + 0.2)
    await run_once(other)
    final = await other.storage.get_run(run.run_id)
    assert final.status == RunStatus.COMPLETED
    assert CALLS == ["async", "async"]  # died after running it, before recording: at least once


class _Queue:
    """The AWS dispatcher's place: wake-ups are noted, never sent anywhere."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.requests: Counter[str] = Counter()

    async def wake(self, run_id: str, *, reason: str = "wake") -> None:
        self.sent.append(run_id)

    async def wake_at(self, run_id, when, *, key: str) -> None:
        self.sent.append(run_id)

    async def start_child(self, run_id: str, *, wait: bool) -> None:
        self.sent.append(run_id)

    async def forget(self, run) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_a_duplicate_message_during_a_step_longer_than_the_lease_is_a_noop_on_aws(tmp_path):
    CALLS.clear()
    db = tmp_path / "runs.db"
    first = AwsRuntime(SQLiteStorageBackend(db), _Queue(), lease_seconds=LEASE)
    second = AwsRuntime(SQLiteStorageBackend(db), _Queue(), lease_seconds=LEASE)
    run, _ = await first.executor.create(get_workflow_by_func(lh_flow), ("async",), {})
    body = {"run_id": run.run_id, "reason": "start"}
    driving = asyncio.create_task(first.drive_message(body))
    outcomes = []
    while not driving.done():  # the message, delivered again and again to another container
        await asyncio.sleep(LEASE / 2)
        outcomes.append(await second.drive_message(body, receive_count=2))
    assert (await driving).status == RunStatus.COMPLETED
    assert CALLS == ["async"]
    assert all(o.noop for o in outcomes[:-1]) and len(outcomes) >= 4

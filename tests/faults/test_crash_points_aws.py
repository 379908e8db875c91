"""Crash the AWS runtime (worker Lambda through the pump, SQS and Scheduler on moto, storage on
DynamoDB Local and on SQLite) at the numbered points of the reference workflow, recover as the
deployed stack does (SQS redelivery after the visibility timeout, the periodic sweep, Scheduler,
callers retrying), and check the invariants against a run without crashes.

Every point on SQLite; on DynamoDB (slower: one JVM round trip per request) every
``DYNAMODB_STRIDE``-th point."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pyworkflow.core.clock import ManualClock, new_id
from pyworkflow.runtime.faults import Faults
from tests.aws.conftest import Aws
from tests.faults.aws_harness import AwsDriver
from tests.faults.harness import Family, broken_invariants, family, step_calls

DYNAMODB_STRIDE = 4


@pytest.fixture(autouse=True)
def _timers_through_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every future wait becomes a Scheduler schedule, fired by the driver on its manual clock
    # (an SQS DelaySeconds would wait in real time).
    monkeypatch.setenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", "0")


async def run_reference(aws: Aws, worker: Any, faults: Faults) -> tuple[Any, Family, str]:
    import aioboto3

    key = new_id("k")
    driver = AwsDriver(aws, worker, faults, ManualClock(), aioboto3.Session())
    try:
        outcome = await driver.run(key)
    finally:
        await driver.close()
    assert outcome.run_id is not None
    return outcome, await family(aws.storage, outcome.run_id), key


async def test_every_crash_point_on_aws(aws: Aws, worker: Any, storage_kind: str) -> None:
    started = time.perf_counter()
    clean_faults = Faults()
    clean_out, clean, clean_key = await run_reference(aws, worker, clean_faults)
    assert not clean_out.stuck and broken_invariants(clean) == []
    assert clean.result == {"total": 119, "paid": 1000}
    clean_calls = step_calls(clean_key)
    points = clean_faults.labels
    stride = DYNAMODB_STRIDE if storage_kind == "dynamodb" else 1
    chosen = list(range(1, len(points) + 1, stride))
    failures: list[str] = []
    reran: dict[str, set[str]] = {}
    for number in chosen:
        label = points[number - 1]
        faults = Faults(crash_at=number)
        outcome, fam, key = await run_reference(aws, worker, faults)
        where = f"point {number} ({label})"
        if faults.crashed != label:
            failures.append(f"{where}: crashed at {faults.crashed!r} instead")
        if outcome.stuck:
            failures.append(f"{where}: lost: {[(r.run_id, r.status.value) for r in fam.runs]}")
        failures += [f"{where}: {p}" for p in broken_invariants(fam)]
        if fam.result != clean.result:
            failures.append(f"{where}: result {fam.result!r} != {clean.result!r}")
        if len(fam.runs) != len(clean.runs):
            failures.append(f"{where}: {len(fam.runs)} runs instead of {len(clean.runs)}")
        calls = step_calls(key)
        if calls.get("charge:", 0) > 1:
            failures.append(f"{where}: the at-most-once step ran {calls['charge:']} times")
        extra = {name for name, n in calls.items() if n > clean_calls.get(name, 0)}
        if extra:
            reran.setdefault(label, set()).update(extra)
    print(
        f"\n[{storage_kind}] {len(points)} crash points, {len(chosen)} crashed at, "
        f"{len(failures)} failures, {time.perf_counter() - started:.0f} s"
    )
    for label, names in sorted(reran.items()):
        print(f"  steps run again after a crash at {label}: {sorted(names)}")
    assert failures == [], "\n".join(failures)
    assert all(label.startswith("before append_events(step.") for label in reran), reran

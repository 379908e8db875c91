"""Crash the embedded runtime at every numbered point of the reference workflow, recover as a
deployment would, and check the invariants against a run without crashes. On SQLite, and on the
PostgreSQL/MySQL servers (a fresh schema/database per run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyworkflow.core.clock import ManualClock, new_id
from pyworkflow.core.events import EventType
from pyworkflow.runtime.faults import Faults
from tests.faults.harness import EmbeddedDriver, broken_invariants, family, step_calls
from tests.storage.sql_servers import SQL_SERVERS, make_sql_backend


@pytest.fixture(params=["sqlite", *SQL_SERVERS])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def run_reference(tmp: Path, key: str, faults: Faults, kind: str = "sqlite"):
    path = tmp / f"{key}.db"
    make = None if kind == "sqlite" else (lambda: make_sql_backend(kind, path))
    driver = EmbeddedDriver(path, faults, ManualClock(), make)
    try:
        outcome = await driver.run(key)
        assert driver.rt is not None and outcome.run_id is not None
        return outcome, await family(driver.rt.storage, outcome.run_id)
    finally:
        await driver.close()


async def clean_run(tmp: Path, kind: str) -> tuple[Faults, object, dict[str, int]]:
    faults = Faults(crash_at=None)
    key = new_id("clean")  # step counters are per key: a key is never reused
    outcome, fam = await run_reference(tmp, key, faults, kind)
    assert not outcome.stuck and not outcome.crashes
    assert broken_invariants(fam) == []
    return faults, fam, step_calls(key)


async def test_clean_run_of_the_reference_workflow(tmp_path: Path, kind: str) -> None:
    faults, fam, calls = await clean_run(tmp_path, kind)
    assert fam.result == {"total": 1 + 10 + 5 + 101 + 2, "paid": 1000}
    assert len(fam.runs) == 3  # the first run, its child, the run that continued it
    kinds = {e.type for h in fam.histories.values() for e in h}
    assert {
        EventType.STEP_RETRYING,
        EventType.SLEEP_COMPLETED,
        EventType.HOOK_RECEIVED,
        EventType.CHILD_WORKFLOW_COMPLETED,
        EventType.WORKFLOW_CONTINUED_AS_NEW,
        EventType.STEP_STARTED,
    } <= kinds
    labels = faults.labels
    assert "before append_events(step.completed)" in labels
    assert any(label.startswith("before wake(") for label in labels)
    for needed in (
        "create_run",
        "update_run(running)",
        "continue_run",
        "create_hook",
        "update_hook(received)",
        "start_child",
        "wake_at",
    ):
        assert any(needed in label for label in labels), needed
    assert calls == {"add::1": 1, "flaky:": 2, "add:/child:1": 1, "charge:": 1, "add::2": 1}


async def test_every_crash_point(tmp_path: Path, kind: str) -> None:
    faults, clean, clean_calls = await clean_run(tmp_path, kind)
    points = faults.labels
    failures: list[str] = []
    reran: dict[str, list[str]] = {}
    for number, label in enumerate(points, start=1):
        key = new_id(f"p{number}")
        crashing = Faults(crash_at=number)
        outcome, fam = await run_reference(tmp_path, key, crashing, kind)
        where = f"point {number} ({label})"
        if crashing.crashed != label:
            failures.append(f"{where}: crashed at {crashing.crashed!r} instead")
        if outcome.stuck:
            states = [(r.workflow_name, r.status.value) for r in fam.runs]
            failures.append(f"{where}: lost: {states}")
        failures += [f"{where}: {p}" for p in broken_invariants(fam)]
        if fam.result != clean.result:
            failures.append(f"{where}: result {fam.result!r} != {clean.result!r}")
        if len(fam.runs) != len(clean.runs):
            failures.append(f"{where}: {len(fam.runs)} runs instead of {len(clean.runs)}")
        calls = step_calls(key)
        if calls.get("charge:", 0) > 1:
            failures.append(f"{where}: the at-most-once step ran {calls['charge:']} times")
        extra = [name for name, n in calls.items() if n > clean_calls.get(name, 0)]
        if extra:
            reran.setdefault(label, []).extend(extra)
    print(f"\n{len(points)} crash points, {len(failures)} failures")
    for label, names in sorted(reran.items()):
        print(f"  steps run again after a crash at {label}: {sorted(set(names))}")
    assert failures == [], "\n".join(failures)
    # At-least-once is exactly this: a step runs again only if the crash fell between running it
    # and recording its outcome (the append of step.completed / step.retrying).
    assert all(label.startswith("before append_events(step.") for label in reran), reran

"""Limits on the AWS runtime (their embedded tests are in tests/runtime/test_guards.py, the
poison message's in tests/aws): a run past its ``max_duration`` is woken at its deadline by
EventBridge Scheduler and fails, saying why."""

from __future__ import annotations

from typing import Any

import pytest

from pyworkflow.core.clock import ManualClock, new_id
from pyworkflow.core.events import EventType
from pyworkflow.core.models import RunStatus
from pyworkflow.runtime.faults import Faults
from tests.aws.conftest import Aws
from tests.faults import workflows as wf
from tests.faults.aws_harness import AwsDriver


@pytest.fixture(autouse=True)
def _timers_through_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", "0")


async def test_a_run_past_its_max_duration_fails_on_aws(aws: Aws, worker: Any) -> None:
    import aioboto3

    clock = ManualClock()
    driver = AwsDriver(aws, worker, Faults(armed=False), clock, aioboto3.Session())
    started = clock.now()
    try:
        outcome = await driver.run(new_id("k"), workflow=wf.overdue)
    finally:
        await driver.close()
    assert outcome.run_id is not None and not outcome.stuck
    run = await aws.run(outcome.run_id)
    assert run.status == RunStatus.FAILED
    assert "max_duration" in (run.error or "") and "1h" in (run.error or "")
    # woken at the deadline (1 h), not at the end of the 3 h sleep
    assert (clock.now() - started).total_seconds() < 2 * 3600
    events = await aws.storage.get_events(run.run_id)
    assert events[-1].type == EventType.WORKFLOW_FAILED
    assert not any(e.type == EventType.SLEEP_COMPLETED for e in events)

"""The store failing under an execution (a throttle, a dropped connection) is not the run's
outcome: the drive fails, nothing is half-written, and the next drive finishes the run."""

from __future__ import annotations

from typing import Any

import pytest

import pyworkflow
from pyworkflow import RunStatus, step, workflow
from pyworkflow.runtime.local import get_runtime

DONE: list[int] = []


class Throttled(Exception):
    """What a store's client raises when it is overloaded (not a WorkflowError)."""


@step
async def work(i: int) -> int:
    DONE.append(i)
    return i


@workflow
async def three_steps() -> int:
    total = 0
    for i in range(3):
        try:
            total += await work(i)
        except Exception:  # noqa: BLE001 - a workflow catching everything must not hide it
            return -1
    return total


async def test_a_store_failure_mid_run_is_retried_not_recorded_as_the_outcome(
    storage, monkeypatch
) -> None:
    DONE.clear()
    real_append = storage.append_events
    failures = iter([Throttled("ProvisionedThroughputExceededException")])

    async def flaky_append(run_id: str, events: list, **kwargs: Any) -> Any:
        if any(e.type == "step.completed" and e.data.get("op") == 1 for e in events):
            failure = next(failures, None)
            if failure is not None:
                raise failure
        return await real_append(run_id, events, **kwargs)

    monkeypatch.setattr(storage, "append_events", flaky_append)
    with pytest.raises(Throttled):
        await pyworkflow.start(three_steps)
    run = (await storage.list_runs_page(workflow_name="three_steps")).items[0]
    assert run.status == RunStatus.RUNNING  # not failed, not "-1"
    history = await storage.get_events(run.run_id)
    assert [e.sequence for e in history] == list(range(1, len(history) + 1))
    assert history[-1].type == "step.completed" and history[-1].data["op"] == 0

    done = await get_runtime().executor.drive(run.run_id, steal=True)
    assert done.status == RunStatus.COMPLETED and done.get_result() == 3
    assert DONE == [0, 1, 1, 2]  # step 1 ran again (at-least-once), step 0 did not

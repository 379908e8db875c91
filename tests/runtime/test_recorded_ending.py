"""A history that ends a run under a record that does not (the DynamoDB backend writes a run's
ending event before its record, to skip a transaction): the next drive settles the record from
the history, runs no step again and tells the parent."""

from __future__ import annotations

from typing import Any

import pytest

import pyworkflow
from pyworkflow import EventType, RunStatus, step, workflow
from pyworkflow.runtime.local import get_runtime

CALLS: list[int] = []


class Crash(Exception):
    """The worker dies between the ending event and the record."""


@step
async def square(i: int) -> int:
    CALLS.append(i)
    return i * i


@workflow
async def squares(n: int, fail: bool = False) -> int:
    total = sum([await square(i) for i in range(n)])
    if fail:
        raise ValueError("the workflow gave up")
    return total


@pytest.mark.parametrize("ending", ["completed", "failed"])
async def test_a_recorded_ending_is_settled_by_the_next_drive(
    storage, ending: str, monkeypatch
) -> None:
    CALLS.clear()
    real_append = storage.append_events

    async def die_after_the_events(
        run_id: str, events: list, *, run=None, expected_version=None
    ) -> Any:
        if run is not None and run.status.is_terminal:
            await real_append(run_id, events)  # the events land, the record never does
            raise Crash("killed between the ending event and the record")
        return await real_append(run_id, events, run=run, expected_version=expected_version)

    monkeypatch.setattr(storage, "append_events", die_after_the_events)
    with pytest.raises(Crash):
        await pyworkflow.start(squares, 3, fail=ending == "failed")
    run = (await storage.list_runs_page(workflow_name="squares")).items[0]
    assert run.status == RunStatus.RUNNING
    history = await storage.get_events(run.run_id)
    assert history[-1].type == (
        EventType.WORKFLOW_COMPLETED if ending == "completed" else EventType.WORKFLOW_FAILED
    )
    monkeypatch.setattr(storage, "append_events", real_append)
    calls_before = list(CALLS)

    settled = await get_runtime().executor.drive(run.run_id, steal=True)

    assert CALLS == calls_before  # nothing replayed into a step again
    assert await storage.get_events(run.run_id) == history  # no second ending
    assert settled.lease_owner is None and settled.completed_at == history[-1].timestamp
    if ending == "completed":
        assert settled.status == RunStatus.COMPLETED and settled.get_result() == 5
    else:
        assert settled.status == RunStatus.FAILED and settled.error_type == "ValueError"


@workflow(name="recorded_wait_napper")  # a name no other test module uses
async def napper() -> int:
    first = await square(2)
    await pyworkflow.sleep("1h")
    return first + await square(3)


async def test_a_recorded_wait_without_its_record_is_replayed_into_the_same_wait(
    storage, clock, monkeypatch
) -> None:
    """The DynamoDB backend writes a suspension's events before its record too: a worker dying
    in between leaves sleep.started under a running record; the next drive replays into the
    same wait (one sleep, same wake time) and records it."""
    CALLS.clear()
    real_append = storage.append_events

    async def die_after_the_events(
        run_id: str, events: list, *, run=None, expected_version=None
    ) -> Any:
        if run is not None and run.status == "suspended" and events:
            await real_append(run_id, events)
            raise Crash("killed between the wait's events and the record")
        return await real_append(run_id, events, run=run, expected_version=expected_version)

    monkeypatch.setattr(storage, "append_events", die_after_the_events)
    with pytest.raises(Crash):
        await pyworkflow.start(napper)
    run = (await storage.list_runs_page(workflow_name="recorded_wait_napper")).items[0]
    history = await storage.get_events(run.run_id)
    assert run.status == RunStatus.RUNNING and history[-1].type == EventType.SLEEP_STARTED
    monkeypatch.setattr(storage, "append_events", real_append)

    waiting = await get_runtime().executor.drive(run.run_id, steal=True)
    assert waiting.status == RunStatus.SUSPENDED
    assert waiting.wake_at.isoformat() == history[-1].data["resume_at"]
    assert await storage.get_events(run.run_id) == history  # no second sleep.started
    assert CALLS == [2]

    clock.advance(3601)
    done = await get_runtime().executor.drive(run.run_id)
    assert done.status == RunStatus.COMPLETED and done.get_result() == 13
    assert CALLS == [2, 3]

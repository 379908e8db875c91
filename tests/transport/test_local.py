"""``pyworkflow.transport.local.LoopDelivery``: wake-ups on this process's event loop."""

from __future__ import annotations

import asyncio

import pytest

from pyworkflow.transport.local import LoopDelivery


def test_without_a_running_loop_nothing_is_delivered() -> None:
    driven: list[str] = []

    async def drive(run_id: str) -> None:
        driven.append(run_id)

    delivery = LoopDelivery(drive)
    delivery.spawn("run_a")
    delivery.call_later(0.0, delivery.spawn, "run_b")
    assert driven == [] and not delivery.tasks


async def test_spawn_and_call_later_drive_in_the_background() -> None:
    driven: list[str] = []

    async def drive(run_id: str) -> None:
        driven.append(run_id)

    delivery = LoopDelivery(drive)
    delivery.spawn("run_a")
    delivery.call_later(0.01, delivery.spawn, "run_b")
    await delivery.drain()
    assert driven == ["run_a"]
    await asyncio.sleep(0.05)
    await delivery.drain()
    assert driven == ["run_a", "run_b"]
    assert not delivery.tasks


async def test_a_failing_drive_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def drive(run_id: str) -> None:
        raise RuntimeError("boom")

    delivery = LoopDelivery(drive)
    delivery.spawn("run_a")
    await delivery.drain()
    assert "background drive of run run_a failed" in caplog.text


async def test_a_shielded_drive_outlives_its_cancelled_caller_until_close() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def child() -> None:
        started.set()
        await release.wait()
        finished.append("child")

    async def drive(run_id: str) -> None:
        return None

    delivery = LoopDelivery(drive)
    parent = asyncio.create_task(delivery.run_shielded(child()))
    await started.wait()
    parent.cancel()
    with pytest.raises(asyncio.CancelledError):
        await parent
    assert len(delivery.tasks) == 1  # the child goes on
    release.set()
    await delivery.drain()
    assert finished == ["child"]

    blocked = asyncio.Event()

    async def forever() -> None:
        await blocked.wait()

    task = asyncio.create_task(delivery.run_shielded(forever()))
    await asyncio.sleep(0)
    await delivery.close()  # cancels what is still going
    assert not delivery.tasks
    with pytest.raises(asyncio.CancelledError):
        await task

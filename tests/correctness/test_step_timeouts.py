"""Timeouts are honest (audit behaviour 10): a plain ``def`` step runs in a worker thread, so
blocking code in it neither stops the event loop nor escapes its timeout; an ``async`` step that
blocks the loop past its timeout cannot be interrupted, and a warning names it."""

import asyncio
import logging
import threading
import time

from pyworkflow import get_workflow_events, start, step, workflow
from tests.runtime.conftest import start_failing

THREADS: list[str] = []
RELEASE = threading.Event()


@step(timeout=0.2, max_retries=0)
def to_blocking_def(seconds: float) -> str:
    THREADS.append(threading.current_thread().name)
    RELEASE.wait(seconds)  # blocking code: a socket read, a CPU loop, time.sleep
    return "done"


@step(timeout=5)
def to_quick_def(x: int) -> int:
    THREADS.append(threading.current_thread().name)
    return x * 2


@step(timeout=0.2, max_retries=0)
async def to_blocking_async() -> str:
    time.sleep(0.6)  # noqa: ASYNC251 - the mistake this test is about
    return "late"


@workflow
async def to_blocks(seconds: float) -> str:
    return await to_blocking_def(seconds)


@workflow
async def to_quick(x: int) -> int:
    return await to_quick_def(x) + await to_quick_def(x)


@workflow
async def to_blocks_the_loop() -> str:
    return await to_blocking_async()


async def test_a_plain_def_step_runs_in_a_thread_and_its_timeout_holds(storage):
    THREADS.clear()
    RELEASE.clear()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        run = await start_failing(to_blocks, 30.0)
    finally:
        task.cancel()
        RELEASE.set()  # let the abandoned thread end
    assert run.error_type == "TimeoutError"
    assert "timed out after 0.2s" in run.error
    assert ticks > 0  # the event loop went on while the step's thread blocked
    assert THREADS and THREADS[0] != threading.current_thread().name


async def test_a_plain_def_step_is_recorded_and_replayed_like_an_async_one(storage):
    THREADS.clear()
    run_id = await start(to_quick, 21)
    events = await get_workflow_events(run_id)
    assert [e.data["result"] for e in events if e.type == "step.completed"] == [42, 42]
    assert len(THREADS) == 2
    assert await to_quick_def(4) == 8  # outside a workflow: a plain call, in a thread too


async def test_an_async_step_blocking_the_loop_past_its_timeout_is_named_in_a_warning(
    storage, caplog
):
    with caplog.at_level(logging.WARNING, logger="pyworkflow"):
        await start(to_blocks_the_loop)
    warnings = [r.getMessage() for r in caplog.records if "past its timeout" in r.getMessage()]
    assert len(warnings) == 1
    assert "'to_blocking_async'" in warnings[0] and "plain 'def' step" in warnings[0]

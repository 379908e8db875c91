"""What retry policies, Annotated results and wait_for_condition cost, on the embedded runtime
(in-memory storage, a manual clock: no disk, no real waiting).

Prints: the time per step of a workflow of N steps with an unannotated, an ``Annotated``
(checked before it is recorded) and a ``RetryPolicy`` step (no failure: the policy costs
nothing until a step fails); the events written per retried failure; the events and
executions (suspensions) per wait_for_condition check.

    python bench/retry_and_condition.py [--steps 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Annotated

from pydantic import Field

import pyworkflow
from pyworkflow import (
    RetryPolicy,
    WaitStrategy,
    get_workflow_events,
    get_workflow_run,
    resume,
    start,
    step,
    wait_for_condition,
    workflow,
)
from pyworkflow.core.clock import ManualClock
from pyworkflow.storage import InMemoryStorageBackend


@step
async def plain(i: int) -> int:
    return i


@step
async def constrained(i: int) -> Annotated[int, Field(ge=0)]:
    return i


@step(retry=RetryPolicy(max_attempts=3, initial_delay=0, retry_on=ConnectionError))
async def with_policy(i: int) -> int:
    return i


KINDS = {"plain": plain, "Annotated result": constrained, "RetryPolicy": with_policy}


@workflow(name="bench_steps")
async def many(kind: str, n: int) -> int:
    fn = KINDS[kind]
    total = 0
    for i in range(n):
        total += await fn(i)
    return total


FAILS = {"left": 0}


@step(retry=RetryPolicy(max_attempts=5, initial_delay=0))
async def flaky() -> str:
    if FAILS["left"]:
        FAILS["left"] -= 1
        raise ConnectionError("down")
    return "ok"


@workflow(name="bench_flaky")
async def flaky_flow() -> str:
    return await flaky()


async def tick(n: int) -> int:
    return n + 1


@workflow(name="bench_condition")
async def poll(checks: int) -> int:
    return await wait_for_condition(
        tick,
        initial_state=0,
        wait_strategy=WaitStrategy(until=lambda n: n >= checks, initial_delay=10, jitter="none"),
        max_attempts=checks,
    )


async def main(steps: int) -> None:
    clock = ManualClock()
    pyworkflow.configure(storage=InMemoryStorageBackend(), clock=clock)
    print(f"{steps} steps per run, in-memory storage")
    for kind in KINDS:
        began = time.perf_counter()
        await start(many, kind, steps)
        took = time.perf_counter() - began
        print(f"  {kind:18} {took / steps * 1e6:8.1f} us/step")
    FAILS["left"] = 2
    run_id = await start(flaky_flow)
    events = await get_workflow_events(run_id)
    print(
        f"a step failing twice then succeeding: {len(events)} events "
        f"({[e.type.value for e in events]})"
    )
    checks = 5
    run_id = await start(poll, checks)
    executions = 1
    run = await get_workflow_run(run_id)
    while run.wake_at is not None and run.status.value == "suspended":
        clock.advance((run.wake_at - clock.now()).total_seconds())
        await resume(run_id)
        executions += 1
        run = await get_workflow_run(run_id)
    events = await get_workflow_events(run_id)
    print(
        f"wait_for_condition, {checks} checks: {len(events)} events, {executions} executions, "
        f"result {run.get_result()}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    asyncio.run(main(parser.parse_args().steps))

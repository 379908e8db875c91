"""The reference workflow of the crash-point tests: steps, a retry, a sleep, a hook, a child and
continue-as-new, in one chain of runs. Module globals count what ran (tests and workers share
this process)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from pyworkflow import continue_as_new, hook, sleep, start_child_workflow, step, workflow
from pyworkflow.core import context as _ctx
from pyworkflow.core.step import StepInterruptedError

CALLS: Counter[str] = Counter()  # step executions by "<step>:<key>:<i>"
TOKENS: dict[str, str] = {}  # run id -> the token on_created was given


@step
async def add(key: str, i: int, total: int) -> int:
    CALLS[f"add:{key}:{i}"] += 1
    return total + i


@step(max_retries=2, retry_delay=60)
async def flaky(key: str) -> int:
    """Fails the first time it ever runs for ``key``, then succeeds."""
    CALLS[f"flaky:{key}"] += 1
    if CALLS[f"flaky:{key}"] == 1:
        raise RuntimeError("the first attempt fails")
    return 10


@step(at_most_once=True, retry_interrupted=False)  # the crash tests count it: never twice
async def charge(key: str) -> int:
    CALLS[f"charge:{key}"] += 1
    return 1000


async def remember(token: str) -> None:
    ctx = _ctx.current()
    assert ctx is not None
    TOKENS[ctx.run_id] = token


@workflow(name="faults_child")
async def child(key: str, x: int) -> int:
    return await add(f"{key}/child", x, 100)


@workflow(name="faults_reference")
async def reference(key: str, round_: int = 0, carried: int = 0) -> dict[str, Any]:
    if round_ == 0:
        a = await add(key, 1, 0)
        b = await flaky(key)
        await sleep("1h")
        payload = await hook("approval", on_created=remember)
        c = await start_child_workflow(child, key, a)
        continue_as_new(key, 1, a + b + int(payload["n"]) + c)
    try:
        paid = await charge(key)
    except StepInterruptedError:
        paid = 1000  # what a real workflow would do: look the payment up instead
    total = await add(key, 2, carried)
    return {"total": total, "paid": paid}


@step
async def slow_add(key: str, i: int, total: int) -> int:
    CALLS[f"slow_add:{key}:{i}"] += 1
    await asyncio.sleep(0.005)  # long enough for a concurrent duplicate to overlap
    return total + i


@step(max_retries=2, retry_delay=1)
async def flaky_fast(key: str) -> int:
    CALLS[f"flaky_fast:{key}"] += 1
    if CALLS[f"flaky_fast:{key}"] == 1:
        raise RuntimeError("the first attempt fails")
    return 10


@workflow(name="faults_busy")
async def busy(key: str) -> int:
    """Five steps, a retry, a 1 s sleep and a child: many messages for duplicate deliveries."""
    total = 0
    for i in range(5):
        total = await slow_add(key, i, total)
    total += await flaky_fast(key)
    await sleep(1)
    return total + await start_child_workflow(child, key, total)


@workflow(name="faults_overdue", max_duration="1h")
async def overdue(key: str) -> str:
    await add(key, 1, 0)
    await sleep("3h")
    return "late"

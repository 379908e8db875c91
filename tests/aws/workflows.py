"""Workflows the AWS end-to-end tests run through ``pyworkflow/handlers/worker.py`` (imported by the
worker from ``PYWORKFLOW_MODULE``, as a deployed worker would import the user's module).

Module globals observe what happened inside the worker; the tests and the worker share this
process, so they see the same counters."""

from __future__ import annotations

import asyncio
from collections import Counter

from pyworkflow import (
    HookHeartbeatTimeoutError,
    continue_as_new,
    hook,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.core import context as _ctx

CALLS: Counter[str] = Counter()  # step executions by "<name>:<key>"
TOKENS: dict[str, str] = {}  # run id -> hook token (given to on_created)


@step
async def add(key: str, i: int, total: int) -> int:
    CALLS[f"add:{key}:{i}"] += 1
    await asyncio.sleep(0.005)  # long enough for a concurrent duplicate to overlap
    return total + i


@workflow(name="aws_ten_steps")
async def ten_steps(key: str) -> int:
    total = 0
    for i in range(10):
        total = await add(key, i, total)
    return total


@step(max_retries=3, retry_delay=1)
async def flaky(key: str, failures: int) -> str:
    CALLS[f"flaky:{key}"] += 1
    if CALLS[f"flaky:{key}"] <= failures:
        raise RuntimeError(f"attempt {CALLS[f'flaky:{key}']} fails")
    return "ok"


@workflow(name="aws_retrying")
async def retrying(key: str, failures: int) -> str:
    return await flaky(key, failures)


@workflow(name="aws_sleeper")
async def sleeper(key: str, seconds: float) -> int:
    before = await add(key, 1, 0)
    await sleep(seconds)
    return await add(key, 2, before)


@workflow(name="aws_waiter")
async def waiter() -> dict:
    async def remember(token: str) -> None:
        ctx = _ctx.current()
        assert ctx is not None
        TOKENS[ctx.run_id] = token

    payload = await hook("approval", on_created=remember)
    return {"approved": payload["ok"]}


@workflow(name="aws_child")
async def child(x: int) -> int:
    return await add("child", x, 100)


@workflow(name="aws_parent")
async def parent(x: int) -> int:
    result = await start_child_workflow(child, x)
    return result + 1


@workflow(name="aws_chain")
async def chain(i: int) -> int:
    await add("chain", i, 0)
    if i < 2:
        continue_as_new(i + 1)
    return i


@workflow(name="aws_sleep_until")
async def sleep_until(when: str) -> str:
    """Sleeps until an absolute time (ISO text): many runs due at one instant make a storm."""
    from datetime import datetime

    await sleep(datetime.fromisoformat(when))
    return "woke"


@workflow(name="aws_heartbeat_waiter")
async def heartbeat_waiter(seconds: int) -> str:
    def remember(token: str) -> None:
        ctx = _ctx.current()
        assert ctx is not None
        TOKENS[ctx.run_id] = token

    try:
        return str(await hook("job", heartbeat_timeout=seconds, on_created=remember))
    except HookHeartbeatTimeoutError:
        return "silent"

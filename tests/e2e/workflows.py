"""Workflows the end-to-end tests start over HTTP through the local stack (``pyworkflow dev``).
The API and worker functions import this module from ``PYWORKFLOW_MODULE``, as a deployed
stack imports the user's module. The functions run in this process, so ``TOKENS`` (filled by
a hook's ``on_created``) is how a test learns a hook's token, as a webhook sender would by
mail or chat."""

from __future__ import annotations

from pyworkflow import continue_as_new, hook, sleep, step, workflow
from pyworkflow.core import context as _ctx

TOKENS: dict[str, str] = {}  # run id -> hook token


@step
async def add(a: int, b: int) -> int:
    return a + b


@workflow(name="e2e_add")
async def add_numbers(a: int, b: int) -> int:
    first = await add(a, b)
    return await add(first, 1)


@workflow(name="e2e_sleeper")
async def sleeper(seconds: float) -> str:
    before = await add(1, 1)
    await sleep(seconds)
    after = await add(before, 1)
    return f"woke with {after}"


async def _remember(token: str) -> None:
    ctx = _ctx.current()
    assert ctx is not None
    TOKENS[ctx.run_id] = token


@workflow(name="e2e_approval")
async def approval(order: str) -> dict:
    payload = await hook("approval", on_created=_remember)
    return {"order": order, "approved": bool(payload.get("approved"))}


@workflow(name="e2e_chain")
async def chain(i: int, last: int) -> int:
    await add(i, 0)
    if i < last:
        continue_as_new(i + 1, last)
    return i


@workflow(name="e2e_ticked")
async def ticked(label: str) -> str:
    """Started by a recurring schedule."""
    return await _label(label)


@step
async def _label(label: str) -> str:
    return f"tick {label}"

"""Workflows the end-to-end tests start over HTTP through the local stack (``pyworkflow dev``).
The API and worker functions import this module from ``PYWORKFLOW_MODULE``, as a deployed
stack imports the user's module. A hook's ``on_created`` writes its token to a file in
``E2E_HOOK_TOKENS`` (a folder), named after the run: that is how a test learns a hook's token,
as a webhook sender would by mail or chat, whether the functions run in the test's process or
in their own (``--lambda-runtime``)."""

from __future__ import annotations

import os
from pathlib import Path

from pyworkflow import continue_as_new, hook, sleep, step, workflow
from pyworkflow.core import context as _ctx

TOKENS_FOLDER = "E2E_HOOK_TOKENS"


def token_of(run_id: str) -> str | None:
    """The token of ``run_id``'s hook, once the function that created it has written it."""
    path = Path(os.environ[TOKENS_FOLDER]) / run_id
    return path.read_text() if path.exists() else None


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


@step
async def shout(text: str) -> str:
    return text.upper()


@workflow(name="e2e_large")
async def large(text: str) -> int:
    """Its argument and its step's result are as large as the caller makes them: over the
    offload threshold, both go to the payload bucket (written once, read on each replay)."""
    loud = await shout(text)
    return len(loud)


async def _remember(token: str) -> None:
    ctx = _ctx.current()
    assert ctx is not None
    folder = Path(os.environ[TOKENS_FOLDER])
    partial = folder / f".{ctx.run_id}"
    partial.write_text(token)
    partial.replace(folder / ctx.run_id)  # whole, or not there yet


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


@step
async def slow(n: int, seconds: float) -> int:
    import asyncio

    await asyncio.sleep(seconds)
    return n


@workflow(name="e2e_slow_steps")
async def slow_steps(count: int, seconds: float) -> list[int]:
    """``count`` steps of ``seconds`` each: more than one invocation of a short-timeout worker."""
    return [await slow(n, seconds) for n in range(count)]

"""Workflows the client tests start by name, through every transport. Module globals let the
tests see what ran (the tests, the embedded runtime and the in-process handlers share this
process)."""

from __future__ import annotations

from pydantic import BaseModel

from pyworkflow import HookFailedError, continue_as_new, hook, sleep, step, workflow
from pyworkflow.core import context as _ctx

TOKENS: dict[str, str] = {}  # run id -> hook token (given to on_created)


class Approval(BaseModel):
    ok: bool
    by: str


@step
async def add(a: int, b: int) -> int:
    return a + b


@workflow(name="client_add")
async def add_workflow(a: int, b: int = 1) -> int:
    """Adds two numbers in a step."""
    return await add(a, b)


@workflow(name="client_fail")
async def fail_workflow(message: str) -> None:
    raise ValueError(message)


@workflow(name="client_sleeper")
async def sleeper(seconds: float) -> str:
    await sleep(seconds)
    return "woke"


async def _remember(token: str) -> None:
    ctx = _ctx.current()
    assert ctx is not None
    TOKENS[ctx.run_id] = token


@workflow(name="client_approval")
async def approval() -> dict:
    answer = await hook("approval", on_created=_remember, payload_schema=Approval)
    return {"approved": answer.ok, "by": answer.by}


@workflow(name="client_any_hook")
async def any_hook() -> object:
    return await hook("note", on_created=_remember)


@workflow(name="client_failable_hook")
async def failable_hook() -> object:
    try:
        return await hook("job", on_created=_remember, heartbeat_timeout="1h")
    except HookFailedError as error:
        return {"failed": [error.error_type, error.error_message]}


@workflow(name="client_chain")
async def chain(i: int) -> int:
    await add(i, 0)
    if i < 2:
        continue_as_new(i + 1)
    return i

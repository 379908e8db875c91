"""Workflows the API tests start through ``pyworkflow/handlers/api.py`` (imported from
``PYWORKFLOW_MODULE``, as a deployed API imports the user's module). Names start with ``api_``
so they never meet the other suites' workflows in the registry."""

from __future__ import annotations

from pydantic import BaseModel

from pyworkflow import continue_as_new, hook, sleep, step, workflow
from pyworkflow.core import context as _ctx

TOKENS: dict[str, str] = {}  # run id -> hook token (given to on_created)


class Order(BaseModel):
    order_id: str
    quantity: int


class Approval(BaseModel):
    ok: bool
    by: str = "someone"


@step
async def shout(text: str) -> str:
    return text.upper()


@workflow(name="api_greet", tags=["demo"])
async def greet(name: str, punctuation: str = "!") -> str:
    """Greets someone, loudly."""
    return await shout(f"hello {name}") + punctuation


@workflow(name="api_order", max_duration="1h")
async def place_order(order: Order) -> int:
    return order.quantity * 2


async def _remember(token: str) -> None:
    ctx = _ctx.current()
    assert ctx is not None
    TOKENS[ctx.run_id] = token


@workflow(name="api_waiter")
async def waiter() -> dict:
    approval = await hook("api_approval", on_created=_remember, payload_schema=Approval)
    return approval.model_dump()


@workflow(name="api_expiring")
async def expiring() -> str:
    try:
        await hook("api_deadline", timeout="1h", on_created=_remember)
    except Exception as error:  # noqa: BLE001 - the test reads what it was
        return type(error).__name__
    return "received"


@workflow(name="api_sleeper")
async def sleeper(seconds: float) -> str:
    await sleep(seconds)
    return "woke"


@workflow(name="api_chain")
async def chain(i: int) -> int:
    if i < 2:
        continue_as_new(i + 1)
    return i


@workflow(name="api_failing")
async def failing(order: str) -> str:
    raise ValueError(f"order {order} is unknown")

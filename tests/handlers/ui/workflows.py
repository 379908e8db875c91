"""Workflows the viewer tests run: a few steps, a retry, a sleep, a child run and one
continue-as-new, with user data that tries to be markup (the viewer must show it as text).
``TOKENS`` is how a test learns a hook's token (to check the pages never show it)."""

from __future__ import annotations

from pydantic import BaseModel

from pyworkflow import continue_as_new, hook, sleep, start_child_workflow, step, workflow
from pyworkflow.core import context as _ctx

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
TOKENS: dict[str, str] = {}  # run id -> hook token
_ATTEMPTS: dict[str, int] = {}  # step key -> attempts so far


def reset() -> None:
    TOKENS.clear()
    _ATTEMPTS.clear()


@step
async def fetch_order(order: str) -> dict:
    return {"order": order, "items": 2, "note": XSS}


@step(max_retries=2, retry_delay=1)
async def charge(order: str, round_: int) -> str:
    """Fails its first attempt of each round (a retry to show), with markup in the error."""
    key = f"{order}/{round_}"
    _ATTEMPTS[key] = _ATTEMPTS.get(key, 0) + 1
    if _ATTEMPTS[key] == 1:
        raise RuntimeError(f"card declined {XSS}")
    return f"charged {order}"


@step
async def double(n: int) -> int:
    return n * 2


@workflow(name="ui_child")
async def child(n: int) -> int:
    return await double(n)


@workflow(name="ui_order")
async def order(order: str, round_: int = 0) -> dict:
    info = await fetch_order(order)
    receipt = await charge(order, round_)
    await sleep(1)
    doubled = await start_child_workflow(child, info["items"])
    if round_ == 0:
        continue_as_new(order, round_=1)
    return {"receipt": receipt, "doubled": doubled, "echo": XSS}


async def _remember(token: str) -> None:
    ctx = _ctx.current()
    assert ctx is not None
    TOKENS[ctx.run_id] = token


@workflow(name="ui_approval")
async def approval(order: str) -> dict:
    payload = await hook("approval", on_created=_remember)
    return {"order": order, "payload": payload}


class Decision(BaseModel):
    approved: bool


@workflow(name="ui_typed_approval")
async def typed_approval(order: str) -> dict:
    """A hook whose payload must fit ``Decision``."""
    payload = await hook("decision", payload_schema=Decision)
    decided = payload.model_dump() if isinstance(payload, BaseModel) else payload
    return {"order": order, "decision": decided}

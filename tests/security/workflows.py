"""Workflows the security tests start through the API (imported with
``tests.handlers.api.workflows`` from ``PYWORKFLOW_MODULE``). Names start with ``sec_`` so they
never meet the other suites' workflows in the registry."""

from __future__ import annotations

from pyworkflow import hook, sleep, step, workflow
from pyworkflow.core import context as _ctx


class Opaque:
    """A value JSON has no form for: a workflow returning one must fail saying so."""


@workflow(name="sec_sleeper")
async def sleeper(duration: object) -> str:
    await sleep(duration)  # type: ignore[arg-type] - hostile input is the point
    return "woke"


@workflow(name="sec_opaque")
async def opaque() -> object:
    return Opaque()


@step
async def opaque_step() -> object:
    return Opaque()


@workflow(name="sec_opaque_step")
async def opaque_from_a_step() -> object:
    return await opaque_step()


TOKENS: dict[str, str] = {}  # run id -> hook token (given to on_created)


def _remember(token: str) -> None:
    ctx = _ctx.current()
    assert ctx is not None
    TOKENS[ctx.run_id] = token


@workflow(name="sec_hook_then_sleep")
async def hook_then_sleep() -> str:
    """Still running after its hook took its payload: a second delivery must change nothing."""
    await hook("sec_go", on_created=_remember)
    await sleep("1h")
    return "done"

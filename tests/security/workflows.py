"""Workflows the security tests start through the API (imported with ``tests.api.workflows``
from ``PYWORKFLOW_MODULE``). Names start with ``sec_`` so they never meet the other suites'
workflows in the registry."""

from __future__ import annotations

from pyworkflow import sleep, step, workflow


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

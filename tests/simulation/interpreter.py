"""The one registered workflow every simulated run executes: ``sim_program(program)``.

It walks the program's instructions with pyworkflow's primitives and returns ``{"out": [...]}``,
one entry per instruction: ``[id, "ok", value]``, ``[id, "err", ExceptionType]`` ... Its control
flow depends only on the program and on what the primitives return, so it replays exactly.
The world is told things (step executions, hook tokens, a self-cancel) but never asked anything
that changes what the workflow does.

Steps are four generic ``@step`` functions with different retry policies (short delays: the
virtual clock matters) and one cleanup step; a step's behaviour is a function of its spec and
its *attempt* number (read from the engine's ``execute_step`` frame), so a step re-run after a
crash behaves exactly like the run it replaces.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

import pyworkflow
from pyworkflow import (
    CancellationError,
    FatalError,
    RetryableError,
    continue_as_new,
    hook,
    patched,
    shield,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.core import context as _ctx
from pyworkflow.core.hook import hash_token
from pyworkflow.exceptions import ConcurrencyError
from tests.simulation.program import Instr, Program
from tests.simulation.world import world

LONE_SURROGATE = "\ud800"  # no JSON encoder may store it: a SerializationError


class SimPayload(BaseModel):
    n: int


GOOD_PAYLOAD = {"n": 7}
BAD_PAYLOAD = {"n": "not a number"}


def _attempt() -> int:
    """The attempt number the engine is running: ``execute_step``'s local ``attempt``."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "execute_step" and "attempt" in frame.f_locals:
            return int(frame.f_locals["attempt"])
        frame = frame.f_back  # type: ignore[assignment]
    raise RuntimeError("simulation: a step ran outside pyworkflow's execute_step")


async def _body(spec: Instr) -> Any:
    ctx = _ctx.current()
    assert ctx is not None
    w = world()
    attempt = _attempt()
    w.step_executed(ctx.run_id, spec["id"], attempt)
    for _ in range(spec.get("yields", 0)):
        await asyncio.sleep(0)  # let concurrent branches and drives interleave
    if w.plan.stall_at is not None and w.steps_run == w.plan.stall_at:
        await w.block("stall", w.lease.total_seconds() + 30, f"step {spec['id']}")
    if spec.get("slow"):
        await w.block("slow", spec["slow"], f"step {spec['id']}")
    mode = spec["mode"]
    if mode == "exhaust":
        raise RuntimeError(f"{spec['id']} always fails")
    if attempt <= spec["fail"]:
        if mode == "retry_after":
            raise RetryableError("not yet", retry_after=spec["retry_after"])
        raise RuntimeError(f"{spec['id']} fails at attempt {attempt}")
    if mode == "fatal":
        raise FatalError(f"{spec['id']} gives up")
    if mode == "bad_result":
        return f"bad {LONE_SURROGATE}"
    return spec["value"]


@step(name="sim_fast", max_retries=3, retry_delay=1)
async def sim_fast(spec: dict[str, Any]) -> Any:
    return await _body(spec)


@step(name="sim_exp", max_retries=2, retry_delay="exponential")
async def sim_exp(spec: dict[str, Any]) -> Any:
    return await _body(spec)


@step(name="sim_list", max_retries=3, retry_delay=[2, 30])
async def sim_list(spec: dict[str, Any]) -> Any:
    return await _body(spec)


@step(name="sim_none", max_retries=0)
async def sim_none(spec: dict[str, Any]) -> Any:
    return await _body(spec)


@step(name="sim_cleanup", max_retries=3, retry_delay=1)
async def sim_cleanup(spec: dict[str, Any]) -> Any:
    return await _body(spec)


STEPS: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
    "fast": sim_fast,
    "exp": sim_exp,
    "list": sim_list,
    "none": sim_none,
}


async def _remember(token: str) -> None:
    world().tokens[hash_token(token)] = token


# Whether the running program catches every Exception around its instructions, as most user
# code does (``program["catch_all"]``); otherwise it lets the engine's ConcurrencyError through.
_CATCH_ALL: contextvars.ContextVar[bool] = contextvars.ContextVar("sim_catch_all", default=True)


def _control(exc: BaseException) -> bool:
    """Exceptions that are the run's business, not an instruction's outcome."""
    if isinstance(exc, ConcurrencyError) and not _CATCH_ALL.get():
        return True
    return isinstance(exc, CancellationError) or not isinstance(exc, Exception)


async def run_strict(instr: Instr) -> Any:
    """Execute one instruction; its failure raises."""
    kind = instr["kind"]
    if kind == "step":
        return await STEPS[instr["fn"]](instr)
    if kind == "sleep":
        await sleep(instr["seconds"])
        return None
    if kind == "hook":
        payload = await hook(
            instr["name"],
            timeout=instr["timeout"],
            on_created=_remember,
            payload_schema=SimPayload if instr["typed"] else None,
        )
        return payload.n if isinstance(payload, SimPayload) else payload["n"]
    if kind == "child":
        result = await start_child_workflow(
            sim_program,
            instr["program"],
            wait_for_completion=instr["wait"],
            parent_close_policy=instr["policy"],
        )
        return result if instr["wait"] else "started"
    if kind == "fan_out":
        return await _fan_out(instr)
    if kind == "gather":
        return await _gather(instr)
    if kind == "patch":
        return patched(instr["change"])
    if kind == "cancel":
        ctx = _ctx.current()
        assert ctx is not None
        await world().self_cancel(ctx.run_id, instr["id"])
        await sleep(1)  # the await the cancellation is delivered at
        return None
    raise ValueError(f"unknown instruction {kind!r}")


async def run_instr(instr: Instr) -> list[Any]:
    """Execute one instruction; its outcome as data."""
    try:
        return ["ok", await run_strict(instr)]
    except Exception as exc:
        if _control(exc):
            raise
        return ["err", type(exc).__name__]


async def _branch(item: dict[str, Any]) -> list[Any]:
    if item["strict"]:
        return [await run_strict(op) for op in item["ops"]]
    return [await run_instr(op) for op in item["ops"]]


async def _fan_out(instr: Instr) -> list[Any]:
    items = instr["items"]
    limits = {
        "max_concurrency": instr["max_concurrency"],
        "min_successful": instr["min_successful"],
        "tolerated_failure_count": instr["tolerated_failures"],
        "tolerated_failure_percentage": instr.get("tolerated_percentage"),
        "on_completion": instr.get("on_completion", "cancel"),
    }
    if instr["api"] == "map":
        res = await pyworkflow.map(_branch, items, **limits)
    else:
        res = await pyworkflow.parallel(*(_branch(item) for item in items), **limits)
    if any(
        instr.get(k) is not None
        for k in ("min_successful", "tolerated_failures", "tolerated_percentage")
    ):
        # Which items finished before an early stop is a matter of timing; the reason is not.
        return [res.completion_reason.value]
    return [
        [s.value for s in res.statuses],
        [
            res.values[i]
            if i in res.values
            else type(res.errors[i]).__name__
            if i in res.errors
            else None
            for i in range(len(items))
        ],
    ]


async def _gather(instr: Instr) -> list[Any]:
    calls = [STEPS[s["fn"]](s) for s in instr["steps"]]
    if not instr["return_exceptions"]:
        return list(await asyncio.gather(*calls))
    results = await asyncio.gather(*calls, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and _control(r):
            raise r
    return [type(r).__name__ if isinstance(r, BaseException) else r for r in results]


@workflow(name="sim_program")
async def sim_program(program: dict[str, Any], carried: list[Any] | None = None) -> dict[str, Any]:
    out: list[Any] = list(carried or [])
    _CATCH_ALL.set(program.get("catch_all", True))
    try:
        ops = program["ops"]
        for i, instr in enumerate(ops):
            if instr["kind"] == "continue_as_new":
                out.append([instr["id"], "continued"])
                continue_as_new({**program, "ops": ops[i + 1 :]}, out)
            if instr["kind"] == "fail":
                raise FatalError(f"program {program['id']} fails on purpose")
            out.append([instr["id"], *await run_instr(instr)])
    except CancellationError:
        async with shield():
            await sim_cleanup(program["cleanup"])
        raise
    return {"out": out}


def program_of(run_args: list[Any]) -> Program:
    return run_args[0]  # type: ignore[no-any-return]

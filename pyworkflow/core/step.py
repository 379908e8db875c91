"""``@step``: a unit of work whose result is recorded once and returned from history on replay.

Two phases, like every primitive: look the op up in history; settled → return (or raise) what was
recorded; otherwise run the function inline, record one ``step.completed`` (the only write a step
costs) and return the decoded result. Failures are retried with the step's policy: each retry
records ``step.retrying`` with its absolute ``retry_at``, waits inline when the backoff is short
and otherwise suspends the run until then.

Delivery is at-least-once: a step runs again if its process dies after running it and before
``step.completed`` is written (or a retry's ``step.retrying``), since nothing recorded that it
ran. ``@step(at_most_once=True)`` records ``step.started`` before each attempt instead (one more
write); an attempt found started but without an outcome is not run again: it counts as an
attempt that failed with ``StepInterruptedError``, and the step's retry policy decides, as for
any failure, whether a new attempt follows (``retry_interrupted=False``: never). A step that
gives up raises it (recorded, so every replay raises it too); the workflow may catch it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar, overload

from pyworkflow.core import context as _ctx
from pyworkflow.core.duration import parse_duration
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.fan_out_policy import as_serdes, serdes_for
from pyworkflow.core.registry import StepDefinition, register_step, type_hints
from pyworkflow.core.retry import (
    describe_error,
    rebuild_error,
    retry_after_seconds,
    validate_retry_delay,
)
from pyworkflow.core.retry_policy import LegacyRetry, RetryPolicy
from pyworkflow.core.serde import check_result, constrained, from_jsonable, to_jsonable
from pyworkflow.exceptions import (
    RetryableError,
    StepInterruptedError,
    SuspensionSignal,
)

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("pyworkflow")


@overload
def step(name: F) -> F: ...
@overload
def step(
    name: str | None = None,
    max_retries: int | None = None,
    retry_delay: str | int | float | list[int | float] = "exponential",
    timeout: int | float | str | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    at_most_once: bool = False,
    retry: RetryPolicy | None = None,
    retry_interrupted: bool = True,
    serdes: Any = None,
) -> Callable[[F], F]: ...


def step(
    name: Any = None,
    max_retries: int | None = None,
    retry_delay: str | int | float | list[int | float] = "exponential",
    timeout: int | float | str | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    at_most_once: bool = False,
    retry: RetryPolicy | None = None,
    retry_interrupted: bool = True,
    serdes: Any = None,
) -> Any:
    """Mark a function as a durable step. Usable as ``@step`` or ``@step(...)``. An ``async
    def`` runs on the event loop; a plain ``def`` runs in a worker thread (await it either way).

    ``max_retries`` retries after the first attempt (default: ``configure(default_retries=)``,
    3); ``retry_delay`` is "exponential" (1 s, 2 s,
    4 s… up to 5 min), seconds, or a list of seconds per retry; ``timeout`` (seconds or "30s")
    bounds each attempt. Raise ``FatalError`` to fail without retrying, ``RetryableError(
    retry_after=...)`` to choose the wait. A timeout cannot stop code that blocks the event loop
    (an ``async def`` calling ``time.sleep``): such a step is reported in a warning; blocking
    code belongs in a plain ``def`` step. A timed-out thread is not killed (Python cannot): the
    attempt fails and may be retried while it still runs.

    ``retry``: a ``RetryPolicy`` (which errors, how many attempts, backoff, jitter) instead of
    ``max_retries``/``retry_delay``, which it cannot be combined with.

    ``serdes``: how the step's result is recorded, an object with ``serialize(value)`` /
    ``deserialize(data)`` or a pair of functions (AWS's per-step ``SerDes``): the recorded value
    is ``serialize(result)`` (JSON) and the step returns ``deserialize`` of it, live and on every
    replay alike. It takes precedence over a fan-out's ``serdes=`` for this step.

    ``at_most_once`` (see the module doc): never run an attempt twice. An attempt interrupted
    (its process died between starting it and recording its outcome) counts as an attempt that
    failed with ``StepInterruptedError``, retried by the step's policy like any failure (the
    AWS SDKs' at-most-once-per-retry); ``retry_interrupted=False`` fails the step at once
    instead.
    """
    if callable(name):
        return step()(name)
    if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
        raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    validate_retry_delay(retry_delay)
    if retry is not None:
        if not isinstance(retry, RetryPolicy):
            raise TypeError(f"@step retry takes a RetryPolicy, got {retry!r}")
        if max_retries is not None or retry_delay != "exponential":
            raise ValueError(
                "@step takes either retry=RetryPolicy(...) or max_retries/retry_delay, not both"
            )
    timeout_s = None if timeout is None else parse_duration(timeout, name="@step timeout")
    codec = as_serdes(serdes)

    def decorate(func: F) -> F:
        if not callable(func) or inspect.isclass(func):
            raise TypeError(f"@step decorates a function, got {func!r}")
        returns = type_hints(func).get("return")
        defn = StepDefinition(
            name=name or func.__name__,
            func=func,
            max_retries=max_retries,
            retry_delay=retry_delay,
            timeout=timeout_s,
            metadata=dict(metadata or {}),
            return_annotation=returns,
            retry=retry,
            constrained=constrained(returns),
            serdes=codec,
        )
        register_step(defn)

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await execute_step(
                defn, args, kwargs, at_most_once=at_most_once, retry_interrupted=retry_interrupted
            )

        wrapper.__step__ = True  # type: ignore[attr-defined]
        wrapper.__step_name__ = defn.name  # type: ignore[attr-defined]
        wrapper.__step_definition__ = defn  # type: ignore[attr-defined]
        wrapper.__step_at_most_once__ = at_most_once  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _invoke(defn: StepDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Awaitable[Any]:
    """The step's body as an awaitable: an ``async def`` runs on the event loop, a plain
    ``def`` in a thread of its own (with this task's context), so blocking code in it neither
    stops the loop (other runs, lease renewals) nor escapes its timeout."""
    if inspect.iscoroutinefunction(defn.func):
        return defn.func(*args, **kwargs)  # type: ignore[no-any-return]
    return _in_thread(functools.partial(defn.func, *args, **kwargs))


#: ``def`` steps running at once per event loop; more wait for a slot. A step abandoned by its
#: timeout gives its slot back at once, though its thread may hang on.
THREAD_SLOTS = 64
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def _in_thread(call: Callable[[], Any]) -> Any:
    """Run ``call`` in a new daemon thread. Not the loop's default executor: a step hung past
    its timeout keeps its thread (Python cannot kill one), and a few of them would fill a
    shared pool and starve every other run's ``def`` steps (and the loop's own use of it).
    A daemon thread also never holds up the interpreter's exit."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(THREAD_SLOTS)
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Callable[[], None]) -> None:
        if not done.done():  # not if the waiter went away (a timeout, a cancel)
            outcome()

    def run() -> None:
        try:
            result = context.run(call)
            outcome = functools.partial(done.set_result, result)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            outcome = functools.partial(done.set_exception, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, outcome)

    async with slots:
        threading.Thread(target=run, name="pyworkflow-step", daemon=True).start()
        return await done


async def _call(defn: StepDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if defn.timeout is None:
        return await _invoke(defn, args, kwargs)
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(_invoke(defn, args, kwargs), defn.timeout)
    except TimeoutError:
        raise TimeoutError(f"Step {defn.name!r} timed out after {defn.timeout:g}s") from None
    took = time.perf_counter() - started
    if took > defn.timeout:
        # wait_for only fires when the loop runs: this async body held the loop past its
        # timeout (time.sleep, CPU work, a blocking client), so nothing could interrupt it.
        logger.warning(
            "Step %r took %.1fs, past its timeout of %gs, without letting the event loop run: "
            "the timeout could not interrupt it, and nothing else in this process ran "
            "meanwhile. Make it a plain 'def' step (it then runs in a thread and its timeout "
            "holds) or await non-blocking calls in it.",
            defn.name,
            took,
            defn.timeout,
        )
    return result


async def execute_step(
    defn: StepDefinition,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    at_most_once: bool = False,
    retry_interrupted: bool = True,
) -> Any:
    ctx = _ctx.current()
    installed = _ctx.override()
    if ctx is None and installed is not None:
        # Under a context the user installed (a MockContext): pyworkflow-engine checks its
        # cancellation, then calls the step directly (recorded only by ``ctx.run``).
        await installed.check_cancellation()
        return await _invoke(defn, args, kwargs)
    if ctx is None or ctx.in_step:
        # Outside a workflow, or a step calling a step: plain call, nothing recorded.
        return await _invoke(defn, args, kwargs)

    op, rec = await ctx.begin("step", defn.name)
    ctx.check_cancellation(rec)
    # The step's own serdes=, else a fan-out's (the step runs in one of its branches), records
    # the result instead of plain JSON.
    codec = defn.serdes if defn.serdes is not None else serdes_for(ctx)
    if rec is not None and rec.terminal is not None:
        if rec.terminal.type == EventType.STEP_COMPLETED:
            if codec is not None:
                return codec.deserialize(rec.terminal.data.get("result"))
            return from_jsonable(rec.terminal.data.get("result"), defn.return_annotation)
        if rec.terminal.type == EventType.STEP_CANCELLED:
            # The workflow's own code cancelled it (asyncio.wait_for, asyncio.timeout): they
            # turned that into a TimeoutError, which the step raises at once on replay.
            raise TimeoutError(str(rec.terminal.data.get("error", "")))
        raise rebuild_error(rec.terminal.data, defn.name)

    retries = [e for e in rec.events if e.type == EventType.STEP_RETRYING] if rec else []
    attempt = len(retries) + 1
    if (
        at_most_once
        and rec is not None
        and len([e for e in rec.events if e.type == EventType.STEP_STARTED]) >= attempt
    ):
        interrupted = StepInterruptedError(
            f"Step {defn.name!r} (operation #{op}, attempt {attempt}) was interrupted: it "
            "started but its outcome was never recorded, and it is at_most_once, so that "
            "attempt is not run again"
        )
        retry_in = _retry_in(ctx, defn, interrupted, attempt, op) if retry_interrupted else None
        if retry_in is None:
            await _record_failure(ctx, defn, op, attempt, interrupted)
            raise interrupted
        retries.append(await _record_retry(ctx, defn, op, attempt, interrupted, retry_in))
        attempt += 1
    if retries:
        await _wait_until(ctx, retries[-1].data["retry_at"], op)

    while True:
        if ctx.reporter is not None:
            ctx.reporter.attempt_started(op, attempt)
        if at_most_once:
            await ctx.record(
                EventType.STEP_STARTED,
                {"op": op, "name": defn.name, "step_name": defn.name, "attempt": attempt},
            )
        started = time.perf_counter()
        step_token = _ctx.enter_step(f"step {defn.name!r}")
        error: Exception | None = None
        try:
            what = f"The result of step {defn.name!r}"
            value = await _call(defn, args, kwargs)
            if codec is not None:
                value = codec.serialize(value)
            payload = to_jsonable(value, what=what)
            if defn.constrained and codec is None:
                check_result(payload, defn.return_annotation, what=what)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, then retried or raised
            error = exc
        except asyncio.CancelledError:
            _note_cancelled(ctx, defn, op, attempt)
            raise
        finally:
            _ctx.leave_step(step_token)
        if error is None:
            await ctx.record(
                EventType.STEP_COMPLETED,
                {
                    "op": op,
                    "name": defn.name,
                    "step_name": defn.name,
                    "result": payload,
                    "attempt": attempt,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
            if codec is not None:  # the value every replay returns, live too
                return codec.deserialize(payload)
            return from_jsonable(payload, defn.return_annotation)

        retry_in = _retry_in(ctx, defn, error, attempt, op)
        if retry_in is None:
            await _record_failure(ctx, defn, op, attempt, error)
            raise rebuild_error(describe_error(error), defn.name) from error
        retrying = await _record_retry(ctx, defn, op, attempt, error, retry_in)
        attempt += 1
        await _wait_until(ctx, retrying.data["retry_at"], op)


def policy_of(defn: StepDefinition, ctx: _ctx.ExecutionContext) -> RetryPolicy | LegacyRetry:
    """The step's retry policy: its ``RetryPolicy``, else what ``max_retries``/``retry_delay``
    say (``max_retries`` defaults to ``configure(default_retries=)``, read when it runs)."""
    if defn.retry is not None:
        return defn.retry
    max_retries = defn.max_retries if defn.max_retries is not None else ctx.default_retries
    return LegacyRetry(max_retries=max_retries, retry_delay=defn.retry_delay)


def _retry_in(
    ctx: _ctx.ExecutionContext, defn: StepDefinition, error: BaseException, attempt: int, op: int
) -> float | None:
    """Seconds until the next attempt after ``error`` ended attempt ``attempt``, or None: the
    step fails. Decided here, live, once: the answer is recorded and replays read it."""
    seed = f"{ctx.run_id}/{ctx.path_of(op)}/{attempt}"
    delay = policy_of(defn, ctx).next_delay(error, attempt, seed)
    if delay is None:
        return None
    asked = retry_after_seconds(getattr(error, "retry_after", None), ctx.now())
    return delay if asked is None else asked


async def _record_retry(
    ctx: _ctx.ExecutionContext,
    defn: StepDefinition,
    op: int,
    attempt: int,
    error: BaseException,
    retry_in: float,
) -> Event:
    retry_at = ctx.now() + timedelta(seconds=retry_in)
    return await ctx.record(
        EventType.STEP_RETRYING,
        {
            "op": op,
            "name": defn.name,
            "step_name": defn.name,
            "attempt": attempt,
            "retry_at": retry_at.isoformat(),
            "delay_seconds": retry_in,
            **describe_error(error),
        },
    )


def _note_cancelled(
    ctx: _ctx.ExecutionContext, defn: StepDefinition, op: int, attempt: int
) -> None:
    """The step was cancelled mid-attempt. By the workflow's own code (a timeout around it):
    record it, or every execution would run it again and a replay would find a hole. Deferred:
    it is written only if the execution goes on; a teardown (shutdown, a closed loop) writes
    nothing, and the engine's own cancels (a fan-out stopping early) are not the workflow's."""
    if asyncio.current_task() in ctx.engine_cancelled:
        return
    ctx.record_later(
        EventType.STEP_CANCELLED,
        {
            "op": op,
            "name": defn.name,
            "step_name": defn.name,
            "attempt": attempt,
            "error": f"Step {defn.name!r} was cancelled by the workflow (a timeout around it)",
            "error_type": "CancelledError",
        },
    )


async def _record_failure(
    ctx: _ctx.ExecutionContext, defn: StepDefinition, op: int, attempt: int, exc: BaseException
) -> None:
    await ctx.record(
        EventType.STEP_FAILED,
        {
            "op": op,
            "name": defn.name,
            "step_name": defn.name,
            "attempt": attempt,
            **describe_error(exc),
        },
    )


async def _wait_until(ctx: _ctx.ExecutionContext, when_iso: str, op: int) -> None:
    """Wait for a retry backoff: inline if short, else suspend the run until then."""
    from datetime import datetime

    when = datetime.fromisoformat(when_iso)
    remaining = (when - ctx.now()).total_seconds()
    if remaining <= 0:
        return
    if not ctx.is_durable or remaining <= ctx.inline_wait_max:
        await ctx.clock.sleep(remaining)
        return
    raise await ctx.suspension(SuspensionSignal("retry", wake_at=when, op=op))


__all__ = ["step", "execute_step", "RetryableError", "StepInterruptedError"]

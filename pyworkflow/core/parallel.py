"""``parallel`` and ``map``: run durable branches concurrently, deterministically on replay.

Each branch is a coroutine run as an asyncio task inside the one execution (one worker
invocation on AWS). Its durable calls are identified by their *path* in the fan-out ("3.1.0":
fan-out op 3, branch 1, first call), not by the order in which branches happened to reach them,
so a branch may make several calls (a step, then a sleep, then a child...) and still replay onto
its own history. The fan-out records its item count (``parallel.started``, riding with the first
write: no request of its own), which replay checks; each completed step costs its one
``step.completed`` as usual. An early stop (``min_successful`` / ``tolerated_failures``) records
one ``parallel.completed`` naming the items that had finished, so a replay reports the same
outcome instead of deciding again (which items finish first depends on timing).

Failures of items are collected, not raised: the result lists successes, failures (the
exception per index) and skipped items; ``raise_if_failed()`` turns failures into an error.
Control flow is not a failure: cancellation, a lost write race, nondeterminism and the like
cancel the running branches and propagate. A branch that must wait (a sleep, a retry backoff,
a hook) parks; the others go on, and the run suspends until the earliest wake-up once nothing
else can run.

Early stop: once ``min_successful`` items succeeded, or more than ``tolerated_failures`` failed
(or so many failed that ``min_successful`` is out of reach), no further item starts and running
ones are cancelled (their in-flight step is not recorded). Those items are reported as skipped.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from pyworkflow.core import context as _ctx
from pyworkflow.core.events import EventType
from pyworkflow.core.fan_out_policy import (
    CompletionPolicy,
    CompletionReason,
    FanOutConfigError,
    FanOutError,
    FanOutResult,
    ItemStatus,
    Serdes,
    TerminationMode,
    as_serdes,
    item_serdes,
    policy,
    takes_index,
)
from pyworkflow.exceptions import (
    CancellationError,
    ConcurrencyError,
    SuspensionSignal,
)

T = TypeVar("T")


async def parallel(
    *awaitables: Awaitable[Any],
    max_concurrency: int | None = None,
    min_successful: int | None = None,
    tolerated_failures: int | None = None,
    name: str | None = None,
    names: Sequence[str] | None = None,
    tolerated_failure_count: int | None = None,
    tolerated_failure_percentage: float | None = None,
    on_completion: TerminationMode | str = TerminationMode.CANCEL,
    serdes: Serdes | tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None,
) -> FanOutResult[Any]:
    """Run coroutines concurrently as durable branches::

        res = await pyworkflow.parallel(charge(order), reserve(order), notify(order))
        receipt, reservation, _ = res.raise_if_failed()

    Completion (AWS's ``CompletionConfig``): ``min_successful`` items succeeded, or more than
    ``tolerated_failure_count`` (older name: ``tolerated_failures``) or more than
    ``tolerated_failure_percentage`` percent of all items failed, or ``min_successful`` can no
    longer be reached. Then no further item starts; ``on_completion`` says what happens to the
    items already running: ``"cancel"`` (default; they are skipped) or ``"wait"`` (they finish
    and are reported). ``completion_reason`` says why it completed.

    ``serdes``: how the steps run directly by the branches record their results (an object
    with ``serialize``/``deserialize``, or a pair of functions), instead of plain JSON.

    ``name`` labels the fan-out and ``names`` its branches, one each, in the history
    (``parallel.started``), ``runs show`` and the web UI; labels are not part of the
    operations' identity (renaming one does not break a replay).

    Pass coroutine objects (``charge(order)``), not tasks: a branch must start inside the
    fan-out to be replayed onto its own history. Outside a workflow the same thing runs plainly.
    """
    for a in awaitables:
        if isinstance(a, asyncio.Future):
            raise TypeError(
                "parallel() takes coroutines such as step(x), not tasks or futures: "
                "a task started outside the fan-out cannot be replayed as a branch"
            )
    coros = [a if inspect.iscoroutine(a) else _await(a) for a in awaitables]
    try:
        labels = _labels(name, list(names) if names is not None else None, len(coros))
        rules = policy(
            len(coros),
            max_concurrency=max_concurrency,
            min_successful=min_successful,
            tolerated_failures=tolerated_failures,
            tolerated_failure_count=tolerated_failure_count,
            tolerated_failure_percentage=tolerated_failure_percentage,
            on_completion=on_completion,
        )
        codec = as_serdes(serdes)
    except (TypeError, ValueError):
        for c in coros:
            c.close()
        raise
    return await _fan_out(
        "parallel",
        [_once(c) for c in coros],
        rules,
        closers=[c.close for c in coros],
        labels=labels,
        serdes=codec,
    )


async def map(  # noqa: A001 - pyworkflow.map, like the builtin but durable
    fn: Callable[..., Awaitable[T]],
    items: Iterable[Any],
    max_concurrency: int | None = None,
    min_successful: int | None = None,
    tolerated_failures: int | None = None,
    name: str | None = None,
    item_name: Callable[[Any, int], str] | None = None,
    tolerated_failure_count: int | None = None,
    tolerated_failure_percentage: float | None = None,
    on_completion: TerminationMode | str = TerminationMode.CANCEL,
    serdes: Serdes | tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None,
) -> FanOutResult[T]:
    """Call ``fn(item)`` (a step, a child workflow launcher, any async function) for each item,
    concurrently, at most ``max_concurrency`` at a time::

        res = await pyworkflow.map(resize, images, max_concurrency=10, tolerated_failures=2)
        for index, error in res.failed.items(): ...

    ``fn(item, index)`` when ``fn`` takes two positional parameters without defaults (read
    from its signature; a ``@step`` keeps the one it decorates). Completion options and
    ``serdes`` as for ``parallel``. ``name`` labels the fan-out; ``item_name(item, index)``
    labels each item (both shown in the history, ``runs show`` and the web UI; not part of
    the operations' identity).
    """
    values = list(items)
    op_name = "map:" + str(getattr(fn, "__step_name__", None) or getattr(fn, "__name__", "fn"))
    if item_name is not None and not callable(item_name):
        raise TypeError(f"map() item_name must be a function (item, index) -> str: {item_name!r}")
    rules = policy(
        len(values),
        max_concurrency=max_concurrency,
        min_successful=min_successful,
        tolerated_failures=tolerated_failures,
        tolerated_failure_count=tolerated_failure_count,
        tolerated_failure_percentage=tolerated_failure_percentage,
        on_completion=on_completion,
    )
    codec = as_serdes(serdes)
    names = [item_name(v, i) for i, v in enumerate(values)] if item_name is not None else None
    indexed = takes_index(fn)
    return await _fan_out(
        op_name,
        [_call(fn, v, i if indexed else None) for i, v in enumerate(values)],
        rules,
        labels=_labels(name, names, len(values)),
        serdes=codec,
    )


def _labels(name: str | None, names: list[str] | None, n: int) -> dict[str, Any]:
    """What ``parallel.started`` records of the fan-out's labels (nothing when it has none)."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"a fan-out's name must be a string, got {name!r}")
    if names is not None:
        if len(names) != n or not all(isinstance(x, str) for x in names):
            raise ValueError(f"names must be {n} string(s), one per branch, got {names!r}")
    labels: dict[str, Any] = {}
    if name is not None:
        labels["label"] = name
    if names is not None:
        labels["item_names"] = names
    return labels


def _call(
    fn: Callable[..., Awaitable[T]], value: Any, index: int | None
) -> Callable[[], Awaitable[T]]:
    return (lambda: fn(value)) if index is None else (lambda: fn(value, index))


def _once(coro: Coroutine[Any, Any, Any]) -> Callable[[], Awaitable[Any]]:
    return lambda: coro


async def _await(a: Awaitable[T]) -> T:
    return await a


async def _run(thunk: Callable[[], Awaitable[T]]) -> T:
    return await thunk()


async def _run_branch(
    ctx: _ctx.ExecutionContext, branch: _ctx.Branch, thunk: Callable[[], Awaitable[T]]
) -> T:
    """A branch, checked at its end against what the history recorded of it."""
    try:
        result = await thunk()
    except _CONTROL:
        raise
    except Exception:
        ctx.check_branch_end(branch)  # an item failure ends the branch too
        raise
    ctx.check_branch_end(branch)
    return result


# Exceptions of a branch that are the run's business, not the item's: they end the fan-out.
_CONTROL = (CancellationError, ConcurrencyError)


async def _fan_out(
    name: str,
    thunks: list[Callable[[], Awaitable[Any]]],
    rules: CompletionPolicy,
    closers: list[Callable[[], None]] | None = None,
    labels: dict[str, Any] | None = None,
    serdes: Serdes | None = None,
) -> FanOutResult[Any]:
    n = len(thunks)
    ctx = _ctx.current()
    if ctx is None or ctx.in_step:
        # Outside a workflow (or inside a step): the same semantics, nothing recorded.
        runner = _Runner(None, None, "", thunks, rules, closers, serdes=serdes)
        return await runner.run(allowed=None)

    # No checkpoint for the fan-out itself (its one event rides with the next write): its
    # branches' operations take theirs.
    op, rec = ctx.allocate("parallel", name)
    _check_items(ctx, op, rec, name, n)
    if rec is None:
        ctx.record_later(
            EventType.PARALLEL_STARTED, {"op": op, "name": name, "total": n, **(labels or {})}
        )
    stop = rec.terminal.data if rec is not None and rec.terminal is not None else None
    # Before any branch records anything. Inside a branch that is itself settled (an outer
    # fan-out the recorded run finished), every nested branch is settled too.
    settled = ctx.recorded_past(op) or ctx.position_settled()
    block = ctx.open_block(op)
    prefix = ctx.fan_out_prefix(op)
    runner = _Runner(ctx, block, prefix, thunks, rules, closers, serdes=serdes, settled=settled)

    def stop_record(result: FanOutResult[Any], next_op: int | None) -> dict[str, Any]:
        return {
            "op": op,
            "name": name,
            "reason": result.completion_reason.value,
            # cancel: the items that finished before the stop; wait: every item started
            # (all of them finish, replays included)
            "finished": sorted(runner.started)
            if rules.on_completion == TerminationMode.WAIT
            else [i for i, s in enumerate(result.statuses) if s != ItemStatus.SKIPPED],
            "on_completion": rules.on_completion.value,
            "next_op": next_op,
            "total": n,
        }

    def decided_then_parked(result: FanOutResult[Any]) -> None:
        # "wait": the fan-out completed early but a started item must wait (a sleep, a
        # hook). A replay would decide again with its recorded items finishing in another
        # order: the decision rides with the suspension's write. Its end is not known yet
        # (next_op None): every replay runs the same items to the same end.
        ctx.record_later(EventType.PARALLEL_COMPLETED, stop_record(result, None))

    runner.decided_then_parked = decided_then_parked
    try:
        if stop is not None:  # an early stop recorded by an earlier execution decides
            result = await runner.run(allowed=set(stop["finished"]))
            result.completion_reason = CompletionReason(stop["reason"])
            end = stop.get("next_op")
            ctx.close_block(
                block,
                int(end) if end is not None else max(block.top + 1, ctx.recorded_end(op, prefix)),
            )
            return result
        result = await runner.run(allowed=None)
    except BaseException:
        ctx.close_block(block, ctx.recorded_end(op, prefix), exact=True)
        raise
    if result.skipped or runner.stopped:
        # Recorded whenever this execution stopped the fan-out early, even if every item had
        # finished by then: which items finished before the stop depends on timing, and a
        # replay (whose recorded items finish in another order) must not decide it again.
        # Skipped branches may have recorded ops in an earlier execution, with numbers above
        # any this one took: the ops after the fan-out come after those too.
        next_op = max(block.top + 1, ctx.recorded_end(op, prefix))
        ctx.close_block(block, next_op)
        await ctx.record(EventType.PARALLEL_COMPLETED, stop_record(result, next_op))
    else:
        ctx.close_block(block)
    return result


def _check_items(
    ctx: _ctx.ExecutionContext, op: int, rec: _ctx.OpRecord | None, name: str, n: int
) -> None:
    """The same number of items as the recorded run (``parallel.started`` says how many; a
    history from before it at least cannot hold items beyond ``n``)."""
    started = rec.first(EventType.PARALLEL_STARTED) if rec is not None else None
    recorded = started.data.get("total") if started is not None else None
    if recorded is None and ctx.recorded_items(op) > n:
        recorded = f"at least {ctx.recorded_items(op)}"
    if recorded is not None and recorded != n:
        _ctx._diverge(
            ctx.run_id,
            ctx.path_of(op),
            f"{name} of {recorded} item(s)",
            f"{name} of {n} item(s)",
            f"the history recorded {name} with {recorded} item(s) but the code now passes {n}",
        )


class _Runner:
    """Starts branches in input order, at most ``limit`` at a time, and gathers outcomes."""

    def __init__(
        self,
        ctx: _ctx.ExecutionContext | None,
        block: _ctx.Block | None,
        prefix: str,
        thunks: list[Callable[[], Awaitable[Any]]],
        rules: CompletionPolicy,
        closers: list[Callable[[], None]] | None,
        *,
        serdes: Serdes | None = None,
        settled: bool = False,
    ) -> None:
        self.ctx, self.block, self.prefix = ctx, block, prefix
        self.settled = settled
        self.thunks = thunks
        self.rules = rules
        self.limit = rules.max_concurrency or max(1, len(thunks))
        self.closers = closers
        self.serdes = serdes
        self.result: FanOutResult[Any] = FanOutResult([ItemStatus.SKIPPED] * len(thunks))
        self.finished: asyncio.Queue[tuple[int, asyncio.Task[Any]]] = asyncio.Queue()
        self.stopped = False  # this execution decided to complete early
        self.started: set[int] = set()
        self.running: dict[int, asyncio.Task[Any]] = {}
        self.parked: list[SuspensionSignal] = []
        self.decided_then_parked: Callable[[FanOutResult[Any]], None] | None = None

    def _start(self, i: int) -> None:
        context = contextvars.copy_context()
        # Always set: a nested fan-out without serdes must not use the outer one's.
        context.run(item_serdes.set, (self.ctx, self.serdes) if self.serdes else None)
        run: Coroutine[Any, Any, Any]
        if self.ctx is not None and self.block is not None:
            branch = _ctx.Branch(
                prefix=f"{self.prefix}.{i}", block=self.block, settled_in_history=self.settled
            )
            context.run(_ctx.enter_branch, branch)
            run = _run_branch(self.ctx, branch, self.thunks[i])
        else:
            run = _run(self.thunks[i])
        task = asyncio.get_running_loop().create_task(run, context=context)
        self.started.add(i)
        self.running[i] = task
        task.add_done_callback(functools.partial(self._done, i))

    def _done(self, i: int, task: asyncio.Task[Any]) -> None:
        self.finished.put_nowait((i, task))

    async def run(self, allowed: set[int] | None) -> FanOutResult[Any]:
        """Run the items (only those in ``allowed``, as a recorded early stop says, if given:
        then nothing is decided again)."""
        n = len(self.thunks)
        wait = self.rules.on_completion == TerminationMode.WAIT
        next_i = 0
        reason: CompletionReason | None = None
        control: BaseException | None = None
        try:
            while True:
                while (
                    reason is None
                    and control is None
                    and next_i < n
                    and len(self.running) < self.limit
                ):
                    if allowed is None or next_i in allowed:
                        self._start(next_i)
                    elif self.closers:
                        self.closers[next_i]()
                    next_i += 1
                if not self.running:
                    break
                i, task = await self.finished.get()
                self.running.pop(i, None)
                control = control or self._collect(i, task)
                if control is not None:
                    break
                if reason is None and allowed is None:
                    reason = self.rules.decide(len(self.result.values), len(self.result.errors))
                    if reason is not None:
                        self.stopped = True
                        if not wait:
                            break
        finally:
            # An early stop, a control signal, or this coroutine itself cancelled: stop the rest.
            await self._cancel_running()
            for j in range(next_i, n):
                if self.closers:
                    self.closers[j]()
        if control is not None:
            raise control
        if self.parked and (reason is None or wait):
            if reason is not None:
                self.result.completion_reason = reason
                if self.decided_then_parked is not None:
                    self.decided_then_parked(self.result)
            signal = _earliest(self.parked)
            raise signal if self.ctx is None else await self.ctx.suspension(signal)
        self.result.completion_reason = reason or (
            CompletionReason.FAILURE_TOLERANCE_EXCEEDED
            if self.rules.tolerance_exceeded(len(self.result.errors))
            else CompletionReason.ALL_COMPLETED
        )
        return self.result

    def _collect(self, i: int, task: asyncio.Task[Any]) -> BaseException | None:
        """Record item ``i``'s outcome; return a control signal that must end the fan-out."""
        if task.cancelled():
            return None  # cancelled by us: stays skipped
        exc = task.exception()
        if exc is None:
            self.result.values[i] = task.result()
            self.result.statuses[i] = ItemStatus.SUCCEEDED
            return None
        if isinstance(exc, SuspensionSignal):
            self.parked.append(exc)
            return None
        if isinstance(exc, _CONTROL) or not isinstance(exc, Exception):
            return exc
        self.result.errors[i] = exc
        self.result.statuses[i] = ItemStatus.FAILED
        return None

    async def _cancel_running(self) -> None:
        running, self.running = self.running, {}
        if self.ctx is not None and running:
            # Never while a branch is writing: a write cut off in flight may still reach the
            # store while the execution forgets it, leaving its next write a gap.
            async with self.ctx.write_lock:
                self.ctx.engine_cancelled.update(running.values())
                for task in running.values():
                    task.cancel()
        else:
            for task in running.values():
                task.cancel()
        if running:
            await asyncio.wait(running.values())
        # Outcomes of branches that finished before the cancellation took hold still count.
        for i, task in running.items():
            if not task.cancelled() and self._collect(i, task) is not None:
                self.result.statuses[i] = ItemStatus.SKIPPED
            if self.closers:  # a branch cancelled before it first ran never awaited its coroutine
                self.closers[i]()


def _earliest(parked: list[SuspensionSignal]) -> SuspensionSignal:
    """The run wakes at the earliest time any parked branch needs (None: only outside events,
    such as hook payloads or children ending, can move it on)."""
    timed = [s for s in parked if s.wake_at is not None]
    return min(timed, key=lambda s: s.wake_at) if timed else parked[0]  # type: ignore[arg-type,return-value]


__all__ = [
    "parallel",
    "map",
    "FanOutResult",
    "FanOutError",
    "FanOutConfigError",
    "ItemStatus",
    "CompletionReason",
    "TerminationMode",
]

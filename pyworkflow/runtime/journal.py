"""What an execution reads and writes through: the ``Journal`` of ``pyworkflow.core.context``
(``RunJournal``), and the compare-and-set that flags a run for cancellation.

Every journal call that touches the store or a transport is wrapped by ``_io``: an
infrastructure failure there (a throttle, a dropped connection) raises ``StoreUnavailable``, a
``BaseException`` the workflow's own ``except Exception`` cannot turn into the run's outcome; the
executor re-raises the original error, the drive fails, and the run is driven again later.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pydantic_core import PydanticSerializationError

from pyworkflow.core.clock import Clock
from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, HookStatus, RunStatus, WorkflowRun
from pyworkflow.core.registry import get_workflow
from pyworkflow.core.serde import describe
from pyworkflow.exceptions import (
    ConcurrencyError,
    ConfigurationError,
    RestartSignal,
    RunFailure,
    SerializationError,
    StoreUnavailable,
    SuspensionSignal,
    WorkflowError,
    WorkflowNotFoundError,
)
from pyworkflow.runtime.instrumented import recorded_trace
from pyworkflow.runtime.payloads import PayloadGuard, fail_oversized
from pyworkflow.storage.base import StorageBackend

if TYPE_CHECKING:
    from pyworkflow.core.context import ExecutionContext
    from pyworkflow.runtime.executor import Executor

#: how often a write that lost a compare-and-set is retried before giving up
MAX_RESTARTS = 50

logger = logging.getLogger("pyworkflow")


async def request_cancel(
    storage: StorageBackend, clock: Clock, run_id: str, reason: str | None
) -> WorkflowRun | None:
    """Flag a run for cancellation (compare-and-set). Returns the run, or None if it was
    already terminal."""
    for _ in range(MAX_RESTARTS):
        run = await storage.get_run(run_id)
        if run is None:
            raise WorkflowNotFoundError(run_id)
        if run.status.is_terminal:
            return None
        if run.cancel_requested:
            return run
        now = clock.now()
        update: dict[str, Any] = {
            "cancel_requested": True,
            "cancel_reason": reason,
            "updated_at": now,
        }
        if run.status in (RunStatus.SUSPENDED, RunStatus.PENDING):
            update["wake_at"] = now
        try:
            return await storage.update_run(
                run.model_copy(update=update), expected_version=run.version
            )
        except ConcurrencyError:
            continue
    raise WorkflowError(f"Could not flag run {run_id} for cancellation: too many conflicts")


T = TypeVar("T")
P = ParamSpec("P")


def _run_id(args: tuple[Any, ...]) -> str:
    journal = args[0] if args else None
    return journal.run.run_id if isinstance(journal, RunJournal) else "?"


def _io(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """A journal call whose infrastructure failure (not a ``WorkflowError``: those are the
    run's business) or lost write race must stop the execution instead of becoming the run's
    outcome."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except ConcurrencyError as exc:
            # The history or the record moved under this execution (another worker took the
            # run): it must stop and reload, whatever the workflow's ``except Exception`` does.
            raise RestartSignal() from exc
        except WorkflowError:
            raise
        except (UnicodeError, PydanticSerializationError, RecursionError) as exc:
            # The data, not the store: retrying would fail the same way on every pass, so the
            # run fails, whatever the workflow catches. (The serde checks values before they
            # get here; this catches what slipped by.)
            raise RunFailure(
                SerializationError(
                    f"A value of run {_run_id(args)} cannot be stored: {describe(exc)}"
                )
            ) from exc
        except Exception as exc:
            raise StoreUnavailable(exc) from exc

    return call


class RunJournal:
    """The ``Journal`` an execution writes through (see ``pyworkflow.core.context``)."""

    def __init__(self, executor: Executor, run: WorkflowRun) -> None:
        self.executor = executor
        self.storage = executor.storage
        self.clock = executor.clock
        self.run = run
        self.ctx: ExecutionContext | None = None
        self._looked_at = executor.clock.now()
        # One lease renewal at a time: the execution's checkpoints and the heartbeat share it.
        self._renewing = asyncio.Lock()
        # An outsider changed the record during this execution (a hook payload, a child's
        # ending: each touches the run). A suspension decided before it may be stale.
        self.outside_change = False
        # What the store can hold, looked at once per execution (None: anything)
        self.guard = PayloadGuard.for_storage(self.storage)

    def fits(self, event: Event) -> bool:
        """Whether the store can hold ``event`` as it is (the execution defers only such)."""
        return self.guard is None or not self.guard.oversized([event])

    @_io
    async def write(self, events: list[Event]) -> None:
        expires = self.run.lease_expires_at
        if expires is not None and expires <= self.clock.now():
            # Our lease lapsed (this process stood still: a GC pause, a stopped VM) and the
            # run may be someone else's now. An append is conditional on its sequence only,
            # so take the lease back first, or stop: a zombie never writes into a live run.
            if not await self.renew_lease():
                raise RestartSignal()
        errors = self.guard.oversized(events) if self.guard is not None else None
        if not errors:
            await self.storage.append_events(self.run.run_id, events)
            return
        # A result the store cannot hold is recorded as the step's failure, in its place (the
        # history stays gap-free); the run then fails, whatever the workflow code catches.
        fitted, _, failure = fail_oversized(events, None, errors)
        await self.storage.append_events(self.run.run_id, fitted)
        if failure is not None:
            raise RunFailure(failure, written=True)

    @_io
    async def checkpoint(self) -> None:
        """Renew the lease when half of it is used; a moved version means someone changed the
        record: adopt it, and reload if that someone asked for cancellation."""
        now = self.clock.now()
        time_left = self.executor.time_left
        if time_left is not None and time_left() < self.executor.yield_margin:
            # Out of time in this invocation: suspend and wake at once, in a fresh one.
            raise SuspensionSignal("yield", wake_at=now)
        if (now - self._looked_at).total_seconds() >= self.executor.refresh_seconds:
            # A cancel from another process reaches a long execution within about this long,
            # at the cost of one read per interval of wall time (never one per step).
            self._looked_at = now
            if not await self.adopt_latest():
                raise RestartSignal()
        if not await self.renew_lease() or (self.ctx is not None and self.ctx.interrupted):
            raise RestartSignal()

    async def renew_lease(self) -> bool:
        """Extend the lease once a third of it is used (one conditional write): with a beat
        every third of a lease, a renewal that fails (the store throttled) still leaves the
        next one time before the lease lapses. False
        if the lease is lost: another worker took the run. A cancel request met on the way
        does not stop the renewal (the step under way still runs to its end); the execution
        reloads at its next operation to replay it."""
        now = self.clock.now()
        expires = self.run.lease_expires_at
        if expires is not None and expires - now > self.executor.lease * 2 / 3:
            return True  # fresh: nothing to write (nearly every step), so no lock to take
        async with self._renewing:
            now = self.clock.now()
            expires = self.run.lease_expires_at
            if expires is not None and expires - now > self.executor.lease * 2 / 3:
                return True
            for _ in range(MAX_RESTARTS):
                try:
                    self.run = await self.storage.update_run(
                        self.run.model_copy(
                            update={
                                "lease_expires_at": now + self.executor.lease,
                                "updated_at": now,
                            }
                        ),
                        expected_version=self.run.version,
                    )
                    return True
                except ConcurrencyError:
                    latest = await self.storage.get_run(self.run.run_id)
                    if latest is None or latest.lease_owner != self.executor.owner:
                        return False
                    if latest.cancel_requested and self.ctx and self.ctx.cancel_seq is None:
                        self.ctx.interrupted = True
                    self._adopt(latest)
            return False

    # --- heartbeat --------------------------------------------------------------------------
    # While a step runs, nothing reaches a checkpoint: every ``interval`` seconds of this
    # process's time a beat renews the lease, so a live owner keeps its run however long one
    # step takes. A timer, not a task: an execution shorter than one interval (nearly all)
    # costs nothing and never yields to other tasks for it.
    def start_heartbeat(self, interval: float) -> None:
        self._interval = interval
        self._stopped = False
        self._beat: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(interval, self._start_beat)

    def _start_beat(self) -> None:
        if not self._stopped:
            self._beat = asyncio.get_running_loop().create_task(self._renew_by_heartbeat())

    async def _renew_by_heartbeat(self) -> None:
        try:
            if not await self.renew_lease() and self.ctx is not None:
                self.ctx.interrupted = True  # lost: reload before the next operation
        except Exception:  # noqa: BLE001 - the store is down: try again at the next beat
            logger.warning("run %s: lease renewal failed", self.run.run_id, exc_info=True)
        if not self._stopped:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._start_beat)

    async def stop_heartbeat(self) -> None:
        """Stop beating; a renewal under way completes first, so the version the execution
        writes its ending against is the one the store has."""
        self._stopped = True
        self._timer.cancel()
        if self._beat is not None and not self._beat.done():
            await asyncio.wait([self._beat])

    def abort_heartbeat(self) -> None:
        """Stop beating without awaiting anything (a coroutine being torn down cannot)."""
        self._stopped = True
        self._timer.cancel()
        if self._beat is not None:
            self._beat.cancel()

    async def adopt_latest(self) -> bool:
        """Re-read the run record and take it as ours (outsiders only move its version). False
        when the execution must reload instead: the lease is lost, or a cancel it has not
        recorded yet was requested."""
        latest = await self.storage.get_run(self.run.run_id)
        # Ours only if we still hold it: a record with no owner was taken and released by
        # another worker meanwhile (this process stood still), whose history is ahead of ours.
        if latest is None or latest.lease_owner != self.executor.owner:
            return False
        if latest.cancel_requested and self.ctx and self.ctx.cancel_seq is None:
            return False
        self._adopt(latest)
        return True

    def _adopt(self, latest: WorkflowRun) -> None:
        if latest.version != self.run.version:
            self.outside_change = True
        self.run = latest

    @_io
    async def create_hook(self, hook: Hook) -> None:
        await self.storage.create_hook(hook)

    @_io
    async def get_hook(self, run_id: str, hook_id: str) -> Hook | None:
        return await self.storage.find_hook(run_id, hook_id=hook_id)

    @_io
    async def expire_hook(self, hook: Hook, status: HookStatus = HookStatus.EXPIRED) -> Hook:
        try:
            return await self.storage.update_hook(
                hook.model_copy(update={"status": status}),
                expected_version=hook.version,
            )
        except ConcurrencyError:
            latest = await self.storage.get_hook_by_hash(hook.token_hash)
            return latest or hook

    @_io
    async def start_child(
        self,
        workflow_name: str,
        child_run_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        op: int,
        parent_close_policy: str,
        wait: bool,
    ) -> None:
        defn = get_workflow(workflow_name)
        if defn is None:
            raise ConfigurationError(
                f"Child workflow {workflow_name!r} is not registered in this process"
            )
        try:
            await self.executor.create(
                defn,
                args,
                kwargs,
                run_id=child_run_id,
                trace_links=[recorded_trace(self.ctx.history if self.ctx else [])],
                parent_run_id=self.run.run_id,
                parent_op=op,
                parent_close_policy=parent_close_policy,
                nesting_depth=self.run.nesting_depth + 1,
            )
        except ConcurrencyError:
            return  # an earlier attempt created it; it is already on its way
        await self.executor.dispatcher.start_child(child_run_id, wait=wait)
        if wait:
            # The child's completion touched our record: adopt the new version; if that cannot
            # be done (a cancel request among the changes), reload before the next operation.
            if not await self.adopt_latest() and self.ctx is not None:
                self.ctx.interrupted = True

    @_io
    async def get_run(self, run_id: str) -> WorkflowRun | None:
        return await self.storage.get_run(run_id)

    @_io
    async def cancel_run(self, run_id: str, reason: str | None) -> None:
        await request_cancel(self.storage, self.clock, run_id, reason)
        await self.executor.dispatcher.wake(run_id, reason="cancel")

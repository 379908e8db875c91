"""The embedded runtime: runs in this process, on the configured storage (SQLite by default).

``start()`` drives a run inline until it completes or waits. Waits resume by themselves while
this process's event loop runs (``loop.call_later``, through ``transport.local.LoopDelivery``);
``pyworkflow worker`` picks up whatever is due after a restart. One asyncio lock per run keeps
two drives of the same run in this process from overlapping; across processes the run's lease
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from pyworkflow.config import get_config, get_storage, objects_generation
from pyworkflow.core.clock import Clock, SystemClock
from pyworkflow.core.context import Limits
from pyworkflow.core.events import Event
from pyworkflow.core.models import RunStatus, Schedule, ScheduleSpec, WorkflowRun
from pyworkflow.core.registry import WorkflowDefinition
from pyworkflow.exceptions import ConcurrencyError, RestartSignal
from pyworkflow.runtime.executor import Executor
from pyworkflow.settings import Settings, get_settings, settings_generation
from pyworkflow.storage.base import StorageBackend
from pyworkflow.transport.local import LoopDelivery

logger = logging.getLogger("pyworkflow")


# How often a worker pass looks again at a run waiting for a child (see Executor.child_check):
# in-process, the child's ending wakes its parent at once; this only covers a lost wake-up.
CHILD_CHECK_SECONDS = 60.0


class LocalRuntime:
    def __init__(
        self,
        storage: StorageBackend,
        clock: Clock | None = None,
        *,
        lease_seconds: float | None = None,
        inline_wait_max: float | None = None,
        inline_sleep_max: float = 0.0,
    ) -> None:
        settings = get_settings()
        self.storage = storage
        self.clock = clock or get_config().clock or SystemClock()
        self.executor = Executor(
            storage,
            self.clock,
            self,
            lease_seconds=lease_seconds if lease_seconds is not None else settings.lease_seconds,
            inline_wait_max=(
                inline_wait_max
                if inline_wait_max is not None
                else settings.retry_inline_max_seconds
            ),
            inline_sleep_max=inline_sleep_max,
        )
        self.executor.child_check = timedelta(seconds=CHILD_CHECK_SECONDS)
        # Settings given here stay; the others follow configure(), even after the first run:
        # the executor looks at the settings' generation whenever an execution starts.
        self._own = {
            name
            for name, value in (
                ("lease_seconds", lease_seconds),
                ("inline_wait_max", inline_wait_max),
            )
            if value is not None
        }
        self._generation = -1
        self.executor.before_execution = self.follow_settings
        self.follow_settings()
        # run id -> (lock, number of drives holding or waiting for it); dropped at zero
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        #: wake-ups on this process's event loop: background drives and their timers
        self.delivery = LoopDelivery(lambda run_id: self.drive(run_id, follow_chain=False))

    async def drive(
        self, run_id: str, *, follow_chain: bool = True, steal: bool | str = False
    ) -> WorkflowRun:
        """Drive a run (and, by default, the runs that continue it) until they end or wait."""
        while True:
            async with self._run_lock(run_id):
                run = await self.executor.drive(run_id, steal=steal)
            if not (
                follow_chain
                and run.status == RunStatus.CONTINUED_AS_NEW
                and run.continued_to_run_id
            ):
                return run
            run_id = run.continued_to_run_id

    async def drive_created(self, run: WorkflowRun, history: list[Event]) -> WorkflowRun:
        """Drive a run this process just created, leased to it: no second read is needed.
        Follows continue-as-new; returns the last run of the chain as left."""
        async with self._run_lock(run.run_id):
            try:
                result = await self.executor.execute(run, history)
            except (ConcurrencyError, RestartSignal):
                result = await self.executor.drive(run.run_id)
        if result.status == RunStatus.CONTINUED_AS_NEW and result.continued_to_run_id:
            result = await self.drive(result.continued_to_run_id)
        return result

    # --- Runtime (pyworkflow.runtime.protocol) --------------------------------------------------
    async def create_run(
        self,
        defn: WorkflowDefinition,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        drive_here: bool = True,
        schedule_id: str | None = None,
    ) -> tuple[WorkflowRun, list[Event]]:
        """Created leased to this process when it drives the run next: no second read."""
        return await self.executor.create(
            defn,
            args,
            kwargs,
            run_id=run_id,
            idempotency_key=idempotency_key,
            lease=drive_here,
            schedule_id=schedule_id,
        )

    async def begin(self, run: WorkflowRun, history: list[Event]) -> WorkflowRun:
        """Drive the run inline until it ends or waits (following continue-as-new)."""
        if run.lease_owner == self.executor.owner:
            return await self.drive_created(run, history)
        return await self.drive(run.run_id)

    async def advance(self, run_id: str, *, reason: str, follow_chain: bool = True) -> None:
        await self.drive(run_id, follow_chain=follow_chain)

    def check_schedule_spec(self, spec: ScheduleSpec) -> None:
        """Any valid spec: ``pyworkflow worker`` computes the fire times itself."""

    async def schedule_changed(self, schedule: Schedule) -> Schedule:
        return schedule  # the worker reads the record on every pass

    def follow_settings(self) -> None:
        """Take the settings changed since the last execution (``configure()``): cheap when
        nothing changed, so every execution start calls it."""
        generation = settings_generation()
        if generation != self._generation:
            self._generation = generation
            self.reconfigure(get_settings())

    def reconfigure(self, settings: Settings) -> None:
        """Take the settings the executor keeps, for its next executions."""
        executor = self.executor
        if "lease_seconds" not in self._own:
            executor.lease = timedelta(seconds=settings.lease_seconds)
        if "inline_wait_max" not in self._own:
            executor.inline_wait_max = settings.retry_inline_max_seconds
        executor.limits = Limits(
            settings.event_soft_limit, settings.event_hard_limit, settings.event_warning_interval
        )
        executor.default_retries = settings.default_retries

    @contextlib.asynccontextmanager
    async def _run_lock(self, run_id: str) -> AsyncIterator[None]:
        """One drive of a run at a time in this process (the lease covers other processes)."""
        lock, users = self._locks.get(run_id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[run_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[run_id]
            if users <= 1:
                del self._locks[run_id]
            else:
                self._locks[run_id] = (lock, users - 1)

    def is_active(self, run_id: str) -> bool:
        return run_id in self.executor.active

    def interrupt(self, run_id: str) -> None:
        """Make an in-process execution of ``run_id`` reload before its next operation."""
        ctx = self.executor.active.get(run_id)
        if ctx is not None:
            ctx.interrupted = True

    # --- Dispatcher ----------------------------------------------------------------------------
    async def wake(self, run_id: str, *, reason: str = "wake") -> None:
        """Drive ``run_id`` soon, in the background of this event loop."""
        self.spawn(run_id)

    async def wake_at(self, run_id: str, when: datetime, *, key: str = "") -> None:
        """Drive ``run_id`` at ``when`` if this process's event loop is still running then
        (otherwise ``pyworkflow worker`` finds it due)."""
        delay = max(0.0, (when - self.clock.now()).total_seconds())
        self.delivery.call_later(delay, self.spawn, run_id)

    async def start_child(self, run_id: str, *, wait: bool) -> None:
        # A waited-for child runs inline, so a parent often continues without suspending. In
        # a task of its own, shielded: the child is a run of its own, and a parent cancelled
        # meanwhile (a fan-out stopping early, a shutdown) must not cut its step off.
        if wait:
            await self.delivery.run_shielded(self.drive(run_id))
        else:
            self.spawn(run_id)

    async def forget(self, run: WorkflowRun) -> None:
        """Nothing to drop: a stale timer only drives a finished run, which is a no-op."""

    def spawn(self, run_id: str) -> None:
        """Drive ``run_id`` in a background task of the running loop (none: nothing, the
        worker finds the run when it is due)."""
        self.delivery.spawn(run_id)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for background drives started so far (tests and short scripts)."""
        await self.delivery.drain(timeout)

    async def close(self) -> None:
        from pyworkflow.runtime.executor import LIVE_OWNERS

        LIVE_OWNERS.discard(self.executor.owner)
        await self.delivery.close()


_runtimes: dict[int, LocalRuntime] = {}
_transient: LocalRuntime | None = None
# objects_generation() when the runtimes above were made: a new storage or clock since
# (configure(), reset_config()) drops them, so the next runs get runtimes of the new ones.
_made_for = objects_generation()


def _drop_stale() -> None:
    global _made_for
    if objects_generation() != _made_for:
        reset_runtime()
        _made_for = objects_generation()


def get_runtime(storage: StorageBackend | None = None) -> LocalRuntime:
    """The runtime for ``storage`` (default: the configured storage)."""
    _drop_stale()
    storage = storage or get_storage()
    runtime = _runtimes.get(id(storage))
    if runtime is None or runtime.storage is not storage:
        runtime = _runtimes[id(storage)] = LocalRuntime(storage)
    return runtime


def get_transient_runtime() -> LocalRuntime:
    """Runs with ``durable=False`` live in memory and wait inline."""
    global _transient
    _drop_stale()
    if _transient is None:
        from pyworkflow.storage.memory import InMemoryStorageBackend

        _transient = LocalRuntime(
            InMemoryStorageBackend(), inline_wait_max=float("inf"), inline_sleep_max=float("inf")
        )
    return _transient


def install_runtime(runtime: LocalRuntime) -> None:
    """Make ``runtime`` the one ``get_runtime()`` returns for its storage, so the public API
    (``start``, ``resume_hook``...) drives runs through it: the testing kit's time-skipping
    runtime takes the plain one's place this way. ``configure(storage=...)`` drops it."""
    _drop_stale()  # a configure() just before must not drop it at the next get_runtime()
    _runtimes[id(runtime.storage)] = runtime


def reset_runtime() -> None:
    global _transient
    _runtimes.clear()
    _transient = None

"""``WorkflowEnvironment``: run workflows in-process on virtual time.

    async with WorkflowEnvironment() as env:
        result = await env.run(onboarding, "u-1")      # a sleep("7d") inside takes no time
        assert env.now - env.started_at >= timedelta(days=7)

The environment configures pyworkflow for its lifetime (an in-memory storage, a ``ManualClock``,
a runtime whose timers wait in a table) and restores the previous configuration on exit. Runs
go through the production engine: the same executor, leases, replay and storage contract.

Time moves only when the test says so: waiting for a run (``result``, ``wait``,
``wait_for_hook``) lets the environment jump the clock to the earliest pending timer and fire it
whenever every run is waiting — a sleep, a retry backoff, a hook timeout, a ``max_duration``
deadline — one timer at a time, in time order, so two runs sleeping 1d and 2d end in that order.
``env.sleep("3d")`` moves time explicitly (firing what falls due on the way) and
``env.skip_time(False)`` holds it: waiting for a run that waits on time is then an error instead
of a jump. Nothing waits for wall time, so a test never depends on how fast the machine is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pyworkflow import api
from pyworkflow.config import SavedConfig, configure, restore_config, save_config
from pyworkflow.core.clock import ManualClock
from pyworkflow.core.duration import Duration, resolve_wake_time
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import Hook, HookStatus, RunStatus, WorkflowRun
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.exceptions import (
    CancellationError,
    HookNotFoundError,
    NonDeterminismError,
    WorkflowError,
    WorkflowNotFoundError,
)
from pyworkflow.runtime.local import install_runtime, reset_runtime
from pyworkflow.storage.base import StorageBackend
from pyworkflow.testing.helpers import StepAttempt, filter_events, recording_tokens, step_attempts
from pyworkflow.testing.runtime import Timer, TimeSkippingRuntime

DEFAULT_START = datetime(2030, 1, 1, tzinfo=UTC)


class WorkflowBlockedError(WorkflowError):
    """A run cannot go on by itself: it waits for a hook payload, or on time while time is held
    (``skip_time(False)``), or it keeps arming timers past ``max_timers``."""


class WorkflowRunFailedError(WorkflowError):
    """A run failed or was cancelled and this process has not kept its exception (the
    environment raises the run's own exception when it has it)."""

    def __init__(self, run: WorkflowRun) -> None:
        super().__init__(
            f"Run {run.run_id} ({run.workflow_name}) {run.status.value}: "
            f"{run.error_type or ''}{': ' if run.error_type else ''}{run.error or ''}"
        )
        self.run = run


class WorkflowEnvironment:
    """A time-skipping, in-memory pyworkflow for tests. Use with ``async with``."""

    def __init__(
        self,
        *,
        start: datetime = DEFAULT_START,
        storage: StorageBackend | None = None,
        skip_time: bool = True,
        max_timers: int = 10_000,
    ) -> None:
        """``start``: the virtual time the environment begins at (aware, UTC by default);
        ``storage``: where runs live (default: a fresh in-memory storage); ``max_timers``: how
        many timers one wait may fire before a run that never ends is reported."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
        if storage is None:
            from pyworkflow.storage.memory import InMemoryStorageBackend

            storage = InMemoryStorageBackend()
        self.storage = storage
        self.clock = ManualClock(start)
        self.started_at = start
        self.max_timers = max_timers
        self._skip = skip_time
        self._runtime: TimeSkippingRuntime | None = None
        self._saved: SavedConfig | None = None
        self._tokens: dict[str, str] = {}
        self._exits = contextlib.ExitStack()

    # --- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> WorkflowEnvironment:
        await self.open()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.close(check_errors=exc is None)

    async def open(self) -> None:
        self._saved = save_config()
        configure(storage=self.storage, clock=self.clock)
        self._runtime = TimeSkippingRuntime(self.storage, self.clock)
        install_runtime(self._runtime)
        self._exits.enter_context(recording_tokens(self._tokens))

    async def close(self, *, check_errors: bool = True) -> None:
        """Stop background drives and put the previous configuration back."""
        errors = []
        if self._runtime is not None:
            errors = self._runtime.take_errors()
            await self._runtime.close()
            self._runtime = None
        self._exits.close()
        if self._saved is not None:
            restore_config(self._saved)
            self._saved = None
            reset_runtime()
        if check_errors and errors:
            raise errors[0]

    @property
    def runtime(self) -> TimeSkippingRuntime:
        if self._runtime is None:
            raise RuntimeError("The WorkflowEnvironment is not open: use `async with` it")
        return self._runtime

    # --- time --------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The virtual time."""
        return self.clock.now()

    @property
    def timers(self) -> list[Timer]:
        """Pending wake-ups, earliest first."""
        return sorted(self.runtime.timers.values())

    def skip_time(self, enabled: bool = True) -> contextlib.AbstractContextManager[None]:
        """Let waits jump the clock (the default) or hold it. Takes effect at once; as a context
        manager (``with env.skip_time(False): ...``) the previous setting returns on exit."""
        previous, self._skip = self._skip, enabled

        @contextlib.contextmanager
        def restore() -> Iterator[None]:
            try:
                yield
            finally:
                self._skip = previous

        return restore()

    async def sleep(self, duration: Duration) -> None:
        """Move virtual time forward by ``duration`` ("3d", seconds, a timedelta) or to a
        datetime, firing every timer that falls due on the way, in order."""
        await self.advance_to(resolve_wake_time(duration, self.now))

    async def advance_to(self, when: datetime) -> None:
        if when < self.now:
            raise ValueError(f"Time only moves forward: {when} is before {self.now}")
        while await self._fire_next(until=when):
            pass
        self._set_clock(when)

    def _set_clock(self, when: datetime) -> None:
        if when > self.clock.now():
            # exact: a float of seconds rounds back to the same microsecond for centuries
            self.clock.advance((when - self.clock.now()).total_seconds())

    async def _fire_next(self, until: datetime | None = None) -> bool:
        """Settle, then jump to the earliest live timer (if due by ``until``) and drive its run.
        Returns whether a timer fired."""
        rt = self.runtime
        while True:
            await self._settle()
            timer = rt.next_timer()
            if timer is None or (until is not None and timer.when > until):
                return False
            rt.pop_timer(timer)
            run = await self.storage.get_run(timer.run_id)
            # A timer outlived by its wait (the hook it bounded was resumed, the run moved on
            # or ended) is dropped without moving time to it.
            if (
                run is None
                or run.status != RunStatus.SUSPENDED
                or run.wake_at is None
                or run.wake_at > timer.when
            ):
                continue
            self._set_clock(timer.when)
            await rt.drive(timer.run_id)
            await self._settle()
            return True

    async def _settle(self) -> None:
        rt = self.runtime
        await rt.settle()
        errors = rt.take_errors()
        if errors:
            raise errors[0]

    # --- runs --------------------------------------------------------------------------------
    async def start(
        self,
        workflow: Callable[..., Any],
        *args: Any,
        idempotency_key: str | None = None,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Start a run and drive it until it ends or waits (without moving time). Returns its
        id; a failure is not raised here but by ``result``."""
        defn = get_workflow_by_func(workflow)
        if defn is None:
            raise ValueError(
                f"{getattr(workflow, '__name__', workflow)!r} is not a workflow: "
                "decorate it with @workflow"
            )
        rt = self.runtime
        if idempotency_key:
            existing = await self.storage.get_run_by_idempotency_key(idempotency_key)
            if existing is not None:
                return existing.run_id
        run, history = await rt.executor.create(
            defn, args, kwargs, run_id=run_id, idempotency_key=idempotency_key, lease=True
        )
        await rt.drive_created(run, history)
        await self._settle()
        return run.run_id

    async def run(self, workflow: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Start a run and return its result, skipping time as needed."""
        return await self.result(await self.start(workflow, *args, **kwargs))

    async def result(self, run_id: str) -> Any:
        """The run's result once it ends (the last run of its continue-as-new chain). A failed
        run raises its exception; a cancelled one ``CancellationError``."""
        run = await self.wait(run_id)
        if run.status == RunStatus.COMPLETED:
            return run.get_result()
        error = self.runtime.executor.failures.pop(run.run_id, None)
        if error is not None:
            raise error
        if run.status == RunStatus.CANCELLED:
            raise CancellationError(run.error or "cancelled")
        raise WorkflowRunFailedError(run)

    async def wait(self, run_id: str) -> WorkflowRun:
        """Fire timers in order until the run (or the last of its chain) has ended; returns its
        record. ``WorkflowBlockedError`` if it waits for something only the test can give."""
        fired = 0
        while True:
            await self._settle()
            run = await self._chain_end(run_id)
            if run.status.is_terminal:
                return run
            if not self._skip:
                raise WorkflowBlockedError(
                    f"{await self._describe(run)}, and time is held (skip_time(False)): move "
                    "it with env.sleep(...)"
                )
            if fired == self.max_timers:
                raise WorkflowBlockedError(
                    f"Run {run_id} is still not done after {fired} timers (a loop that never "
                    f"ends?); virtual time is {self.now.isoformat()}"
                )
            if not await self._fire_next():
                raise WorkflowBlockedError(await self._describe(run))
            fired += 1

    async def get_run(self, run_id: str) -> WorkflowRun:
        run = await self.storage.get_run(run_id)
        if run is None:
            raise WorkflowNotFoundError(run_id)
        return run

    async def _chain_end(self, run_id: str) -> WorkflowRun:
        run = await self.get_run(run_id)
        while run.status == RunStatus.CONTINUED_AS_NEW and run.continued_to_run_id:
            run = await self.get_run(run.continued_to_run_id)
        return run

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        """Request cancellation and let the run react (its cleanup runs now)."""
        cancelled = await api.cancel_workflow(run_id, reason, storage=self.storage)
        await self._settle()
        return cancelled

    async def _describe(self, run: WorkflowRun) -> str:
        """What ``run`` (or a child it waits for) waits for, with how to give it."""
        waits: list[str] = []
        runs = [run]
        while runs:
            current = runs.pop(0)
            for hook in await self.storage.list_hooks(
                run_id=current.run_id, status=HookStatus.PENDING
            ):
                waits.append(
                    f"hook {hook.name!r} of run {current.run_id} (resume it with "
                    f"env.resume_hook({current.run_id!r}, {hook.name!r}, payload))"
                )
            timer = self.runtime.timers.get(current.run_id)
            if timer is not None:
                waits.append(f"a timer of run {current.run_id} at {timer.when.isoformat()}")
            page = await self.storage.list_runs_page(parent_run_id=current.run_id)
            runs.extend(r for r in page.items if not r.status.is_terminal)
        what = "; ".join(waits) or "nothing the environment knows of"
        return f"Run {run.run_id} ({run.workflow_name}) is {run.status.value}, waiting for {what}"

    # --- hooks -------------------------------------------------------------------------------
    async def hooks(self, run_id: str, *, pending: bool = False) -> list[Hook]:
        """The run's hooks, newest first (only those still waiting with ``pending=True``)."""
        return await self.storage.list_hooks(
            run_id=run_id, status=HookStatus.PENDING if pending else None
        )

    async def wait_for_hook(self, run_id: str, name: str) -> Hook:
        """Fire timers until the run waits on a hook named ``name``; returns that hook."""
        fired = 0
        while True:
            await self._settle()
            hook = await self.storage.find_hook(run_id, name=name)
            if hook is not None and hook.status == HookStatus.PENDING:
                return hook
            run = await self.get_run(run_id)
            if run.status.is_terminal:
                raise WorkflowBlockedError(
                    f"Run {run_id} {run.status.value} without waiting on a hook {name!r}"
                )
            if fired == self.max_timers:
                raise WorkflowBlockedError(f"Run {run_id}: no hook {name!r} after {fired} timers")
            if not self._skip or not await self._fire_next():
                raise WorkflowBlockedError(f"{await self._describe(run)}; not hook {name!r}")
            fired += 1

    async def hook_token(self, run_id: str, name: str) -> str:
        """The token the newest hook ``name`` of ``run_id`` handed to ``on_created``."""
        hook = await self.storage.find_hook(run_id, name=name)
        if hook is None:
            raise HookNotFoundError("", detail=f"{name!r} on run {run_id}")
        token = self._tokens.get(hook.token_hash)
        if token is None:
            raise HookNotFoundError(
                "", detail=f"{name!r} on run {run_id} (created outside this environment)"
            )
        return token

    async def resume_hook(self, run_id: str, name: str, payload: Any) -> api.ResumeResult:
        """Deliver ``payload`` to the run's newest hook ``name`` (no token needed) and drive the
        run until it ends or waits again. Raises like ``pyworkflow.resume_hook``."""
        result = await api.resume_hook_by_name(run_id, name, payload, storage=self.storage)
        await self._settle()
        return result

    async def resume_hook_token(self, token: str, payload: Any) -> api.ResumeResult:
        """Deliver ``payload`` by token, as an outside caller (a webhook) would."""
        result = await api.resume_hook(token, payload, storage=self.storage)
        await self._settle()
        return result

    # --- history -----------------------------------------------------------------------------
    async def events(
        self,
        run_id: str,
        type: EventType | str | Iterable[EventType | str] | None = None,
        *,
        name: str | None = None,
    ) -> list[Event]:
        """The run's history, optionally only events of ``type`` ("step.retrying", or a family:
        "hook") and/or of the operation named ``name``."""
        return filter_events(await self.storage.get_events(run_id), type, name)

    async def event_types(self, run_id: str) -> list[str]:
        return [e.type.value for e in await self.storage.get_events(run_id)]

    async def steps(self, run_id: str, name: str | None = None) -> list[StepAttempt]:
        """Every recorded step attempt (name, attempt, outcome, virtual time), in order."""
        return step_attempts(await self.events(run_id, "step", name=name))

    async def children(self, run_id: str) -> list[WorkflowRun]:
        return await self.storage.get_children(run_id)

    async def replay(self, run_id: str) -> Any:
        """Replay the run's recorded history against the workflow code as it is now, writing
        nothing: every recorded operation must come back the same, in the same order, and an
        ended run must end the same way. Returns the ``ReplayReport``; raises
        ``NonDeterminismError`` naming the first difference."""
        from pyworkflow.runtime.replay import replay_history

        run = await self.get_run(run_id)
        report = await replay_history(await self.storage.get_events(run_id), run=run)
        if not report.ok:
            d = report.divergence
            raise NonDeterminismError(
                f"Replay of run {run_id} ({run.workflow_name}) diverged"
                + (f" at operation #{d.op}" if d and d.op is not None else "")
                + (f": {d.message} (history: {d.expected}; code now: {d.found})" if d else "")
            )
        return report

    async def replay_all(self) -> int:
        """``replay`` every run of the environment; returns how many were replayed."""
        count, cursor = 0, None
        while True:
            page = await self.storage.list_runs_page(limit=100, cursor=cursor)
            for run in page.items:
                await self.replay(run.run_id)
                count += 1
            cursor = page.next_cursor
            if not cursor:
                return count


__all__ = ["WorkflowEnvironment", "WorkflowBlockedError", "WorkflowRunFailedError", "DEFAULT_START"]

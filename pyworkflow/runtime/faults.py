"""Fault injection for tests: crash a runtime at a numbered point and see what survives.

Off by default and free when off: nothing in the runtime checks for faults. A test wraps a
runtime's storage and dispatcher (``inject``) in ``FaultyStorage`` / ``FaultyDispatcher``, which
call ``Faults.point(label)`` before and after every write and every dispatch. Points are numbered
in the order they are reached (1, 2, ...); a clean run counts them, a later run crashes at one:

- ``mode="raise"``: ``InjectedCrash``, a ``BaseException`` (user code's ``except Exception``
  cannot swallow it, and neither can the executor: the run is left exactly as a killed process
  would leave it, lease included).
- ``mode="exit"``: ``os._exit(EXIT_CODE)`` at once, without cleanup (run it in a subprocess).
- ``mode="store_error"``: ``StoreThrottled``, an ordinary ``Exception`` like the throttling
  error a real store raises. The process lives on; before a write nothing was written, after
  it the write stands but its caller never heard so. The engine must treat it as "this drive
  failed, drive the run again later", never as the run's outcome.

Points (label = when + what, with the event types of an append):
``before|after create_run``, ``update_run``, ``append_events(<types>)``, ``continue_run``,
``create_hook``, ``update_hook``, ``create_schedule``, ``update_schedule``, ``delete_schedule``;
``before|after wake(<reason>)``, ``wake_at``, ``start_child``, ``forget``. The point "between
running a step and recording it" is ``before append_events(step.completed)``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, HookStatus, Page, RunStatus, Schedule, WorkflowRun
from pyworkflow.storage.base import StorageBackend
from pyworkflow.transport.protocol import Dispatcher

EXIT_CODE = 86  # what a subprocess crashed by ``mode="exit"`` exits with


class InjectedCrash(BaseException):  # noqa: N818 - a signal, like SuspensionSignal
    """The process "died" at crash point ``number`` (``label``)."""

    def __init__(self, number: int, label: str) -> None:
        super().__init__(f"injected crash at point {number}: {label}")
        self.number = number
        self.label = label


class StoreThrottled(Exception):  # noqa: N818 - named like the AWS error it stands for
    """A transient store failure at fault point ``number`` (``label``): DynamoDB's
    ``ThrottlingException``, SQLite's "database is locked", a dropped connection."""

    def __init__(self, number: int, label: str) -> None:
        super().__init__(f"injected store error at point {number}: {label}")
        self.number = number
        self.label = label


class Faults(BaseModel):
    """Counts crash points as they are reached and crashes at ``crash_at`` (1-based) or at the
    first point labelled ``crash_on``, once. ``armed=False`` does nothing (not even count).
    ``labels`` holds every point reached, in order."""

    model_config = ConfigDict(validate_assignment=True)

    crash_at: int | None = None
    crash_on: str | None = None
    mode: Literal["raise", "exit", "store_error"] = "raise"
    armed: bool = True
    count: int = 0
    crashed: str | None = None
    labels: list[str] = Field(default_factory=list)

    def point(self, label: str) -> None:
        if not self.armed:
            return
        self.count += 1
        self.labels.append(label)
        if self.crashed is not None or (self.count != self.crash_at and label != self.crash_on):
            return
        self.crashed = label
        if self.mode == "exit":
            os._exit(EXIT_CODE)
        if self.mode == "store_error":
            raise StoreThrottled(self.count, label)
        raise InjectedCrash(self.count, label)


def _types(events: Iterable[Event]) -> str:
    return ",".join(e.type.value for e in events)


class FaultyStorage(StorageBackend):
    """A ``StorageBackend`` that reports a crash point before and after each write of ``inner``.
    Reads pass straight through; anything else (``ensure_table``...) too."""

    def __init__(self, inner: StorageBackend, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _write(self, label: str, call: Callable[[], Awaitable[Any]]) -> Any:
        self.faults.point(f"before {label}")
        result = await call()
        self.faults.point(f"after {label}")
        return result

    # --- writes ------------------------------------------------------------------------------
    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        return await self._write(  # type: ignore[no-any-return]
            "create_run", lambda: self.inner.create_run(run, events)
        )

    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        return await self._write(  # type: ignore[no-any-return]
            f"update_run({run.status.value})",
            lambda: self.inner.update_run(run, expected_version=expected_version),
        )

    async def append_events(
        self,
        run_id: str,
        events: list[Event],
        *,
        run: WorkflowRun | None = None,
        expected_version: int | None = None,
    ) -> WorkflowRun | None:
        return await self._write(  # type: ignore[no-any-return]
            f"append_events({_types(events)})",
            lambda: self.inner.append_events(
                run_id, events, run=run, expected_version=expected_version
            ),
        )

    async def continue_run(
        self,
        run: WorkflowRun,
        events: list[Event],
        *,
        expected_version: int,
        new_run: WorkflowRun,
        new_events: list[Event],
    ) -> WorkflowRun:
        return await self._write(  # type: ignore[no-any-return]
            "continue_run",
            lambda: self.inner.continue_run(
                run,
                events,
                expected_version=expected_version,
                new_run=new_run,
                new_events=new_events,
            ),
        )

    async def create_hook(self, hook: Hook) -> None:
        await self._write("create_hook", lambda: self.inner.create_hook(hook))

    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        return await self._write(  # type: ignore[no-any-return]
            f"update_hook({hook.status.value})",
            lambda: self.inner.update_hook(hook, expected_version=expected_version),
        )

    async def create_schedule(self, schedule: Schedule) -> Schedule:
        return await self._write(  # type: ignore[no-any-return]
            "create_schedule", lambda: self.inner.create_schedule(schedule)
        )

    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule:
        return await self._write(  # type: ignore[no-any-return]
            "update_schedule",
            lambda: self.inner.update_schedule(schedule, expected_version=expected_version),
        )

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await self._write(  # type: ignore[no-any-return]
            "delete_schedule", lambda: self.inner.delete_schedule(schedule_id)
        )

    # --- reads -------------------------------------------------------------------------------
    async def get_run(self, run_id: str) -> WorkflowRun | None:
        return await self.inner.get_run(run_id)

    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None:
        return await self.inner.get_run_by_idempotency_key(key)

    async def list_runs_page(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        return await self.inner.list_runs_page(
            status=status,
            workflow_name=workflow_name,
            parent_run_id=parent_run_id,
            limit=limit,
            cursor=cursor,
        )

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        return await self.inner.list_due_runs(now, limit=limit, after=after)

    async def read_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        return await self.inner.read_events(run_id, after_sequence=after_sequence)

    async def get_hook_by_hash(self, token_hash: str) -> Hook | None:
        return await self.inner.get_hook_by_hash(token_hash)

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        return await self.inner.find_hook(run_id, hook_id=hook_id, name=name)

    async def read_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        return await self.inner.read_hooks(run_id=run_id, status=status, limit=limit)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return await self.inner.get_schedule(schedule_id)

    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]:
        return await self.inner.list_schedules(
            workflow_name=workflow_name, status=status, limit=limit
        )

    async def close(self) -> None:
        await self.inner.close()


class FaultyDispatcher:
    """A ``Dispatcher`` that reports a crash point before and after each dispatch of ``inner``.
    Other attributes (``requests``, ``close``, ``delete_schedule``...) pass through."""

    def __init__(self, inner: Any, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _send(self, label: str, call: Callable[[], Awaitable[Any]]) -> None:
        self.faults.point(f"before {label}")
        await call()
        self.faults.point(f"after {label}")

    async def wake(self, run_id: str, *, reason: str = "wake") -> None:
        await self._send(f"wake({reason})", lambda: self.inner.wake(run_id, reason=reason))

    async def wake_at(self, run_id: str, when: datetime, *, key: str) -> None:
        await self._send("wake_at", lambda: self.inner.wake_at(run_id, when, key=key))

    async def start_child(self, run_id: str, *, wait: bool) -> None:
        await self._send("start_child", lambda: self.inner.start_child(run_id, wait=wait))

    async def forget(self, run: WorkflowRun) -> None:
        await self._send("forget", lambda: self.inner.forget(run))


def inject(runtime: Any, faults: Faults) -> Any:
    """Wrap ``runtime``'s storage and dispatcher (a ``LocalRuntime`` or an ``AwsRuntime``) so
    that ``faults`` sees every write and dispatch. Returns the runtime."""
    storage = FaultyStorage(runtime.storage, faults)
    runtime.storage = storage
    runtime.executor.storage = storage
    dispatcher: Dispatcher = FaultyDispatcher(runtime.executor.dispatcher, faults)
    runtime.executor.dispatcher = dispatcher
    if hasattr(runtime, "dispatcher"):  # AwsRuntime: fail_run, sweep and start use it too
        runtime.dispatcher = dispatcher
    schedules = getattr(runtime, "schedules", None)
    if schedules is not None and hasattr(schedules, "storage"):
        schedules.storage = storage
    return runtime


__all__ = [
    "EXIT_CODE",
    "FaultyDispatcher",
    "FaultyStorage",
    "Faults",
    "InjectedCrash",
    "StoreThrottled",
    "inject",
]

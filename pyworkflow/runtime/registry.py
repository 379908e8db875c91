"""Runtimes by name, in pyworkflow-engine's shape: ``Runtime`` (its abstract base),
``LocalRuntime`` (registered as "local"), ``register_runtime`` and ``get_runtime``.

This ``Runtime`` is pyworkflow-engine's public base class, not the protocol the service is
written against (``pyworkflow.runtime.protocol.Runtime``: create_run/begin/advance/wake). Its
``LocalRuntime`` is a thin adapter over the embedded runtime (``pyworkflow.runtime.local``), so
code written for pyworkflow-engine that drives a run through a named runtime keeps working.
``start(..., runtime=...)`` itself runs on the embedded runtime only (docs/compatibility.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyworkflow.core.models import RunStatus
from pyworkflow.core.registry import get_workflow_by_func

if TYPE_CHECKING:
    from pyworkflow.runtime.local import LocalRuntime as _EmbeddedRuntime
    from pyworkflow.storage.base import StorageBackend


class Runtime(ABC):
    """Where and how workflow code executes (pyworkflow-engine's runtime interface)."""

    @abstractmethod
    async def start_workflow(
        self,
        workflow_func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str,
        workflow_name: str,
        storage: StorageBackend | None,
        durable: bool,
        idempotency_key: str | None = None,
        max_duration: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Start a run of ``workflow_func``; returns its run id."""

    @abstractmethod
    async def resume_workflow(self, run_id: str, storage: StorageBackend) -> Any:
        """Drive a waiting run; returns its result if it completed."""

    @abstractmethod
    async def schedule_wake(
        self, run_id: str, wake_time: datetime, storage: StorageBackend
    ) -> None:
        """Have the run resumed at ``wake_time``."""

    async def schedule_resume(self, run_id: str, storage: StorageBackend) -> None:
        """Have the run resumed soon (after a hook was resumed). Default: nothing."""
        return None

    @abstractmethod
    async def start_child_workflow(
        self,
        workflow_func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        child_run_id: str,
        workflow_name: str,
        storage: StorageBackend,
        parent_run_id: str,
        child_id: str,
        wait_for_completion: bool,
    ) -> None:
        """Start a child run for ``parent_run_id``."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The name the runtime is registered under ("local")."""

    @property
    def supports_durable(self) -> bool:
        return True

    @property
    def supports_transient(self) -> bool:
        return True


class LocalRuntime(Runtime):
    """Runs in this process, on the embedded runtime of the storage given (or configured)."""

    @property
    def name(self) -> str:
        return "local"

    @staticmethod
    def _embedded(storage: StorageBackend | None, durable: bool = True) -> _EmbeddedRuntime:
        from pyworkflow.runtime import local

        return local.get_runtime(storage) if durable else local.get_transient_runtime()

    async def start_workflow(
        self,
        workflow_func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str,
        workflow_name: str,
        storage: StorageBackend | None,
        durable: bool,
        idempotency_key: str | None = None,
        max_duration: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        # max_duration and metadata are the workflow's own here (@workflow(max_duration=...)).
        defn = get_workflow_by_func(workflow_func)
        if defn is None:
            raise ValueError(f"{workflow_name!r} is not a workflow: decorate it with @workflow")
        rt = self._embedded(storage, durable)
        run, history = await rt.create_run(
            defn, tuple(args), dict(kwargs), run_id=run_id, idempotency_key=idempotency_key
        )
        await rt.begin(run, history)
        return run.run_id

    async def resume_workflow(self, run_id: str, storage: StorageBackend) -> Any:
        run = await self._embedded(storage).drive(run_id)
        return run.get_result() if run.status == RunStatus.COMPLETED else None

    async def schedule_wake(
        self, run_id: str, wake_time: datetime, storage: StorageBackend
    ) -> None:
        await self._embedded(storage).wake_at(run_id, wake_time)

    async def schedule_resume(self, run_id: str, storage: StorageBackend) -> None:
        await self._embedded(storage).wake(run_id, reason="resume")

    async def start_child_workflow(
        self,
        workflow_func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        child_run_id: str,
        workflow_name: str,
        storage: StorageBackend,
        parent_run_id: str,
        child_id: str,
        wait_for_completion: bool,
    ) -> None:
        # A child is an operation of its parent's history here: only the parent's execution
        # may start it (start_child_workflow() in the workflow), so it is recorded and replayed.
        raise NotImplementedError(
            "Child runs are started from the parent workflow: await "
            "pyworkflow.start_child_workflow(...) in its code"
        )


_runtimes: dict[str, type[Runtime]] = {}


def register_runtime(name: str, runtime_class: type[Runtime]) -> None:
    """Make ``runtime_class`` available as ``get_runtime(name)`` (replacing any before)."""
    _runtimes[name] = runtime_class


def get_runtime(name: str) -> Runtime:
    """A new instance of the runtime registered as ``name``; ``ValueError`` if none is."""
    if name not in _runtimes:
        available = ", ".join(sorted(_runtimes)) or "(none registered)"
        raise ValueError(f"Unknown runtime: '{name}'. Available runtimes: {available}")
    return _runtimes[name]()


def list_runtimes() -> dict[str, type[Runtime]]:
    return dict(_runtimes)


register_runtime("local", LocalRuntime)

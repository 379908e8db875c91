"""The public workflow context of pyworkflow-engine's API: ``get_context()`` and friends, the
abstract ``WorkflowContext`` every context implements, and ``LocalContext``.

Inside a running workflow (and its steps) ``get_context()`` returns a ``LocalContext`` over the
engine's ``ExecutionContext`` (``pyworkflow.core.context``): its ``run``/``sleep``/``hook`` are
our durable primitives, its cancellation state is the run's history. ``set_context()`` installs a
context of the user's own (``MockContext`` in a test); while no run of ours is executing, the
primitives (``sleep``, ``hook``, steps) hand their work to it, as pyworkflow-engine's do.

Pure like the rest of the core: no storage, no clock reads of its own (an execution's come from
its journal; a stand-alone context sleeps through ``SystemClock``, as ``sleep()`` outside a
workflow does).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import Token
from typing import TYPE_CHECKING, Any, TypeVar

from pyworkflow.core import context as _ctx
from pyworkflow.core.events import EventType

if TYPE_CHECKING:
    from pydantic import BaseModel

T = TypeVar("T")
StepFunction = Callable[..., Any]

logger = logging.getLogger("pyworkflow")

# pyworkflow-engine's wording, word for word: code may match on it.
NO_CONTEXT_MESSAGE = (
    "No workflow context available. "
    "This function must be called within a workflow execution. "
    "Make sure you're using the @workflow decorator."
)


def get_context() -> WorkflowContext:
    """The current workflow context. ``RuntimeError`` outside a workflow (and with no context
    installed by ``set_context``)."""
    installed = _ctx._override.get()
    if installed is not None:
        return installed  # type: ignore[no-any-return]
    execution = _ctx.current()
    if execution is None:
        raise RuntimeError(NO_CONTEXT_MESSAGE)
    if execution.facade is None:
        execution.facade = LocalContext._over(execution)
    return execution.facade  # type: ignore[no-any-return]


def has_context() -> bool:
    return _ctx._override.get() is not None or _ctx.current() is not None


def set_context(ctx: WorkflowContext | None) -> Token[Any]:
    """Install ``ctx`` as the current context (``None`` clears it); returns the token for
    ``reset_context``. A run the engine executes meanwhile ignores it (its own comes first)."""
    if ctx is not None and not isinstance(ctx, WorkflowContext):
        raise TypeError(f"set_context() takes a WorkflowContext or None, got {type(ctx).__name__}")
    return _ctx._override.set(ctx)


def reset_context(token: Token[Any]) -> None:
    _ctx._override.reset(token)


class WorkflowContext(ABC):
    """What every workflow context offers (pyworkflow-engine's abstract base). Subclasses
    implement ``run``, ``sleep``, ``hook`` and the cancellation methods; the rest has defaults."""

    def __init__(self, run_id: str = "unknown", workflow_name: str = "unknown") -> None:
        self._run_id = run_id
        self._workflow_name = workflow_name
        self._tracing: dict[str, Any] | None = None
        self._token: Token[Any] | None = None

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def workflow_name(self) -> str:
        return self._workflow_name

    @property
    def tracing(self) -> dict[str, Any] | None:
        return self._tracing

    @tracing.setter
    def tracing(self, value: dict[str, Any] | None) -> None:
        self._tracing = value

    @property
    def tracing_provider(self) -> Any:
        return None  # no tracing integration here

    # --- what a context must implement ----------------------------------------------------------
    @abstractmethod
    async def run(
        self, func: StepFunction, *args: Any, name: str | None = None, **kwargs: Any
    ) -> Any:
        """Run ``func`` as a step of this workflow."""

    @abstractmethod
    async def sleep(self, duration: str | int | float) -> None:
        """Wait ``duration`` ("5m", or seconds)."""

    @abstractmethod
    async def hook(
        self,
        name: str,
        timeout: int | None = None,
        on_created: Callable[[str], Awaitable[None]] | None = None,
        payload_schema: type[BaseModel] | None = None,
        on_received: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Wait for ``resume_hook`` on the hook's token; return its payload."""

    @abstractmethod
    def is_cancellation_requested(self) -> bool: ...

    @abstractmethod
    def request_cancellation(self, reason: str | None = None) -> None: ...

    @abstractmethod
    async def check_cancellation(self) -> None:
        """Raise ``CancellationError`` if cancellation was requested (outside ``shield()``)."""

    @property
    @abstractmethod
    def cancellation_blocked(self) -> bool: ...

    # --- durable execution state (defaults: a transient context) --------------------------------
    @property
    def is_durable(self) -> bool:
        return False

    @property
    def is_replaying(self) -> bool:
        return False

    @property
    def storage(self) -> Any | None:
        return None

    @property
    def parent_run_id(self) -> str | None:
        return None

    @property
    def is_child_workflow(self) -> bool:
        return self.parent_run_id is not None

    @property
    def is_step_worker(self) -> bool:
        return False

    @property
    def runtime(self) -> str | None:
        return None

    @property
    def storage_config(self) -> dict[str, Any] | None:
        return None

    # pyworkflow-engine's step decorator drives these; ours keeps that state in the history, so
    # they are the base's inert defaults, kept for code that calls them.
    def has_step_failed(self, step_id: str) -> bool:
        return False

    def get_step_failure(self, step_id: str) -> dict[str, Any] | None:
        return None

    def is_step_in_progress(self, step_id: str) -> bool:
        return False

    def should_execute_step(self, step_id: str) -> bool:
        return True

    def get_step_result(self, step_id: str) -> Any:
        raise KeyError(f"Step {step_id} not found")

    def cache_step_result(self, step_id: str, result: Any) -> None:
        return None

    def get_retry_state(self, step_id: str) -> dict[str, Any] | None:
        return None

    def set_retry_state(
        self,
        step_id: str,
        attempt: int,
        resume_at: Any,
        max_retries: int,
        retry_delay: Any,
        last_error: str,
    ) -> None:
        return None

    def clear_retry_state(self, step_id: str) -> None:
        return None

    async def validate_event_limits(self) -> None:
        return None

    @property
    def pending_children(self) -> dict[str, str]:
        return {}

    def has_child_result(self, child_id: str) -> bool:
        return False

    def get_child_result(self, child_id: str) -> dict[str, Any]:
        return {}

    # --- helpers ------------------------------------------------------------------------------
    async def parallel(self, *tasks: Coroutine[Any, Any, T]) -> list[T]:
        return list(await asyncio.gather(*tasks))

    async def wait_for_event(self, event_name: str, timeout: str | int | None = None) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} does not support wait_for_event: use hook() instead"
        )

    def log(self, message: str, level: str = "info", **kwargs: Any) -> None:
        """Log ``message`` with the run's id and workflow name (stdlib logging, "pyworkflow")."""
        levelno = logging.getLevelName(level.upper())
        extra = {"run_id": self._run_id, "workflow_name": self._workflow_name, **kwargs}
        logger.log(levelno if isinstance(levelno, int) else logging.INFO, message, extra=extra)

    def __enter__(self) -> WorkflowContext:
        self._token = set_context(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            reset_context(self._token)
            self._token = None

    async def __aenter__(self) -> WorkflowContext:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


class LocalContext(WorkflowContext):
    """The in-process context. ``get_context()`` inside a run returns one over that run's
    execution: durable steps, sleeps and hooks. Made by hand (``LocalContext(run_id=...)``) it
    is a transient context: steps run as plain calls, sleeps wait in-process and hooks raise
    ``NotImplementedError`` (a durable one needs a run: start the workflow instead)."""

    def __init__(
        self,
        run_id: str = "local_run",
        workflow_name: str = "local_workflow",
        storage: Any | None = None,
        durable: bool = True,
        event_log: list[Any] | None = None,
    ) -> None:
        super().__init__(run_id=run_id, workflow_name=workflow_name)
        self._storage = storage
        self._event_log = list(event_log or [])
        self._execution: _ctx.ExecutionContext | None = None
        self._cancel_requested = False
        self._cancel_reason: str | None = None

    @classmethod
    def _over(cls, execution: _ctx.ExecutionContext) -> LocalContext:
        ctx = cls(run_id=execution.run_id, workflow_name=execution.workflow_name)
        ctx._execution = execution
        return ctx

    async def run(
        self, func: StepFunction, *args: Any, name: str | None = None, **kwargs: Any
    ) -> Any:
        if getattr(func, "__step__", False) or self._execution is None:
            result = func(*args, **kwargs)  # a @step records itself; stand-alone: a plain call
            return await result if inspect.isawaitable(result) else result
        # A plain function becomes a step for this call (default retries), as in
        # pyworkflow-engine: recorded under ``name`` (default: the function's name).
        from pyworkflow.core.registry import StepDefinition
        from pyworkflow.core.step import execute_step

        defn = StepDefinition(
            name=name or str(getattr(func, "__name__", "step")),
            func=func,
            max_retries=None,
            retry_delay="exponential",
            timeout=None,
            metadata={},
        )
        return await execute_step(defn, args, kwargs)

    async def sleep(self, duration: str | int | float) -> None:
        if self._execution is None:
            from pyworkflow.core.clock import SystemClock
            from pyworkflow.core.duration import parse_duration

            await SystemClock().sleep(parse_duration(duration, name="sleep() duration"))
            return
        from pyworkflow.core.sleep import sleep

        await sleep(duration)

    async def hook(
        self,
        name: str,
        timeout: int | None = None,
        on_created: Callable[[str], Awaitable[None]] | None = None,
        payload_schema: type[BaseModel] | None = None,
        on_received: Callable[[Any], Any] | None = None,
    ) -> Any:
        if self._execution is None:
            raise NotImplementedError(
                "Hooks need a durable run: start the workflow (pyworkflow.start) rather than "
                "calling hook() on a stand-alone LocalContext"
            )
        from pyworkflow.core.hook import hook

        payload = await hook(
            name, timeout=timeout, on_created=on_created, payload_schema=payload_schema
        )
        if on_received is None:
            return payload
        # "Runs exactly once, its result persisted": a step of its own, after the hook.
        return await self.run(on_received, payload, name=f"{name}.on_received")

    def is_cancellation_requested(self) -> bool:
        if self._execution is None:
            return self._cancel_requested
        return self._execution.cancellation_requested

    def request_cancellation(self, reason: str | None = None) -> None:
        if self._execution is None:
            self._cancel_requested, self._cancel_reason = True, reason
            return
        if not self._execution.cancellation_requested:
            # An event like an outside request (see core/context.py): a replay finds it in the
            # history at the same place and does not record it again.
            self._execution.record_later(EventType.CANCELLATION_REQUESTED, {"reason": reason})

    async def check_cancellation(self) -> None:
        execution = self._execution
        if execution is None:
            if self._cancel_requested:
                from pyworkflow.exceptions import CancellationError

                raise CancellationError("Workflow was cancelled", reason=self._cancel_reason)
            return
        if execution.shield_depth > 0 or execution.peek() is not None:
            # Not at the edge of the history: the recorded run went on past this check, so it
            # did not raise here (and replay must not either); the next op decides.
            return
        if execution.cancel_seq is None and not execution.in_step:
            await execution.journal.checkpoint()  # a request stored meanwhile: reload, replay
        execution.check_cancellation()

    @property
    def cancellation_blocked(self) -> bool:
        return self._execution is not None and self._execution.shield_depth > 0

    @property
    def is_durable(self) -> bool:
        return self._execution is not None and self._execution.is_durable

    @property
    def is_replaying(self) -> bool:
        return self._execution is not None and self._execution.peek() is not None

    @property
    def storage(self) -> Any | None:
        if self._execution is None:
            return self._storage
        return getattr(self._execution.journal, "storage", None)

    @property
    def parent_run_id(self) -> str | None:
        return self._execution.run.parent_run_id if self._execution is not None else None

    @property
    def is_step_worker(self) -> bool:
        return self._execution is not None and self._execution.in_step

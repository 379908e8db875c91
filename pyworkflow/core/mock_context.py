"""``MockContext``: test a workflow function without running it on an engine
(pyworkflow-engine's testing context, its API and defaults).

    ctx = MockContext(mock_hooks={"manager_approval": {"approved": True, "reviewer": "t"}})
    set_context(ctx)
    try:
        result = asyncio.run(approval_workflow("order-123"))
        assert ctx.hook_count == 1
    finally:
        set_context(None)

While it is installed (and no run of ours executes), ``sleep`` returns at once and is recorded,
``hook`` returns the mock payload (validated by a typed hook) and is recorded, steps run as plain
calls; ``ctx.run(func, ...)`` records the step and may answer from ``mock_results``. Nothing is
stored. For a run on the real engine with virtual time, use ``WorkflowEnvironment``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pyworkflow.core.duration import parse_duration
from pyworkflow.core.workflow_context import StepFunction, WorkflowContext
from pyworkflow.exceptions import CancellationError

if TYPE_CHECKING:
    from pydantic import BaseModel


class MockContext(WorkflowContext):
    """Records steps (via ``run``), sleeps, hooks and event waits for a test to assert on."""

    def __init__(
        self,
        run_id: str = "test_run",
        workflow_name: str = "test_workflow",
        skip_sleeps: bool = True,
        mock_results: dict[str, Any] | None = None,
        mock_events: dict[str, Any] | None = None,
        mock_hooks: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(run_id=run_id, workflow_name=workflow_name)
        self._skip_sleeps = skip_sleeps
        self._mock_results = dict(mock_results or {})
        self._mock_events = dict(mock_events or {})
        self._mock_hooks = dict(mock_hooks or {})
        self._steps: list[dict[str, Any]] = []
        self._sleeps: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._hooks: list[dict[str, Any]] = []
        self._parallel_calls: list[int] = []
        self._hook_counter = 0
        self._cancellation_requested = False
        self._cancellation_blocked = False
        self._cancellation_reason: str | None = None

    # --- what was recorded (copies: a test cannot change the record by accident) --------------
    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self._steps)

    @property
    def step_count(self) -> int:
        return len(self._steps)

    @property
    def step_names(self) -> list[str]:
        return [s["name"] for s in self._steps]

    @property
    def sleeps(self) -> list[dict[str, Any]]:
        return list(self._sleeps)

    @property
    def sleep_count(self) -> int:
        return len(self._sleeps)

    @property
    def total_sleep_seconds(self) -> int:
        return int(sum(s["seconds"] for s in self._sleeps))

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self._events)

    @property
    def hooks(self) -> list[dict[str, Any]]:
        return list(self._hooks)

    @property
    def hook_count(self) -> int:
        return len(self._hooks)

    @property
    def hook_names(self) -> list[str]:
        return [h["name"] for h in self._hooks]

    # --- operations ---------------------------------------------------------------------------
    async def run(
        self, func: StepFunction, *args: Any, name: str | None = None, **kwargs: Any
    ) -> Any:
        step_name = (
            name or getattr(func, "__step_name__", None) or getattr(func, "__name__", "step")
        )
        self._steps.append({"name": step_name, "func": func, "args": args, "kwargs": kwargs})
        if step_name in self._mock_results:
            return self._mock_results[step_name]
        result = func(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def sleep(self, duration: str | int | float) -> None:
        seconds = int(parse_duration(duration, name="sleep() duration"))
        self._sleeps.append({"duration": duration, "seconds": seconds})
        if not self._skip_sleeps:
            await asyncio.sleep(seconds)

    async def parallel(self, *tasks: Any) -> list[Any]:
        self._parallel_calls.append(len(tasks))
        return list(await asyncio.gather(*tasks))

    async def wait_for_event(self, event_name: str, timeout: str | int | None = None) -> Any:
        self._events.append({"name": event_name, "timeout": timeout})
        if event_name in self._mock_events:
            return self._mock_events[event_name]
        return {"event": event_name, "mock": True}

    async def hook(
        self,
        name: str,
        timeout: int | None = None,
        on_created: Callable[[str], Awaitable[None]] | None = None,
        payload_schema: type[BaseModel] | None = None,
        on_received: Callable[[Any], Any] | None = None,
    ) -> Any:
        # A token in pyworkflow-engine's mock form, "run_id:hook_<name>_<n>" (real tokens here
        # are random and unrelated to the run id)
        self._hook_counter += 1
        token = f"{self._run_id}:hook_{name}_{self._hook_counter}"
        self._hooks.append({"name": name, "token": token, "timeout": timeout})
        if on_created is not None:
            await on_created(token)
        payload = self._mock_hooks.get(name, {"hook": name, "mock": True})
        if on_received is not None:
            result = on_received(payload)
            return await result if inspect.isawaitable(result) else result
        return payload

    # --- cancellation -------------------------------------------------------------------------
    def is_cancellation_requested(self) -> bool:
        return self._cancellation_requested

    def request_cancellation(self, reason: str | None = None) -> None:
        self._cancellation_requested = True
        self._cancellation_reason = reason

    async def check_cancellation(self) -> None:
        if self._cancellation_requested and not self._cancellation_blocked:
            raise CancellationError("Workflow was cancelled", reason=self._cancellation_reason)

    @property
    def cancellation_blocked(self) -> bool:
        return self._cancellation_blocked

    # --- assertions ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything recorded (the mocks stay)."""
        for record in (self._steps, self._sleeps, self._events, self._hooks, self._parallel_calls):
            record.clear()

    # ``raise AssertionError`` rather than ``assert``: these are the test's checks and must hold
    # under ``python -O`` too.
    def assert_step_called(self, step_name: str, times: int | None = None) -> None:
        calls = sum(1 for s in self._steps if s["name"] == step_name)
        if times is not None and calls != times:
            raise AssertionError(f"Step '{step_name}' expected {times} calls, got {calls}")
        if times is None and calls == 0:
            raise AssertionError(f"Step '{step_name}' was not called")

    def assert_slept(self, total_seconds: int | None = None) -> None:
        if self.sleep_count == 0:
            raise AssertionError("No sleep calls recorded")
        if total_seconds is not None and self.total_sleep_seconds != total_seconds:
            raise AssertionError(
                f"Expected {total_seconds}s total sleep, got {self.total_sleep_seconds}s"
            )

"""Instrumentation hooks: what a plugin is told about runs and operations, and the dispatcher
that tells every registered plugin while keeping a failing one away from the run.

Pure like the rest of ``core``: no I/O, no time of its own. Every time given to a plugin comes
from the execution's injected clock or from the history (an operation resumed after a wait
started when its first event was recorded, not when this process looked at it again).

The calls, per execution (one drive of a run, a Lambda invocation on AWS):

- ``run_started(run)`` before the workflow function runs; ``run.first_execution`` says
  whether any operation had been recorded before.
- ``operation_started(op)`` when the code reaches an operation that is not finished in the
  history: ``op.replayed`` is False for a new one, True for one recorded but still open (a
  sleep, hook or child still waited for, a step between retries). Operations the history holds
  finished are not reported again: their start and end were reported by the execution that ran
  them.
- ``attempt_started(op)`` / ``attempt_ended(op, outcome, duration)`` around each attempt of a
  step's function (``op.attempt`` counts from 1).
- ``operation_ended(op, outcome, duration)`` once, when the operation's ending is recorded.
- ``run_ended(run, status, error, duration)`` when the execution ends: the run's status
  afterwards (``suspended`` when it waits, ``interrupted`` when the execution stopped without
  an outcome and the run will be driven again).

A plugin that raises is logged and skipped: it never changes what a run does.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pyworkflow.core.clock import Clock
from pyworkflow.core.events import TERMINAL_OP_EVENTS, EventType
from pyworkflow.exceptions import CancellationError, SuspensionSignal

if TYPE_CHECKING:
    from pyworkflow.core.context import OpRecord
    from pyworkflow.core.events import Event

logger = logging.getLogger("pyworkflow.instrumentation")


class OperationKind(StrEnum):
    STEP = "step"
    SLEEP = "sleep"
    HOOK = "hook"
    CHILD = "child"
    PARALLEL = "parallel"


#: the operation kinds of ``ExecutionContext`` that are reported (context updates and patch
#: markers are bookkeeping, not operations a user waits on)
REPORTED_KINDS = frozenset(kind.value for kind in OperationKind)


class OutcomeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    type: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an operation or an attempt ended: its status, the recorded result (JSON value, as
    the history holds it) on success, the error otherwise."""

    status: OutcomeStatus
    result: Any = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One execution of a run, as a plugin sees it."""

    run_id: str
    workflow: str
    #: no operation had been recorded before this execution
    first_execution: bool
    #: when the run was created, and when this execution started (the injected clock)
    created_at: datetime
    execution_started_at: datetime
    parent_run_id: str | None = None
    continued_from_run_id: str | None = None
    #: what the run's ``workflow.started`` event recorded for tracing (W3C ``traceparent``...)
    trace_context: Mapping[str, Any] = field(default_factory=dict)
    #: the run's input as recorded: JSON text of its positional and keyword arguments (AWS's
    #: invocation input, plugin requirement 10.19)
    input_args: str = "[]"
    input_kwargs: str = "{}"


@dataclass(frozen=True, slots=True)
class OperationInfo:
    """One operation (or one attempt of a step)."""

    run_id: str
    workflow: str
    kind: str
    name: str
    #: the operation's id in the history: its number, or its path inside a fan-out ("3.1.0")
    op_id: str
    #: the fan-out it is a branch operation of ("3" for "3.1.0"), None at top level
    parent_id: str | None
    #: the attempt (steps; 1 for everything else)
    attempt: int
    #: recorded by an earlier execution and still open (see the module docstring)
    replayed: bool
    #: when the operation (or this attempt) started
    started_at: datetime


class Instrumentation:
    """Base class of instrumentation plugins: override the calls you need (each does nothing
    here). Calls are synchronous and made on the event loop between durable operations: keep
    them quick (hand slow work to a background exporter, as OpenTelemetry's batch processor
    does). Anything they raise is logged and ignored."""

    def run_started(self, run: RunInfo) -> None:
        """An execution of ``run`` starts."""

    def run_ended(
        self, run: RunInfo, status: str, error: ErrorInfo | None, duration: timedelta
    ) -> None:
        """The execution ended; ``status`` is the run's afterwards (``completed``,
        ``failed``, ``cancelled``, ``continued_as_new``, ``suspended``) or ``interrupted``."""

    def operation_started(self, op: OperationInfo) -> None:
        """An operation not finished in the history is reached (see ``op.replayed``)."""

    def operation_ended(self, op: OperationInfo, outcome: Outcome, duration: timedelta) -> None:
        """The operation's ending was recorded; ``duration`` since ``op.started_at``."""

    def attempt_started(self, op: OperationInfo) -> None:
        """An attempt of a step's function starts (``op.attempt``)."""

    def attempt_ended(self, op: OperationInfo, outcome: Outcome, duration: timedelta) -> None:
        """The attempt ended (the step may retry after a failed one)."""

    def trace_context(self, run_id: str, workflow: str, links: list[Mapping[str, Any]]) -> Any:
        """What to record in a new run's ``workflow.started`` event for tracing (a JSON
        object, or None for nothing). ``links``: the recorded contexts of the run this one is
        linked to (the parent of a child, the run it continues)."""
        return None


class Instruments:
    """The registered plugins, called in order; one that raises is logged and skipped, the
    others are still called."""

    __slots__ = ("plugins",)

    def __init__(self, plugins: Iterable[Instrumentation]) -> None:
        self.plugins = tuple(plugins)

    def _each(self, hook: str, *args: Any) -> None:
        for plugin in self.plugins:
            try:
                getattr(plugin, hook)(*args)
            except Exception:  # noqa: BLE001 - a plugin never breaks a run
                logger.exception("instrumentation %r failed in %s (ignored)", plugin, hook)

    def run_started(self, run: RunInfo) -> None:
        self._each("run_started", run)

    def run_ended(
        self, run: RunInfo, status: str, error: ErrorInfo | None, duration: timedelta
    ) -> None:
        self._each("run_ended", run, status, error, duration)

    def operation_started(self, op: OperationInfo) -> None:
        self._each("operation_started", op)

    def operation_ended(self, op: OperationInfo, outcome: Outcome, duration: timedelta) -> None:
        self._each("operation_ended", op, outcome, duration)

    def attempt_started(self, op: OperationInfo) -> None:
        self._each("attempt_started", op)

    def attempt_ended(self, op: OperationInfo, outcome: Outcome, duration: timedelta) -> None:
        self._each("attempt_ended", op, outcome, duration)

    def trace_context(
        self, run_id: str, workflow: str, links: list[Mapping[str, Any]]
    ) -> dict[str, Any] | None:
        """The first plugin's answer that is a JSON object."""
        for plugin in self.plugins:
            try:
                value = plugin.trace_context(run_id, workflow, links)
            except Exception:  # noqa: BLE001
                logger.exception("instrumentation %r failed in trace_context (ignored)", plugin)
                continue
            if isinstance(value, dict) and value:
                return value
        return None


def parent_of(path: str) -> str | None:
    """The fan-out a branch operation belongs to: "3" for "3.1.0" (fan-out 3, branch 1)."""
    head, _, _ = path.rpartition(".")
    parent, _, _ = head.rpartition(".")
    return parent or None


def outcome_of(data: Mapping[str, Any], status: OutcomeStatus) -> Outcome:
    if status == OutcomeStatus.SUCCEEDED:
        return Outcome(status, result=data.get("result"))
    return Outcome(
        status,
        error=ErrorInfo(
            type=data.get("error_type"), message=str(data.get("error", "") or status.value)
        ),
    )


def with_attempt(op: OperationInfo, attempt: int, started_at: datetime) -> OperationInfo:
    return replace(op, attempt=attempt, started_at=started_at)


_OUTCOMES = {
    type_: (
        OutcomeStatus.FAILED
        if type_
        in (
            EventType.STEP_FAILED,
            EventType.HOOK_EXPIRED,
            EventType.HOOK_FAILED,
            EventType.CHILD_WORKFLOW_FAILED,
        )
        else OutcomeStatus.CANCELLED
        if type_ in (EventType.STEP_CANCELLED, EventType.CHILD_WORKFLOW_CANCELLED)
        else OutcomeStatus.SUCCEEDED
    )
    for type_ in TERMINAL_OP_EVENTS
}

# the fan-outs the calling code has open, innermost last (a normal fan-out records no ending
# event: its end is the closing of its block, in the code that opened it)
_fan_outs: ContextVar[tuple[tuple[object, int], ...]] = ContextVar(
    "pyworkflow_fan_outs", default=()
)


class Positions(Protocol):
    """What the reporter reads from the execution's replay context."""

    clock: Clock

    def path_of(self, op: int) -> str: ...


class OperationReporter:
    """Tells the plugins about one execution's operations, from what the replay context sees:
    an operation reached (``started``), a step attempt beginning (``attempt_started``), an
    event recorded (``event``: an attempt's or an operation's end) and a fan-out's block
    closing (``fan_out_closed``)."""

    __slots__ = ("attempts", "instruments", "positions", "reported", "run_id", "workflow")

    def __init__(
        self, instruments: Instruments, run_id: str, workflow: str, positions: Positions
    ) -> None:
        self.instruments = instruments
        self.run_id = run_id
        self.workflow = workflow
        self.positions = positions
        self.reported: dict[int, OperationInfo] = {}  # started and not ended, by op number
        self.attempts: dict[int, OperationInfo] = {}  # step attempts under way

    def started(self, op: int, kind: str, name: str, rec: OpRecord | None) -> None:
        """Operation ``op`` is reached: reported unless the history holds it finished (the
        execution that finished it reported it)."""
        if kind == OperationKind.PARALLEL:
            _fan_outs.set((*_fan_outs.get(), (self, op)))
        if rec is not None and rec.terminal is not None:
            return
        path = self.positions.path_of(op)
        retries = sum(1 for e in rec.events if e.type == EventType.STEP_RETRYING) if rec else 0
        info = OperationInfo(
            run_id=self.run_id,
            workflow=self.workflow,
            kind=kind,
            name=name,
            op_id=path,
            parent_id=parent_of(path),
            attempt=retries + 1,
            replayed=rec is not None,
            # from the history for an operation already under way (a resumed sleep started
            # when it was recorded), else from the injected clock
            started_at=rec.events[0].timestamp if rec is not None else self.positions.clock.now(),
        )
        self.reported[op] = info
        self.instruments.operation_started(info)

    def attempt_started(self, op: int, attempt: int) -> None:
        """A step's attempt ``attempt`` is about to call its function."""
        info = self.reported.get(op)
        if info is None:
            return
        current = self.attempts[op] = with_attempt(info, attempt, self.positions.clock.now())
        self.instruments.attempt_started(current)

    def event(self, event: Event) -> None:
        """An event of a reported operation was recorded."""
        op, type_ = event.op, event.type
        if op is None:
            return
        if type_ == EventType.STEP_RETRYING:
            self._attempt_ended(op, event, outcome_of(event.data, OutcomeStatus.FAILED))
            return
        status = _OUTCOMES.get(type_)
        if status is None:
            if type_ != EventType.CHILD_WORKFLOW_STARTED or event.data.get("wait", True):
                return
            status = OutcomeStatus.SUCCEEDED  # a child started and not waited for
        outcome = outcome_of(event.data, status)
        self._attempt_ended(op, event, outcome)
        info = self.reported.pop(op)
        recorded = event.data.get("attempt")
        if isinstance(recorded, int) and recorded != info.attempt:
            info = with_attempt(info, recorded, info.started_at)
        self.instruments.operation_ended(info, outcome, event.timestamp - info.started_at)

    def _attempt_ended(self, op: int, event: Event, outcome: Outcome) -> None:
        attempt = self.attempts.pop(op, None)
        if attempt is not None:
            duration = event.timestamp - attempt.started_at
            self.instruments.attempt_ended(attempt, outcome, duration)

    def fan_out_closed(self) -> None:
        """The fan-out the calling code opened last has ended: normally, stopped early, or by
        the exception being handled now (a wait is no ending: it stays open)."""
        opened = _fan_outs.get()
        if not opened:
            return
        owner, op = opened[-1]
        _fan_outs.set(opened[:-1])
        if owner is not self:  # left open by another execution that failed mid-opening
            return
        info = self.reported.get(op)
        error = sys.exc_info()[1]
        if info is None or isinstance(error, SuspensionSignal):
            return
        if error is None:
            outcome = Outcome(OutcomeStatus.SUCCEEDED)
        else:
            cancelled = isinstance(error, CancellationError | asyncio.CancelledError)
            outcome = Outcome(
                OutcomeStatus.CANCELLED if cancelled else OutcomeStatus.FAILED,
                error=ErrorInfo(type(error).__name__, str(error)),
            )
        del self.reported[op]
        duration = self.positions.clock.now() - info.started_at
        self.instruments.operation_ended(info, outcome, duration)


__all__ = [
    "ErrorInfo",
    "Instrumentation",
    "Instruments",
    "OperationInfo",
    "OperationKind",
    "OperationReporter",
    "Outcome",
    "OutcomeStatus",
    "RunInfo",
]

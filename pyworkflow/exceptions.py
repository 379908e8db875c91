"""The exception tree. Imports only the standard library: everything else may import it.

    Exception
    └── WorkflowError                    anything pyworkflow raises on purpose
        ├── FatalError                   a step failure that must not be retried
        │   ├── StepInterruptedError     an at_most_once step's attempt died unrecorded
        │   └── PrimitiveInStepError     sleep()/hook()/a child started inside a step
        ├── RetryableError               a step failure to retry (optionally after ``retry_after``)
        ├── CancellationError            delivered into a cancelled workflow at its next await
        ├── ConditionNotMetError         wait_for_condition ran out of checks
        ├── WorkflowNotFoundError
        ├── WorkflowAlreadyRunningError
        ├── RunAlreadyEndedError         nothing to cancel (the API's 409)
        ├── ConfigurationError
        │   ├── UnknownWorkflowError     no workflow of that name is registered here
        │   ├── DiscoveryError           a workflow module to discover failed to import
        │   └── ConfigFileError          pyworkflow.config.yaml cannot be read
        ├── HookError
        │   ├── HookNotFoundError
        │   ├── HookExpiredError
        │   │   └── HookHeartbeatTimeoutError  no heartbeat_hook() within heartbeat_timeout
        │   ├── HookAlreadyReceivedError
        │   ├── HookFailedError          an outside party failed the hook (fail_hook)
        │   ├── HookPayloadError         payload failed the hook's schema (hook stays pending)
        │   └── InvalidTokenError
        ├── ChildWorkflowError
        │   ├── ChildWorkflowFailedError
        │   └── MaxNestingDepthError
        ├── NonDeterminismError          replay met code that no longer matches the history
        ├── EventLimitExceededError      history reached the hard event limit
        ├── SerializationError           a value cannot be stored as JSON
        │   └── InvalidResultError       a result does not fit its declared (Annotated) type
        ├── InvalidArgumentsError        arguments do not fit the workflow's signature
        │   └── InvalidCursorError       a listing cursor no listing handed out
        ├── ScheduleError / ScheduleNotFoundError / ScheduleAlreadyExistsError
        └── ConcurrencyError             a conditional write lost the race (storage)

    BaseException
    ├── SuspensionSignal                 the run must wait (sleep, hook, retry, child)
    └── ContinueAsNewSignal              the run ends and a fresh run takes over

The two signals are ``BaseException`` so that a user's ``except Exception:`` cannot swallow them.
``CancellationError`` stays an ``Exception`` for compatibility with pyworkflow-engine; a workflow
that swallows it is cancelled again at its next unshielded await.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


class WorkflowError(Exception):
    """Base class of every error pyworkflow raises on purpose."""


class FatalError(WorkflowError):
    """Raise from a step to fail it at once, without retries.

    Extra keyword arguments are kept as ``metadata`` (pyworkflow-engine's signature).
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = kwargs


class StepInterruptedError(FatalError):
    """An ``at_most_once`` step's attempt started but its outcome was never recorded (its
    process died): it is not run again, the step fails with this instead."""


class PrimitiveInStepError(FatalError):
    """A workflow primitive (``sleep``, ``hook``, ``start_child_workflow``...) was called inside
    a step. Fatal: the step is not retried, the same code would only fail again."""


class RetryableError(WorkflowError):
    """Raise from a step to ask for a retry, optionally after ``retry_after``.

    ``retry_after`` may be seconds, a duration string ("30s"), a timedelta or a datetime.
    Extra keyword arguments are kept as ``metadata`` (pyworkflow-engine's signature).
    """

    def __init__(
        self,
        message: str,
        retry_after: int | float | str | timedelta | datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.metadata = kwargs

    def get_retry_delay_seconds(self) -> float | None:
        """Seconds to wait before the retry (None: the step's own retry policy decides), by the
        same rules the engine applies: a naive datetime is local time, a past one means 0."""
        # Imported here: this module imports only the standard library at load time
        # (core.duration does too, so there is no cycle). The rules of core.retry's
        # retry_after_seconds, which the engine applies.
        from pyworkflow.core.duration import parse_duration

        value = self.retry_after
        if value is None:
            return None
        if isinstance(value, datetime):  # a naive one is local time, as sleep() takes it
            now = datetime.now(UTC)
            return max(0.0, (value.astimezone(UTC) - now).total_seconds())
        if isinstance(value, timedelta):
            return value.total_seconds()
        return parse_duration(value, name="RetryableError retry_after")


class CancellationError(WorkflowError):
    """Delivered into a workflow whose cancellation was requested."""

    def __init__(self, message: str = "Workflow was cancelled", reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class WorkflowNotFoundError(WorkflowError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"Workflow run not found: {run_id}")
        self.run_id = run_id


class WorkflowAlreadyRunningError(WorkflowError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"Workflow already running: {run_id}")
        self.run_id = run_id


class ConfigurationError(WorkflowError):
    """pyworkflow is configured in a way that cannot work; the message says how to fix it."""


class DiscoveryError(ConfigurationError):
    """A workflow module named for discovery (``discover_workflows``, ``configure_from_yaml``,
    ``PYWORKFLOW_DISCOVER``) could not be imported; the message names it."""


class ConfigFileError(ConfigurationError, ValueError):
    """A configuration file cannot be read. Also a ValueError: pyworkflow-engine raised one for
    invalid YAML."""


class RunAlreadyEndedError(WorkflowError):
    """The run has already ended, so there is nothing to cancel (the API answers 409; the
    module-level ``cancel_workflow`` returns False instead, as pyworkflow-engine's does)."""


class UnknownWorkflowError(ConfigurationError, ValueError):
    """No workflow of that name is registered where the request was served (its module is not
    imported there). The same class from every entry point: the API answers it as a 404. Also a
    ValueError: pyworkflow-engine raised one for a schedule of an unknown workflow."""


class HookError(WorkflowError):
    """Base class of hook errors."""


class HookNotFoundError(HookError):
    """No hook for that token (or name). ``token`` is pyworkflow-engine's attribute; unlike its
    message, ours never repeats the token (messages reach logs and API answers)."""

    def __init__(self, token: str, *, detail: str | None = None) -> None:
        super().__init__(f"Hook not found{': ' + detail if detail else ''}")
        self.token = token


class HookExpiredError(HookError):
    def __init__(self, hook_id: str, *, detail: str | None = None) -> None:
        shown = detail or hook_id
        super().__init__(f"Hook expired{': ' + shown if shown else ''}")
        self.hook_id = hook_id


class HookHeartbeatTimeoutError(HookExpiredError):
    """The hook asked for heartbeats (``hook(..., heartbeat_timeout=)``) and none came in time.
    A ``HookExpiredError`` too (the hook is over either way), but a distinct class: ``except
    HookHeartbeatTimeoutError`` tells a silent worker from the overall ``timeout``."""

    def __init__(self, hook_id: str, *, detail: str | None = None) -> None:
        shown = detail or hook_id
        HookError.__init__(self, f"Hook heartbeat timed out{': ' + shown if shown else ''}")
        self.hook_id = hook_id


class HookFailedError(HookError):
    """An outside party failed the hook (``fail_hook``): ``await hook(...)`` raises this, with
    the sender's ``error_type`` and ``error_message``. Recorded (``hook.failed``), so every
    replay raises the same."""

    error_type: str = ""
    error_message: str = ""
    hook_id: str = ""

    def __init__(self, error_type: str, message: str, *, hook_id: str = "") -> None:
        super().__init__(f"{error_type}: {message}" if error_type else message)
        self.error_type = error_type
        self.error_message = message
        self.hook_id = hook_id


class HookAlreadyReceivedError(HookError):
    def __init__(self, hook_id: str, *, detail: str | None = None) -> None:
        shown = detail or hook_id
        super().__init__(f"Hook already received a payload{': ' + shown if shown else ''}")
        self.hook_id = hook_id


class HookPayloadError(HookError):
    """The payload does not match the hook's schema; the hook stays pending."""


class InvalidTokenError(HookError):
    """A token that names no hook of ours. ``hook_id`` is pyworkflow-engine's attribute (empty
    when the token does not even name one); ``detail`` replaces the message."""

    def __init__(self, hook_id: str, *, detail: str | None = None) -> None:
        super().__init__(detail or f"Invalid token for hook: {hook_id}")
        self.hook_id = hook_id


class ConditionNotMetError(WorkflowError):
    """``wait_for_condition`` made its last allowed check and the condition still did not
    hold. ``state``: the last state found (JSON data); ``attempts``: the checks made."""

    def __init__(
        self, message: str = "", *, state: Any = None, attempts: int | None = None
    ) -> None:
        super().__init__(message)
        self.state = state
        self.attempts = attempts


class ChildWorkflowError(WorkflowError):
    pass


class ChildWorkflowFailedError(ChildWorkflowError):
    def __init__(
        self,
        child_run_id: str,
        child_workflow_name: str,
        error: str,
        error_type: str | None,
    ) -> None:
        super().__init__(f"Child workflow {child_workflow_name} ({child_run_id}) failed: {error}")
        self.child_run_id = child_run_id
        self.child_workflow_name = child_workflow_name
        self.error = error
        self.error_type = error_type


class MaxNestingDepthError(ChildWorkflowError):
    MAX_DEPTH = 3

    def __init__(self, current_depth: int) -> None:
        # pyworkflow-engine's wording, word for word: code may match on it
        super().__init__(
            f"Maximum nesting depth of {self.MAX_DEPTH} exceeded. "
            f"Current depth: {current_depth}. "
            "Consider restructuring your workflow to reduce nesting."
        )
        self.current_depth = current_depth
        self.max_depth = self.MAX_DEPTH


@dataclass(frozen=True)
class OpMismatch:
    """Where replay and history disagree: a ``NonDeterminismError``'s ``mismatch``."""

    op: int | str  # the op number, or its path inside a fan-out
    expected: str  # what the history recorded, e.g. "step 'charge'"
    found: str  # what the code asks for now


class NonDeterminismError(WorkflowError):
    """The workflow code no longer produces the operations recorded in its history.
    ``mismatch`` says where, when replay found it (for ``pyworkflow replay``)."""

    mismatch: OpMismatch | None = None  # also for an instance rebuilt from its message alone

    def __init__(self, message: str = "", *, mismatch: OpMismatch | None = None) -> None:
        super().__init__(message)
        self.mismatch = mismatch


class EventLimitExceededError(WorkflowError):
    def __init__(self, run_id: str, count: int, limit: int) -> None:
        super().__init__(
            f"Run {run_id} reached {count} events (hard limit {limit}). Use continue_as_new() "
            "to carry the state into a fresh run with an empty history."
        )
        self.run_id = run_id
        self.count = count
        self.limit = limit


class SerializationError(WorkflowError):
    """A value cannot be stored: payloads are JSON (pydantic models, dataclasses, datetimes ok).
    ``path`` says where in the value the problem is (``[0]['name']``; "" for the value itself)."""

    path: str | None = None  # also for an instance rebuilt from its message alone

    def __init__(self, message: str = "", *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class PayloadTooLargeError(SerializationError):
    """A payload is larger than what can be stored; the message names the limit and its
    setting."""

    def __init__(self, what: str, size: int, limit: int, setting: str) -> None:
        super().__init__(
            f"{what} is {size:,} bytes of JSON, over the limit of {limit:,} bytes ({setting})"
        )
        self.size = size
        self.limit = limit
        self.setting = setting


class InvalidResultError(SerializationError):
    """A step's or workflow's result does not fit its declared return type (its ``Annotated``
    constraints and validators included). Not retried: the same value would fail again."""


class InvalidArgumentsError(WorkflowError):
    """The arguments do not fit the workflow's signature or annotations. ``path`` says where
    in them a value cannot be stored (as ``SerializationError.path``), when that is why."""

    path: str | None = None  # also for an instance rebuilt from its message alone

    def __init__(self, message: str = "", *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class InvalidCursorError(InvalidArgumentsError):
    """A listing cursor that no listing handed out (the API answers 400)."""


class ScheduleError(WorkflowError, ValueError):
    """Also a ValueError: pyworkflow-engine raised ValueError for bad schedules."""


class ScheduleNotFoundError(ScheduleError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"Schedule not found: {schedule_id}")
        self.schedule_id = schedule_id


class ScheduleAlreadyExistsError(ScheduleError):
    """A schedule with that id exists already (the API answers 409)."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"Schedule {schedule_id!r} already exists")
        self.schedule_id = schedule_id


class ConcurrencyError(WorkflowError):
    """A conditional write found the record changed: someone else wrote first. Reload and retry."""


class SuspensionSignal(BaseException):  # noqa: N818 - name kept from pyworkflow-engine
    """Raised inside a workflow to stop this execution until ``wake_at`` or an outside event."""

    def __init__(self, reason: str, *, wake_at: datetime | None = None, **data: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wake_at = wake_at
        self.data = data


class ContinueAsNewSignal(BaseException):  # noqa: N818
    """Raised by ``continue_as_new``: the run ends and a fresh run starts with these arguments."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__("continue_as_new")
        self.args_ = args
        self.kwargs = kwargs


class RestartSignal(BaseException):  # noqa: N818
    """Internal: the execution's view of the run is stale; reload the history and replay."""


class StoreUnavailable(BaseException):  # noqa: N818
    """Internal: the store (or a transport) failed under an execution — a throttle, a timeout,
    a dropped connection. It must not become the run's outcome, so it passes the workflow's
    ``except Exception`` and the executor re-raises ``error``: the drive fails, and the run is
    driven again later (SQS redelivery, the worker)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class RunFailure(BaseException):  # noqa: N818
    """Internal: fail the run with ``error`` no matter what the workflow code catches
    (nondeterminism, event hard limit, ``max_duration`` exceeded)."""

    def __init__(self, error: WorkflowError, *, written: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        # Raised by a write that did reach the store (it recorded the failure itself).
        self.written = written

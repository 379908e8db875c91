"""Retry delays and the recording of step failures as data (never as pickled exceptions)."""

from __future__ import annotations

import builtins
import os
import traceback
from datetime import datetime, timedelta
from typing import Any

from pyworkflow import exceptions as _exc
from pyworkflow.core.duration import parse_duration
from pyworkflow.core.serde import describe

MAX_BACKOFF_SECONDS = 300.0


def retry_delay_seconds(policy: str | int | float | list[int | float], attempt: int) -> float:
    """Delay before retry number ``attempt`` (1 = first retry).

    "exponential": 1, 2, 4, 8… capped at 300 s; a number: fixed; a list: one per retry, the last
    repeating; a duration string ("10s"): fixed.
    """
    if policy == "exponential":
        return min(2.0 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    if isinstance(policy, bool):
        raise ValueError("retry_delay must be 'exponential', seconds, a duration or a list")
    if isinstance(policy, int | float):
        return float(policy)
    if isinstance(policy, list):
        if not policy:
            return 1.0
        return float(policy[min(attempt - 1, len(policy) - 1)])
    if isinstance(policy, str):
        return parse_duration(policy)
    raise ValueError(f"Invalid retry_delay {policy!r}")


def validate_retry_delay(policy: Any) -> None:
    if policy == "exponential":
        return
    delays = policy if isinstance(policy, list) else [policy]
    for delay in delays:
        if isinstance(delay, str):
            parse_duration(delay, name="retry_delay")
        elif isinstance(delay, bool) or not isinstance(delay, int | float):
            raise ValueError(
                f"Invalid retry_delay {policy!r}: use 'exponential', seconds, a duration like "
                "'10s' or a list of seconds per retry"
            )
        else:
            parse_duration(delay, name="retry_delay")  # finite, not negative, not absurd


def retry_after_seconds(value: Any, now: datetime) -> float | None:
    """Seconds until ``RetryableError.retry_after``, or None when it was not given."""
    if value is None:
        return None
    if isinstance(value, datetime):  # a naive one is local time, as sleep() takes it
        return max(0.0, (value.astimezone(now.tzinfo) - now).total_seconds())
    if isinstance(value, timedelta):
        return value.total_seconds()
    return parse_duration(value, name="RetryableError retry_after")


# Exception types a recorded failure may be raised as again: builtins and our own tree. A type
# outside this list comes back as FatalError naming it: storage holds data, never code.
_SAFE_BUILTINS = {
    name: obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, Exception)
}
_OWN = {
    name: obj
    for name, obj in vars(_exc).items()
    if isinstance(obj, type) and issubclass(obj, _exc.WorkflowError)
}


def describe_error(exc: BaseException) -> dict[str, Any]:
    """A failure as data. The message is made storable (an exception about undecodable bytes
    often quotes them): recording a failure must never fail itself."""
    data: dict[str, Any] = {
        "error": describe(exc) or type(exc).__name__,
        "error_type": type(exc).__name__,
    }
    trace = format_traceback(exc)
    if trace:
        data["traceback"] = trace
    return data


# Frames of these folders are the machinery around the user's code, left out of tracebacks.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_ASYNCIO_DIR = os.path.dirname(os.path.abspath(traceback.__file__)) + os.sep + "asyncio" + os.sep
MAX_TRACEBACK_FRAMES = 20
MAX_TRACEBACK_CHARS = 4000


def format_traceback(exc: BaseException) -> str | None:
    """Where ``exc`` was raised, as a bounded, readable text for the history: the user's frames
    (pyworkflow's and asyncio's left out) as ``File, line, in function``, innermost last.

    File, line and function name only: no source lines (that would read files) and no local
    variables (they may hold secrets); at most 20 frames and 4,000 characters."""
    summary = traceback.StackSummary.extract(
        traceback.walk_tb(exc.__traceback__), lookup_lines=False
    )  # names and numbers only: reading source lines would be I/O in the engine
    frames = [f for f in summary if not f.filename.startswith((_PACKAGE_DIR, _ASYNCIO_DIR))]
    if not frames:
        return None
    omitted = max(0, len(frames) - MAX_TRACEBACK_FRAMES)
    lines = ["Stack trace (most recent call last; pyworkflow's frames left out):"]
    if omitted:
        lines.append(f"  ... {omitted} earlier frame(s)")
    lines += [
        f'  File "{f.filename}", line {f.lineno}, in {f.name}'
        for f in frames[-MAX_TRACEBACK_FRAMES:]
    ]
    lines.append(f"{type(exc).__name__}: {describe(exc)}")
    text = "\n".join(lines)
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-(MAX_TRACEBACK_CHARS - 4) :]
    return text


def rebuild_error(data: dict[str, Any], step_name: str) -> Exception:
    """The exception a recorded ``step.failed`` raises, identical on every replay.

    Whatever class it is raised as, it carries the recorded ``error_type`` (the original
    exception's class name) and ``error_message`` as attributes: a type outside the safe list
    becomes a ``FatalError`` but keeps both, as AWS's SDKs keep ``ErrorType``/``ErrorMessage``."""
    error_type = str(data.get("error_type") or "Exception")
    message = str(data.get("error") or "")
    error = _rebuild(error_type, message, step_name)
    error.error_type = error_type  # type: ignore[attr-defined]
    error.error_message = message  # type: ignore[attr-defined]
    return error


def _rebuild(error_type: str, message: str, step_name: str) -> Exception:
    cls = _SAFE_BUILTINS.get(error_type)
    if cls is not None:
        try:
            return cls(message)
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
            pass
    own = _OWN.get(error_type)
    if own is not None and own in _REBUILT_OWN:
        return own(message)
    return _exc.FatalError(f"Step {step_name!r} failed: {error_type}: {message}")


#: Our own exception types raised again as themselves (their constructor takes a message).
_REBUILT_OWN: tuple[type[Exception], ...] = (
    _exc.FatalError,
    _exc.WorkflowError,
    _exc.RetryableError,
    _exc.StepInterruptedError,
    _exc.InvalidResultError,
)

"""What a fan-out (``parallel``/``map``) returns, and when it completes.

The completion policy follows AWS Lambda durable functions' ``CompletionConfig``
(``min_successful``, ``tolerated_failure_count``, ``tolerated_failure_percentage``) and adds the
choice of what happens to branches still running when the fan-out completes early
(``on_completion``: cancel them, or wait for them). Pure: no I/O, no clock.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pyworkflow.exceptions import ConfigurationError, WorkflowError

T = TypeVar("T")


class ItemStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # not started, or cancelled by an early stop


class CompletionReason(StrEnum):
    ALL_COMPLETED = "all_completed"
    MIN_SUCCESSFUL_REACHED = "min_successful_reached"
    FAILURE_TOLERANCE_EXCEEDED = "failure_tolerance_exceeded"
    # So many items failed that ``min_successful`` can no longer be reached (AWS lets every
    # item run on and reports FAILURE_TOLERANCE_EXCEEDED; pyworkflow stops and says why).
    MIN_SUCCESSFUL_UNREACHABLE = "min_successful_unreachable"


class TerminationMode(StrEnum):
    """What an early completion does to items already running (AWS's ``TerminationMode``
    names). Items not yet started never start either way."""

    CANCEL = "cancel"  # cancel them: their in-flight step is not recorded, they are skipped
    WAIT = "wait"  # let them finish: their outcomes are recorded and reported


class FanOutConfigError(ConfigurationError, ValueError):
    """A fan-out's options are invalid (raised before any item starts)."""


class FanOutError(WorkflowError):
    """Raised by ``FanOutResult.raise_if_failed()``: some items failed (``failed`` maps their
    index to the exception; the first one is also the ``__cause__``)."""

    def __init__(self, failed: dict[int, BaseException], total: int) -> None:
        first = min(failed)
        super().__init__(
            f"{len(failed)} of {total} item(s) failed; first: item {first}: "
            f"{type(failed[first]).__name__}: {failed[first]}"
        )
        self.failed = failed


@dataclass
class FanOutResult(Generic[T]):
    """What ``parallel``/``map`` return. Indexes are positions in the input."""

    statuses: list[ItemStatus]
    values: dict[int, T] = field(default_factory=dict)
    errors: dict[int, BaseException] = field(default_factory=dict)
    completion_reason: CompletionReason = CompletionReason.ALL_COMPLETED

    @property
    def results(self) -> list[T | None]:
        """Every item's value in input order (None for failed or skipped items)."""
        return [self.values.get(i) for i in range(len(self.statuses))]

    @property
    def succeeded(self) -> dict[int, T]:
        return dict(self.values)

    @property
    def failed(self) -> dict[int, BaseException]:
        return dict(self.errors)

    @property
    def skipped(self) -> list[int]:
        return [i for i, s in enumerate(self.statuses) if s == ItemStatus.SKIPPED]

    @property
    def all_succeeded(self) -> bool:
        return all(s == ItemStatus.SUCCEEDED for s in self.statuses)

    def raise_if_failed(self) -> list[T | None]:
        """Raise ``FanOutError`` if any item failed; else return ``results``."""
        if self.errors:
            first = self.errors[min(self.errors)]
            raise FanOutError(dict(self.errors), len(self.statuses)) from first
        return self.results

    def __len__(self) -> int:
        return len(self.statuses)


@dataclass(frozen=True)
class CompletionPolicy:
    """When a fan-out of ``total`` items completes. Built by ``policy()``, which validates."""

    total: int
    max_concurrency: int | None = None
    min_successful: int | None = None
    tolerated_count: int | None = None
    tolerated_percentage: float | None = None
    on_completion: TerminationMode = TerminationMode.CANCEL

    def tolerance_exceeded(self, failed: int) -> bool:
        if self.tolerated_count is not None and failed > self.tolerated_count:
            return True
        # AWS: exceeded when failures / total * 100 > percentage.
        return (
            self.tolerated_percentage is not None
            and self.total > 0
            and failed * 100 / self.total > self.tolerated_percentage
        )

    def decide(self, succeeded: int, failed: int) -> CompletionReason | None:
        """The reason to complete now, after ``succeeded`` and ``failed`` outcomes, or None."""
        if self.tolerance_exceeded(failed):
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if self.min_successful is not None:
            if succeeded >= self.min_successful:
                return CompletionReason.MIN_SUCCESSFUL_REACHED
            if failed > self.total - self.min_successful:
                return CompletionReason.MIN_SUCCESSFUL_UNREACHABLE
        return None


def policy(
    total: int,
    *,
    max_concurrency: int | None = None,
    min_successful: int | None = None,
    tolerated_failures: int | None = None,
    tolerated_failure_count: int | None = None,
    tolerated_failure_percentage: float | None = None,
    on_completion: TerminationMode | str = TerminationMode.CANCEL,
) -> CompletionPolicy:
    """Check a fan-out's options; ``tolerated_failures`` is the older name of
    ``tolerated_failure_count`` (AWS's name)."""
    if max_concurrency is not None and (not _is_int(max_concurrency) or max_concurrency < 1):
        raise FanOutConfigError(
            f"max_concurrency must be a positive integer, got {max_concurrency!r}"
        )
    if min_successful is not None and (
        not _is_int(min_successful) or not 1 <= min_successful <= max(1, total)
    ):
        raise FanOutConfigError(
            f"min_successful must be between 1 and the {total} item(s), got {min_successful!r}"
        )
    if tolerated_failures is not None and tolerated_failure_count is not None:
        if tolerated_failures != tolerated_failure_count:
            raise FanOutConfigError(
                "tolerated_failures is the older name of tolerated_failure_count: pass one, "
                f"got {tolerated_failures!r} and {tolerated_failure_count!r}"
            )
    count, what = tolerated_failure_count, "tolerated_failure_count"
    if count is None:
        count, what = tolerated_failures, "tolerated_failures"
    if count is not None and (not _is_int(count) or count < 0):
        raise FanOutConfigError(f"{what} must be a non-negative integer, got {count!r}")
    pct = tolerated_failure_percentage
    if pct is not None and (
        isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100
    ):
        raise FanOutConfigError(
            f"tolerated_failure_percentage must be a number from 0 to 100, got {pct!r}"
        )
    try:
        mode = TerminationMode(on_completion)
    except ValueError:
        raise FanOutConfigError(
            f"on_completion must be 'cancel' or 'wait', got {on_completion!r}"
        ) from None
    return CompletionPolicy(
        total=total,
        max_concurrency=max_concurrency,
        min_successful=min_successful,
        tolerated_count=count,
        tolerated_percentage=None if pct is None else float(pct),
        on_completion=mode,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- per-operation serialization ---------------------------------------------------------------


@runtime_checkable
class Serdes(Protocol):
    """An object that turns an item's result into JSON data and back."""

    def serialize(self, value: Any) -> Any: ...

    def deserialize(self, data: Any) -> Any: ...


@dataclass(frozen=True)
class FunctionSerdes:
    serialize: Callable[[Any], Any]
    deserialize: Callable[[Any], Any]


#: ``(execution context, serdes)`` of the fan-out whose branch the calling task runs in (None:
#: JSON as usual). Steps of that execution read it to record their result (a child run's steps,
#: another execution, do not); a nested fan-out sets its own for its branches.
item_serdes: ContextVar[tuple[Any, Serdes] | None] = ContextVar(
    "pyworkflow_item_serdes", default=None
)


def serdes_for(ctx: Any) -> Serdes | None:
    """The fan-out ``serdes`` a step of execution ``ctx`` records its result with, if any."""
    current = item_serdes.get()
    return current[1] if current is not None and current[0] is ctx else None


def as_serdes(serdes: Any) -> Serdes | None:
    """``serdes=``: None, an object with ``serialize``/``deserialize``, or a pair of functions
    ``(serialize, deserialize)``."""
    if serdes is None:
        return None
    if isinstance(serdes, tuple) and len(serdes) == 2 and all(callable(f) for f in serdes):
        return FunctionSerdes(serdes[0], serdes[1])
    if callable(getattr(serdes, "serialize", None)) and callable(
        getattr(serdes, "deserialize", None)
    ):
        return serdes  # type: ignore[no-any-return]
    raise FanOutConfigError(
        "serdes must be an object with serialize(value) and deserialize(data) methods, or a "
        f"pair of functions (serialize, deserialize), got {serdes!r}"
    )


# --- map's item index -------------------------------------------------------------------------


def takes_index(fn: Callable[..., Any]) -> bool:
    """Whether ``map`` calls ``fn(item, index)`` rather than ``fn(item)``: when ``fn`` has at
    least two positional parameters without a default. Read from the signature the user wrote
    (``@step`` and ``functools.wraps`` keep it in ``__wrapped__``, which ``inspect`` follows);
    ``*args`` alone or an unreadable signature keeps the one-argument call."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) >= 2


__all__ = [
    "CompletionPolicy",
    "CompletionReason",
    "FanOutConfigError",
    "FanOutError",
    "FanOutResult",
    "FunctionSerdes",
    "ItemStatus",
    "Serdes",
    "TerminationMode",
    "as_serdes",
    "item_serdes",
    "serdes_for",
    "policy",
    "takes_index",
]

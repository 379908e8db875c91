"""``RetryPolicy``: when a failed attempt is retried and after how long, as a value.

The AWS Lambda durable-execution SDKs call this a retry strategy (``RetryStrategyConfig``,
``RetryPresets``); the same knobs are here: which errors are retried (exception types or a
predicate, and types never retried), how many attempts in all, the first delay, the backoff
rate, the longest delay and the jitter. A policy is frozen and hashable, so one value can be
shared by many steps, submitters and conditions.

Decisions are taken once, in the live execution, and recorded (``step.retrying`` holds the
absolute ``retry_at`` and the ``delay_seconds`` chosen): a replay reads them and never asks
the policy again. Jitter is nevertheless drawn from a hash of the run id, the operation and
the attempt (``jitter_fraction``), not from a random generator: the same failure in the same
place waits the same time, and core stays free of hidden state.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pyworkflow.core.duration import parse_duration

logger = logging.getLogger("pyworkflow")

#: The longest backoff pyworkflow waits between attempts unless a policy says otherwise.
DEFAULT_MAX_DELAY = 300.0


class Jitter(StrEnum):
    """How much of a delay is randomised: ``none`` (exact), ``full`` (anywhere between 0 and
    the delay: the AWS default), ``half`` (between half the delay and the delay)."""

    NONE = "none"
    FULL = "full"
    HALF = "half"


ErrorFilter = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


def _seconds(value: str | int | float | timedelta, name: str) -> float:
    return parse_duration(value, name=f"RetryPolicy {name}")


def _types(value: Any, name: str) -> tuple[type[BaseException], ...]:
    items = value if isinstance(value, tuple | list) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(
                f"RetryPolicy {name} takes exception types (or, for retry_on, a predicate "
                f"taking the exception), got {item!r}"
            )
    return tuple(items)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often a failed attempt is tried again.

    ``max_attempts`` counts every attempt, the first included (1 = no retry).
    ``retry_on``: the exceptions that are retried — an exception type, a tuple of them, or a
    predicate ``error -> bool``; None (the default) retries every ``Exception``.
    ``never_retry_on``: types that are never retried, whatever ``retry_on`` says.
    ``FatalError`` and ``SerializationError`` are never retried; a ``RetryableError`` is
    retried whatever ``retry_on`` says (not if ``never_retry_on`` names it) and its
    ``retry_after`` replaces the computed delay.
    The delay before retry ``n`` (1 = the first) is ``initial_delay * backoff_rate ** (n-1)``,
    at most ``max_delay``, then jittered. Durations are seconds, "30s"-style strings or
    timedeltas.

    The default value is pyworkflow's own default for a step: 4 attempts (3 retries), 1 s,
    2 s, 4 s, no jitter. ``RetryPolicy.aws_default()`` is the AWS SDKs' default (6 attempts,
    5 s doubling to 60 s, full jitter) and ``RetryPolicy.none()`` never retries.
    """

    max_attempts: int = 4
    initial_delay: float | str | timedelta = 1.0
    backoff_rate: float = 2.0
    max_delay: float | str | timedelta = DEFAULT_MAX_DELAY
    jitter: Jitter = Jitter.NONE
    retry_on: ErrorFilter | None = None
    never_retry_on: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise ValueError(
                f"RetryPolicy max_attempts counts every attempt and is at least 1, got "
                f"{self.max_attempts!r}"
            )
        set_ = object.__setattr__  # frozen: normalise the given values once, here
        set_(self, "initial_delay", _seconds(self.initial_delay, "initial_delay"))
        set_(self, "max_delay", _seconds(self.max_delay, "max_delay"))
        if isinstance(self.backoff_rate, bool) or not isinstance(self.backoff_rate, int | float):
            raise ValueError(
                f"RetryPolicy backoff_rate must be a number, got {self.backoff_rate!r}"
            )
        if not 1.0 <= float(self.backoff_rate) <= 100.0:
            raise ValueError(
                f"RetryPolicy backoff_rate must be between 1 and 100, got {self.backoff_rate!r}"
            )
        set_(self, "backoff_rate", float(self.backoff_rate))
        try:
            set_(self, "jitter", Jitter(self.jitter))
        except ValueError:
            raise ValueError(
                f"RetryPolicy jitter must be one of {[j.value for j in Jitter]}, got "
                f"{self.jitter!r}"
            ) from None
        if self.retry_on is not None and not (
            isinstance(self.retry_on, tuple | list | type) or callable(self.retry_on)
        ):
            raise TypeError(
                f"RetryPolicy retry_on takes exception types or a predicate, got {self.retry_on!r}"
            )
        if isinstance(self.retry_on, tuple | list) or isinstance(self.retry_on, type):
            set_(self, "retry_on", _types(self.retry_on, "retry_on"))
        set_(self, "never_retry_on", _types(self.never_retry_on, "never_retry_on"))

    # --- presets --------------------------------------------------------------------------
    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, never retried (the AWS SDKs' ``RetryPresets.none``)."""
        return cls(max_attempts=1)

    @classmethod
    def aws_default(cls) -> RetryPolicy:
        """The AWS SDKs' default strategy: 6 attempts, 5 s doubling up to 60 s, full jitter."""
        return cls(
            max_attempts=6, initial_delay=5.0, backoff_rate=2.0, max_delay=60.0, jitter=Jitter.FULL
        )

    # --- decisions ------------------------------------------------------------------------
    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` is of a kind this policy retries (attempts left aside)."""
        from pyworkflow.exceptions import (
            FatalError,
            RetryableError,
            SerializationError,
            StepInterruptedError,
        )

        if isinstance(error, self.never_retry_on):
            return False
        if isinstance(error, RetryableError):
            return True
        if isinstance(error, FatalError | SerializationError) and not isinstance(
            error,
            StepInterruptedError,  # an interrupted attempt is a failed attempt (AWS)
        ):
            return False
        rule = self.retry_on
        if rule is None:
            return isinstance(error, Exception)
        if isinstance(rule, tuple):
            return isinstance(error, rule)
        try:
            return bool(rule(error))
        except Exception:  # noqa: BLE001 - the user's predicate: its failure is not ours
            logger.warning(
                "RetryPolicy retry_on predicate %r raised on %s: the error is not retried",
                rule,
                type(error).__name__,
                exc_info=True,
            )
            return False

    def base_delay(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1 = the first), before jitter."""
        longest = _seconds(self.max_delay, "max_delay")
        try:
            grown = _seconds(self.initial_delay, "initial_delay") * self.backoff_rate ** (retry - 1)
        except OverflowError:
            grown = longest
        return min(grown, longest)

    def delay(self, retry: int, fraction: float) -> float:
        """The delay before retry ``retry`` with jitter drawn as ``fraction`` (in [0, 1))."""
        base = self.base_delay(retry)
        if self.jitter == Jitter.FULL:
            return base * fraction
        if self.jitter == Jitter.HALF:
            return base / 2 + base / 2 * fraction
        return base

    def next_delay(self, error: BaseException, attempt: int, seed: str) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after ``error`` ended attempt
        ``attempt``, or None: not retried. ``seed`` names the attempt for the jitter."""
        if attempt >= self.max_attempts or not self.retries(error):
            return None
        return round(self.delay(attempt, jitter_fraction(seed)), 3)


@dataclass(frozen=True)
class LegacyRetry:
    """``@step(max_retries=, retry_delay=)``: pyworkflow-engine's way, kept as it was."""

    max_retries: int
    retry_delay: str | int | float | list[int | float]

    def next_delay(self, error: BaseException, attempt: int, seed: str) -> float | None:
        from pyworkflow.core.retry import retry_delay_seconds
        from pyworkflow.exceptions import FatalError, SerializationError, StepInterruptedError

        retryable = isinstance(error, StepInterruptedError) or not isinstance(
            error, FatalError | SerializationError
        )
        if not retryable or attempt > self.max_retries:
            return None
        return retry_delay_seconds(self.retry_delay, attempt)


def jitter_fraction(seed: str) -> float:
    """A number in [0, 1) that depends on ``seed`` only (run id, operation, attempt)."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


__all__ = ["Jitter", "RetryPolicy", "jitter_fraction"]

"""``RetryPolicy`` as a value: validation, delays, jitter, which errors it retries, presets."""

from datetime import timedelta

import pytest

from pyworkflow import (
    FatalError,
    Jitter,
    RetryableError,
    RetryPolicy,
    SerializationError,
    StepInterruptedError,
)
from pyworkflow.core.retry_policy import jitter_fraction


def test_the_default_policy_is_pyworkflows_documented_default() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 4
    assert [policy.base_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert policy.max_delay == 300.0
    assert policy.jitter == Jitter.NONE


def test_the_aws_default_preset_has_the_sdks_values() -> None:
    """Conformance 1.13's DefaultRetryParameters: 6 attempts, 5 s, 60 s, x2, FULL."""
    policy = RetryPolicy.aws_default()
    assert (policy.max_attempts, policy.initial_delay, policy.max_delay) == (6, 5.0, 60.0)
    assert (policy.backoff_rate, policy.jitter) == (2.0, Jitter.FULL)


def test_none_allows_one_attempt() -> None:
    assert RetryPolicy.none().next_delay(ValueError("x"), 1, "seed") is None


def test_delays_grow_by_the_backoff_rate_up_to_the_max_delay() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay="2s", backoff_rate=3, max_delay=20)
    assert [policy.next_delay(OSError(), n, "s") for n in range(1, 5)] == [2.0, 6.0, 18.0, 20.0]


def test_durations_may_be_strings_or_timedeltas() -> None:
    policy = RetryPolicy(initial_delay=timedelta(minutes=1), max_delay="2h")
    assert (policy.initial_delay, policy.max_delay) == (60.0, 7200.0)


def test_attempts_stop_at_max_attempts() -> None:
    """Conformance 1.12: 4 attempts in all, so retries after attempts 1, 2 and 3 only."""
    policy = RetryPolicy(max_attempts=4, initial_delay=1)
    decided = [policy.next_delay(OSError(), n, "s") for n in range(1, 6)]
    assert decided == [1.0, 2.0, 4.0, None, None]


def test_full_jitter_stays_between_zero_and_the_delay_and_depends_on_the_seed_only() -> None:
    policy = RetryPolicy(max_attempts=100, initial_delay=10, backoff_rate=1, jitter="full")
    delays = [policy.next_delay(OSError(), 1, f"run/3/{n}") for n in range(200)]
    assert all(d is not None and 0.0 <= d <= 10.0 for d in delays)
    assert len(set(delays)) > 100  # spread, not one value
    assert delays == [policy.next_delay(OSError(), 1, f"run/3/{n}") for n in range(200)]


def test_half_jitter_stays_between_half_the_delay_and_the_delay() -> None:
    policy = RetryPolicy(max_attempts=100, initial_delay=10, backoff_rate=1, jitter=Jitter.HALF)
    delays = [policy.next_delay(OSError(), 1, str(n)) for n in range(200)]
    assert all(d is not None and 5.0 <= d <= 10.0 for d in delays)


def test_jitter_fraction_is_a_pure_function_of_its_seed() -> None:
    assert jitter_fraction("a/1/2") == jitter_fraction("a/1/2")
    assert jitter_fraction("a/1/2") != jitter_fraction("a/1/3")
    assert 0.0 <= jitter_fraction("x") < 1.0


def test_retry_on_types_retries_those_and_nothing_else() -> None:
    policy = RetryPolicy(retry_on=(ConnectionError, TimeoutError))
    assert policy.retries(ConnectionRefusedError())  # a subclass
    assert policy.retries(TimeoutError())
    assert not policy.retries(ValueError())


def test_retry_on_a_predicate_decides_by_the_error() -> None:
    policy = RetryPolicy(retry_on=lambda e: "throttl" in str(e))
    assert policy.retries(RuntimeError("Throttling: throttled"))
    assert not policy.retries(RuntimeError("bad request"))


def test_a_predicate_that_raises_retries_nothing() -> None:
    def broken(error: BaseException) -> bool:
        raise KeyError("oops")

    assert not RetryPolicy(retry_on=broken).retries(RuntimeError())


def test_never_retry_on_wins_over_retry_on_and_retryable_error() -> None:
    policy = RetryPolicy(retry_on=Exception, never_retry_on=(PermissionError, RetryableError))
    assert not policy.retries(PermissionError())
    assert not policy.retries(RetryableError("later"))
    assert policy.retries(OSError())


def test_fatal_and_serialization_errors_are_never_retried() -> None:
    policy = RetryPolicy(retry_on=Exception)
    assert not policy.retries(FatalError("no"))
    assert not policy.retries(SerializationError("no"))


def test_retryable_error_is_retried_whatever_retry_on_says() -> None:
    assert RetryPolicy(retry_on=KeyError).retries(RetryableError("later"))


def test_an_interrupted_attempt_is_retried_like_a_failure() -> None:
    assert RetryPolicy().retries(StepInterruptedError("died"))
    assert not RetryPolicy(retry_on=ConnectionError).retries(StepInterruptedError("died"))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_attempts": 0}, "at least 1"),
        ({"max_attempts": True}, "at least 1"),
        ({"backoff_rate": 0.5}, "between 1 and 100"),
        ({"backoff_rate": "2"}, "must be a number"),
        ({"jitter": "some"}, "jitter must be one of"),
        ({"initial_delay": -1}, "must not be negative"),
        ({"max_delay": "soon"}, "Invalid RetryPolicy max_delay"),
    ],
)
def test_bad_values_fail_when_the_policy_is_made(kwargs, words) -> None:
    with pytest.raises(ValueError, match=words):
        RetryPolicy(**kwargs)


def test_retry_on_must_be_exception_types_or_a_predicate() -> None:
    with pytest.raises(TypeError, match="exception types"):
        RetryPolicy(retry_on=(ValueError, "KeyError"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exception types"):
        RetryPolicy(never_retry_on=(int,))  # type: ignore[arg-type]


def test_a_policy_is_a_frozen_hashable_value() -> None:
    policy = RetryPolicy(retry_on=[ValueError])  # type: ignore[arg-type]
    assert policy == RetryPolicy(retry_on=(ValueError,))
    assert hash(policy) == hash(RetryPolicy(retry_on=ValueError))
    with pytest.raises(AttributeError):
        policy.max_attempts = 9  # type: ignore[misc]

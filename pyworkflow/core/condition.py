"""``wait_for_condition``: poll a state until a condition holds, durably.

Each check is a recorded step (named after the condition) whose result is the new state *and*
the decision taken on it: how long to wait before the next check, or none (the condition
holds). Between checks the run sleeps with the ``sleep`` primitive, so a long wait costs
nothing and survives restarts. A replay reads each check's recorded state and decision and
never calls the check, the condition or the wait strategy again: a strategy with jitter, or
a condition that reads the clock, replays identically.

The AWS SDKs' ``wait_for_condition(check, WaitForConditionConfig(wait_strategy,
initial_state))`` with ``create_wait_strategy(WaitStrategyConfig(should_continue_polling,
...))``; here ``WaitStrategy(until=...)`` says when to stop rather than when to go on, and
running out of attempts raises ``ConditionNotMetError`` (carrying the last state) rather than
returning that state as if the condition held.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pyworkflow.core import context as _ctx
from pyworkflow.core.duration import parse_duration
from pyworkflow.core.registry import StepDefinition, type_hints
from pyworkflow.core.retry_policy import Jitter, RetryPolicy, jitter_fraction
from pyworkflow.core.serde import from_jsonable, to_jsonable
from pyworkflow.exceptions import ConditionNotMetError

S = TypeVar("S")

#: A wait strategy as a function: ``(state, attempt) -> delay``, None when the condition holds.
WaitFunction = Callable[[Any, int], float | int | str | timedelta | None]


@dataclass(frozen=True)
class WaitStrategy:
    """When ``wait_for_condition`` stops and how long it waits between checks.

    ``until(state)`` is True once the condition holds. At most ``max_attempts`` checks are
    made. The wait after check ``n`` is ``initial_delay * backoff_rate ** (n-1)``, at most
    ``max_delay``, jittered. The defaults are the AWS SDKs' (60 checks, 5 s growing by 1.5 up
    to 5 min, full jitter)."""

    until: Callable[[Any], bool]
    max_attempts: int = 60
    initial_delay: float | str | timedelta = 5.0
    backoff_rate: float = 1.5
    max_delay: float | str | timedelta = 300.0
    jitter: Jitter = Jitter.FULL

    def __post_init__(self) -> None:
        if not callable(self.until):
            raise TypeError(
                f"WaitStrategy until must be a function of the state, got {self.until!r}"
            )
        # The arithmetic and its checks are RetryPolicy's: one definition of a backoff.
        object.__setattr__(self, "_backoff", self._as_backoff())

    def _as_backoff(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            initial_delay=self.initial_delay,
            backoff_rate=self.backoff_rate,
            max_delay=self.max_delay,
            jitter=self.jitter,
        )

    def next_delay(self, state: Any, attempt: int, seed: str) -> float | None:
        """Seconds to wait after check ``attempt`` found ``state``; None: the condition holds."""
        if self.until(state):
            return None
        backoff: RetryPolicy = self.__dict__["_backoff"]
        return round(backoff.delay(attempt, jitter_fraction(seed)), 3)


def _strategy(
    until: Callable[[Any], bool] | None,
    wait_strategy: WaitStrategy | WaitFunction | None,
    max_attempts: int | None,
) -> tuple[Callable[[Any, int, str], float | None], int | None]:
    """The decision function and the number of checks allowed (None: the function decides)."""
    if (until is None) == (wait_strategy is None):
        raise TypeError("wait_for_condition takes until= or wait_strategy= (one of them)")
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise ValueError(
            f"wait_for_condition max_attempts must be at least 1, got {max_attempts!r}"
        )
    if until is not None:
        wait_strategy = WaitStrategy(until=until)
    if isinstance(wait_strategy, WaitStrategy):
        limit = max_attempts if max_attempts is not None else wait_strategy.max_attempts
        return wait_strategy.next_delay, limit
    if not callable(wait_strategy):
        raise TypeError(
            "wait_for_condition wait_strategy takes a WaitStrategy or a function "
            f"(state, attempt) -> delay or None, got {wait_strategy!r}"
        )
    function = wait_strategy

    def decide(state: Any, attempt: int, seed: str) -> float | None:
        delay = function(state, attempt)
        if delay is None:
            return None
        return parse_duration(delay, name="wait_for_condition wait_strategy delay")

    return decide, max_attempts


async def wait_for_condition(
    check: Callable[[S], S | Awaitable[S]],
    *,
    until: Callable[[S], bool] | None = None,
    wait_strategy: WaitStrategy | WaitFunction | None = None,
    initial_state: S | None = None,
    max_attempts: int | None = None,
    retry: RetryPolicy | None = None,
    name: str | None = None,
) -> S:
    """Call ``check(state)`` (``async def`` or plain ``def``) to get the next state, starting
    from ``initial_state``, until the condition holds; return the state it held in.

    The condition: ``until(state)`` with the ``WaitStrategy`` defaults, or ``wait_strategy``:
    a ``WaitStrategy`` or a function ``(state, attempt) -> delay`` (seconds, "30s", a
    timedelta) returning None when the condition holds. ``max_attempts`` bounds the checks;
    past it, ``ConditionNotMetError`` (with ``.state``, the last one). A check that raises is
    retried by ``retry`` (default: not retried: its error is raised). ``name`` names the check
    steps and waits in the history (default: the check function's name).

    Each check is a step and each wait a ``sleep``, all recorded: a replay returns the same
    states and takes the same decisions without calling anything.
    """
    if not callable(check):
        raise TypeError(f"wait_for_condition check must be a function of the state, got {check!r}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"wait_for_condition retry takes a RetryPolicy, got {retry!r}")
    decide, limit = _strategy(until, wait_strategy, max_attempts)
    label = str(name or getattr(check, "__name__", None) or "condition")
    if _ctx.current() is not None:
        _ctx.refuse_in_step("wait_for_condition()")
    hint = type_hints(check).get("return")  # an async def's hint is what awaiting it gives
    state: Any = from_jsonable(to_jsonable(initial_state, what="initial_state"), hint)
    from pyworkflow.core.sleep import sleep
    from pyworkflow.core.step import execute_step

    attempt = 0
    while True:
        attempt += 1
        ctx = _ctx.current()
        seed = f"{ctx.run_id if ctx else ''}/{label}/{ctx.op_count if ctx else 0}/{attempt}"
        defn = StepDefinition(
            name=label,
            func=_check_step(check, decide, attempt, seed),
            max_retries=None,
            retry_delay="exponential",
            timeout=None,
            metadata={"wait_for_condition": True},
            retry=retry or RetryPolicy.none(),
        )
        outcome = await execute_step(defn, (state,), {})
        state = from_jsonable(outcome["state"], hint)
        delay = outcome["wait"]
        if delay is None:
            return state  # type: ignore[no-any-return]
        if limit is not None and attempt >= limit:
            raise ConditionNotMetError(
                f"wait_for_condition {label!r}: the condition did not hold after {attempt} "
                "check(s)",
                state=outcome["state"],
                attempts=attempt,
            )
        await sleep(delay, name=f"{label}: wait after check {attempt}")


def _check_step(
    check: Callable[[Any], Any],
    decide: Callable[[Any, int, str], float | None],
    attempt: int,
    seed: str,
) -> Callable[[Any], Any]:
    """The body of check step ``attempt``: the check, then the decision on what it found,
    recorded together. Sync or async like ``check``, so a blocking check runs in a thread."""

    def outcome(state: Any) -> dict[str, Any]:
        return {
            "state": to_jsonable(state, what="The state wait_for_condition's check returned"),
            "wait": decide(state, attempt, seed),
        }

    if inspect.iscoroutinefunction(check):

        async def run_async(state: Any) -> dict[str, Any]:
            return outcome(await check(state))

        return run_async

    def run(state: Any) -> dict[str, Any]:
        found = check(state)
        if inspect.isawaitable(found):
            raise TypeError(
                "wait_for_condition's check returned an awaitable from a plain def: make it "
                "'async def'"
            )
        return outcome(found)

    return run


__all__ = ["WaitStrategy", "wait_for_condition"]

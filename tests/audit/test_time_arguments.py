"""Time arguments (audit behaviour 8): bad values are errors naming the argument, at the call;
naive datetimes are local time.

* ``@step(retry_delay=nan | inf)`` is accepted (``validate_retry_delay`` checks lists only); at
  the step's first failure the run fails with "cannot convert float NaN to integer" /
  OverflowError from ``timedelta`` instead of the step's error (``pyworkflow/core/retry.py``).
* ``RetryableError(retry_after=<naive datetime>)``: ``retry_after_seconds`` subtracts it from an
  aware "now": TypeError "can't subtract offset-naive and offset-aware datetimes" fails the run.
* a huge int duration (``sleep(10**400)``, ``@step(timeout=10**400)``): ``float(value)`` raises
  OverflowError "int too large to convert to float", naming no argument
  (``pyworkflow/core/duration.py`` ``parse_duration``).
"""

from datetime import datetime, timedelta

import pytest

from pyworkflow import RetryableError, get_workflow_run, sleep, start, step, workflow


@pytest.mark.parametrize("delay", [float("nan"), float("inf")])
def test_a_non_finite_retry_delay_is_refused_at_the_decorator_naming_it(delay):
    # Now: accepted.
    with pytest.raises(ValueError, match="retry_delay"):
        step(retry_delay=delay)


@step(max_retries=2)
async def ta_busy() -> str:
    raise RetryableError(
        "busy, try again in 30 s", retry_after=datetime.now() + timedelta(seconds=30)
    )  # naive: local


@workflow
async def ta_flow() -> str:
    return await ta_busy()


async def test_a_naive_retry_after_datetime_is_local_time(storage):
    # Now: the run fails with TypeError (naive minus aware).
    run_id = await start(ta_flow)
    run = await get_workflow_run(run_id)
    assert run.status.value == "suspended"  # waiting for the retry, about 30 s away
    assert timedelta(seconds=20) < run.wake_at - run.updated_at <= timedelta(seconds=30)


async def test_a_huge_int_duration_is_a_value_error_naming_the_argument():
    # Now: OverflowError "int too large to convert to float".
    with pytest.raises(ValueError, match="sleep\\(\\) duration"):
        await sleep(10**400)
    with pytest.raises(ValueError, match="@step timeout"):
        step(timeout=10**400)

"""``configure(...)`` after the first run takes effect or raises saying why, and "bad values are
refused before anything changes" (audit behaviour 12; ``pyworkflow/config.py`` ``_check``).

* ``retry_inline_max_seconds`` is not checked at all: ``configure(retry_inline_max_seconds="5")``
  is accepted, and the next step that fails makes its run fail with
  "TypeError: '<=' not supported between instances of 'float' and 'str'".
* ``lease_seconds=float('inf')`` (or 1e15) passes ``_check`` (it only refuses non-positive), is
  stored in the config, and only then does ``reconfigure_runtimes`` raise OverflowError (not a
  ConfigurationError): the refused value stays configured and every later runtime breaks.
"""

import pytest

import pyworkflow
from pyworkflow import ConfigurationError, RunStatus, get_workflow_run, start, step, workflow

N = {"calls": 0}


@step(max_retries=2, retry_delay=1)
async def cb_flaky() -> str:
    N["calls"] += 1
    if N["calls"] == 1:
        raise ValueError("first attempt fails")
    return "ok"


@workflow
async def cb_flow() -> str:
    return await cb_flaky()


async def test_a_bad_retry_inline_max_seconds_is_refused(storage):
    N["calls"] = 0
    await start(cb_flow)  # the first run
    # Now: accepted; the next run then fails with TypeError.
    with pytest.raises(ConfigurationError, match="retry_inline_max_seconds"):
        pyworkflow.configure(retry_inline_max_seconds="5")
    N["calls"] = 0
    run_id = await start(cb_flow)
    assert (await get_workflow_run(run_id)).status == RunStatus.SUSPENDED  # waiting to retry


async def test_an_infinite_lease_is_refused_before_anything_changes(storage):
    await start(cb_flow)
    # Now: OverflowError, raised after config.lease_seconds was set to inf.
    with pytest.raises(ConfigurationError, match="lease_seconds"):
        pyworkflow.configure(lease_seconds=float("inf"))
    assert pyworkflow.get_config().lease_seconds == 60.0

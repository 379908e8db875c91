"""One bad run never takes a worker down (audit behaviour 2): a value the store cannot hold must
fail its step/run ONCE with a clear error (SerializationError naming it). These values pass the
serde checks (``pyworkflow/core/serde.py`` ``to_jsonable`` has no depth or digit limit) but the
store cannot hold or cannot read them back:

* nesting deeper than pydantic-core's JSON parser accepts (~200 levels): SQLite writes the event,
  then every read of the history fails (``SQLiteStorageBackend.get_events`` ->
  ``_EVENT_LIST.validate_json``: "recursion limit exceeded"): the run can never be driven again,
  ``get_workflow_events`` raises;
* an int over 4300 digits: written by pydantic, unreadable by it ("number out of range"), and
  ``json.dumps`` refuses it (workflow result, arguments);
* nesting over pydantic's serializer depth (~255): the append raises, ``_io`` makes it a
  SerializationError *after* the step's ``step.completed`` was taken from the pending batch, so
  the ending write has a sequence gap -> ConcurrencyError -> the drive restarts and RUNS THE STEP
  AGAIN, 50 times per drive (``Executor.drive``: MAX_RESTARTS), on every worker pass;
* nesting past Python's recursion limit: ``RecursionError`` from ``_convert`` is an ordinary
  retryable failure, so the step runs 1 + max_retries times;
* a workflow result / failure that cannot be encoded (json.dumps ValueError for a huge int, an
  exception whose ``__str__`` raises): ``Executor.execute`` only catches SerializationError
  around ``dumps``, and ``_finish`` calls ``str(error)`` unguarded: the drive raises, the run
  stays 'running' forever;
* a hook payload nested ~240 deep (``resume_hook`` accepts it; the hook record is then unreadable:
  ``resume_hook`` raises pydantic's ValidationError, the run is stuck, the hook unusable).
"""

from __future__ import annotations

from collections import Counter

import pytest

from pyworkflow import (
    RunStatus,
    get_workflow_events,
    get_workflow_run,
    hook,
    sleep,
    start,
    step,
    workflow,
)
from pyworkflow.api import resume_hook_by_name
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.exceptions import SerializationError
from pyworkflow.runtime.local import get_runtime
from pyworkflow.runtime.worker import run_once

CALLS: Counter[str] = Counter()


@pytest.fixture
def sqlite_clock(tmp_path):
    """SQLite, the embedded default (the memory backend holds Python objects and is not the
    subject of the store-limit tests), with a manual clock."""
    from pyworkflow import configure
    from pyworkflow.core.clock import ManualClock
    from pyworkflow.storage import SQLiteStorageBackend

    clock = ManualClock()
    configure(storage=SQLiteStorageBackend(tmp_path / "runs.db"), clock=clock)
    return clock


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@step(max_retries=2, retry_delay=0)
async def uv_value(kind: str, depth: int = 0) -> object:
    CALLS[kind] += 1
    if kind == "huge_int":
        return 10**5000
    return nested(depth)


@workflow
async def uv_step_then_sleep(kind: str, depth: int = 0) -> str:
    await uv_value(kind, depth)
    await sleep(1)
    return "done"


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")


@workflow
async def uv_bad_ending(kind: str) -> object:
    if kind == "huge_int":
        return 10**5000
    raise Unprintable()


@workflow
async def uv_good(x: int) -> int:
    return x + 1


async def _created(workflow_fn, *args) -> str:
    run, _ = await get_runtime().executor.create(get_workflow_by_func(workflow_fn), args, {})
    return run.run_id


async def _two_passes(clock) -> list[str]:
    errors = (await run_once(get_runtime())).errors
    clock.advance(120)  # past any sleep and any lease a failed drive left behind
    return errors + (await run_once(get_runtime())).errors


async def _fails_once_naming(run_id: str, step_name: str) -> None:
    run = await get_workflow_run(run_id)
    events = await get_workflow_events(run_id)  # the history stays readable
    assert run.status == RunStatus.FAILED, f"run is {run.status.value}"
    assert "SerializationError" in (run.error or "") + (run.error_type or "")
    failed = [e for e in events if e.type == "step.failed"]
    assert len(failed) == 1 and step_name in failed[0].data["error"]


@pytest.mark.parametrize("depth", [200, 230])
async def test_a_step_result_nested_too_deep_to_read_back_fails_that_step_once(sqlite_clock, depth):
    CALLS.clear()
    run_id = await _created(uv_step_then_sleep, "deep", depth)
    good = await _created(uv_good, 1)
    errors = await _two_passes(sqlite_clock)
    assert (await get_workflow_run(good)).get_result() == 2
    # Now on SQLite: get_workflow_events raises ValidationError "recursion limit exceeded"; the
    # run stays 'running' and every pass logs a drive error.
    await _fails_once_naming(run_id, "uv_value")
    assert errors == []


async def test_a_step_result_holding_a_huge_int_fails_that_step_once(sqlite_clock):
    CALLS.clear()
    run_id = await _created(uv_step_then_sleep, "huge_int")
    await _two_passes(sqlite_clock)
    # Now: the history is unreadable ("number out of range"), the run never ends.
    await _fails_once_naming(run_id, "uv_value")
    assert CALLS["huge_int"] == 1


async def test_a_step_result_too_deep_for_the_store_is_not_run_again_and_again(sqlite_clock):
    CALLS.clear()
    run_id = await _created(uv_step_then_sleep, "deeper", 300)
    await run_once(get_runtime())
    # Now on SQLite: CALLS['deeper'] == 50 after ONE pass ("gave up after 50 conflicting
    # writes"), and 50 more on every later pass.
    assert CALLS["deeper"] == 1, f"the step ran {CALLS['deeper']} times in one pass"
    await _fails_once_naming(run_id, "uv_value")


async def test_a_step_result_nested_past_the_recursion_limit_fails_once_naming_the_step(storage):
    CALLS.clear()
    run_id = await _created(uv_step_then_sleep, "recursion", 5000)
    await run_once(get_runtime())
    # Now: RecursionError, retried as any failure (3 calls), message not naming the step.
    assert CALLS["recursion"] == 1, f"the step ran {CALLS['recursion']} times"
    await _fails_once_naming(run_id, "uv_value")


@pytest.mark.parametrize("kind", ["huge_int", "unprintable_error"])
async def test_a_workflow_ending_the_store_cannot_hold_fails_the_run_once(clock, kind):
    run_id = await _created(uv_bad_ending, kind)
    good = await _created(uv_good, 1)
    errors = await _two_passes(clock)
    assert (await get_workflow_run(good)).get_result() == 2
    run = await get_workflow_run(run_id)
    # Now: 'running' forever; every pass logs "ValueError: Exceeds the limit (4300 digits)" or
    # "RuntimeError: __str__ failed".
    assert run.status == RunStatus.FAILED, f"run is {run.status.value}; pass errors: {errors}"


@workflow
async def uv_waits() -> object:
    return await hook("note")


async def test_a_hook_payload_too_deep_for_the_store_is_refused_and_the_hook_stays_usable(
    sqlite_clock,
):
    run_id = await start(uv_waits)
    # Now on SQLite: pydantic ValidationError (not SerializationError) after the payload was
    # stored; the run is left 'running' and every later resume_hook raises the same error.
    with pytest.raises(SerializationError):
        await resume_hook_by_name(run_id, "note", {"tree": nested(240)})
    await resume_hook_by_name(run_id, "note", {"tree": "flat"})
    assert (await get_workflow_run(run_id)).get_result() == {"tree": "flat"}

"""The AWS worker's metrics (DriveStats): runs started, events replayed, step endings recorded.

Driven on embedded storage: what is counted comes from the executor alone, not from AWS.
"""

from pyworkflow import RunStatus, sleep, step, workflow
from pyworkflow.core.registry import get_workflow
from pyworkflow.runtime.aws import AwsExecutor, DriveStats
from pyworkflow.runtime.local import LocalRuntime

_attempts: dict[str, int] = {}


@step
async def stats_add(x: int) -> int:
    return x + 1


@step(max_retries=2, retry_delay=0)
async def stats_flaky(x: int) -> int:
    _attempts[str(x)] = _attempts.get(str(x), 0) + 1
    if _attempts[str(x)] == 1:
        raise RuntimeError("first attempt fails")
    return x * 2


@workflow
async def stats_flow(x: int) -> int:
    a = await stats_add(x)
    b = await stats_flaky(a)
    await sleep("1h")
    return await stats_add(b)


async def test_drive_stats_count_what_each_execution_did(storage, clock):
    _attempts.clear()
    runtime = LocalRuntime(storage, clock)
    executor = AwsExecutor(storage, clock, runtime)
    runtime.executor = executor
    defn = get_workflow("stats_flow")
    assert defn is not None

    run, history = await executor.create(defn, (1,), {}, lease=True)
    run = await executor.execute(run, history)
    assert run.status == RunStatus.SUSPENDED
    # A new run (its history is the start event alone); two steps, one retried once:
    # stats_add completed, stats_flaky retrying then completed.
    assert executor.stats == DriveStats(runs_started=1, events_replayed=1, steps_executed=3)

    recorded = await storage.get_events(run.run_id)
    executor.stats = DriveStats()
    clock.advance(3600)
    run = await executor.drive(run.run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == 5
    # The second execution replays what the first recorded and runs the last step only.
    assert executor.stats == DriveStats(
        runs_started=0, events_replayed=len(recorded), steps_executed=1
    )

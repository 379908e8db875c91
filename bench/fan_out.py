"""Fan-out cost against item count: first execution, replay, and replay per item.

For N items, ``pyworkflow.map`` over a trivial step and then a durable sleep: the first
execution runs N steps (N events, plus the fan-out's one ``parallel.started`` riding with the
first write); resuming after the sleep replays all N from history. Replay time per item must
stay flat as N grows (no quadratic replay); events per item must be 1.

    python bench/fan_out.py [--sizes 100,1000,5000,20000] [--storage memory|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyworkflow  # noqa: E402
from pyworkflow import get_workflow_events, resume, sleep, start, step, workflow  # noqa: E402
from pyworkflow.core.clock import ManualClock  # noqa: E402
from pyworkflow.runtime.replay import replay_history  # noqa: E402
from pyworkflow.storage import InMemoryStorageBackend, SQLiteStorageBackend  # noqa: E402


@step
async def inc(x: int) -> int:
    return x + 1


@workflow
async def fan(n: int, limit: int | None) -> int:
    res = await pyworkflow.map(inc, range(n), max_concurrency=limit)
    await sleep("1m")
    return sum(v for v in res.results if v is not None)


async def measure(n: int, storage_kind: str, limit: int | None, tmp: Path) -> dict[str, float]:
    clock = ManualClock()
    store = (
        InMemoryStorageBackend()
        if storage_kind == "memory"
        else SQLiteStorageBackend(tmp / f"fan-{n}.db")
    )
    pyworkflow.configure(storage=store, clock=clock)
    t0 = time.perf_counter()
    run_id = await start(fan, n, limit)
    first = time.perf_counter() - t0
    clock.advance(60)
    t0 = time.perf_counter()
    result = await resume(run_id)
    resumed = time.perf_counter() - t0
    assert result == sum(range(1, n + 1)), result
    events = await get_workflow_events(run_id)
    t0 = time.perf_counter()
    report = await replay_history(events)
    pure = time.perf_counter() - t0
    assert report.ok, report
    return {
        "first": first,
        "resume": resumed,
        "replay": pure,
        # minus workflow.started, parallel.started, sleep x2, workflow.completed
        "events_per_item": (len(events) - 5) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000,20000")
    parser.add_argument("--storage", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--max-concurrency", type=int, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"storage={args.storage} max_concurrency={args.max_concurrency}")
    print(
        f"{'items':>7} {'first s':>9} {'resume s':>9} {'replay s':>9} "
        f"{'replay us/item':>15} {'events/item':>12}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            m = asyncio.run(measure(n, args.storage, args.max_concurrency, Path(tmp)))
            print(
                f"{n:>7} {m['first']:>9.3f} {m['resume']:>9.3f} {m['replay']:>9.3f} "
                f"{m['replay'] / n * 1e6:>15.1f} {m['events_per_item']:>12.2f}"
            )


if __name__ == "__main__":
    main()

"""Embedded runtime throughput: N runs of a 10-step workflow on memory and on SQLite.

Prints steps/s and storage round trips (writes and reads) per step and per run, plus the cost of
resuming a suspended run as its history grows (reads per resume must not grow with history).

    python bench/local.py [--runs 300] [--steps 10] [--storage postgres] [--storage mysql]

``--storage`` adds a throwaway PostgreSQL/MariaDB server on loopback next to SQLite, with the SQL
statements per step (every round trip, BEGIN/COMMIT included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyworkflow  # noqa: E402
from pyworkflow import resume, sleep, start, step, workflow  # noqa: E402
from pyworkflow.core.clock import ManualClock  # noqa: E402
from pyworkflow.storage import InMemoryStorageBackend, SQLiteStorageBackend  # noqa: E402


@step
async def add_one(x: int) -> int:
    return x + 1


@workflow
async def ten_steps(steps: int) -> int:
    x = 0
    for _ in range(steps):
        x = await add_one(x)
    return x


@workflow
async def steps_then_sleep(steps: int) -> int:
    x = 0
    for _ in range(steps):
        x = await add_one(x)
    await sleep("1h")
    return x


async def throughput(storage, runs: int, steps: int) -> dict[str, float]:
    pyworkflow.reset_config()
    pyworkflow.configure(storage=storage)
    await start(ten_steps, steps)  # warm-up: connection, schema, imports
    w0, r0 = storage.writes, storage.reads
    s0 = getattr(storage, "statements", None)
    t0 = time.perf_counter()
    for _ in range(runs):
        await start(ten_steps, steps)
    elapsed = time.perf_counter() - t0
    writes, reads = storage.writes - w0, storage.reads - r0
    statements = storage.statements - s0 if s0 is not None else float("nan")
    await storage.close()
    return {
        "statements_per_step": statements / (runs * steps),
        "steps_per_s": runs * steps / elapsed,
        "runs_per_s": runs / elapsed,
        "writes_per_step": writes / (runs * steps),
        "writes_per_run": writes / runs,
        "reads_per_run": reads / runs,
    }


async def resume_cost(storage, history_steps: list[int]) -> list[tuple[int, int, int, float]]:
    """(steps in history, reads, writes, ms) to resume a run after its sleep."""
    pyworkflow.reset_config()
    clock = ManualClock()
    pyworkflow.configure(storage=storage, clock=clock)
    out = []
    for n in history_steps:
        run_id = await start(steps_then_sleep, n)
        clock.advance(3600)
        w0, r0 = storage.writes, storage.reads
        t0 = time.perf_counter()
        await resume(run_id)
        ms = (time.perf_counter() - t0) * 1000
        out.append((n, storage.reads - r0, storage.writes - w0, ms))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--storage",
        choices=["postgres", "mysql"],
        action="append",
        default=[],
        help="also on a throwaway PostgreSQL/MariaDB server on loopback (pyworkflow.dev."
        "sql_servers); statements per step counts every SQL round trip, BEGIN/COMMIT included",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        backends = {
            "memory": InMemoryStorageBackend,
            "sqlite": lambda: SQLiteStorageBackend(Path(tmp) / f"bench-{time.time_ns()}.db"),
        }
        for kind in args.storage:
            from pyworkflow.dev.sql_servers import STARTERS
            from pyworkflow.storage.sql.urls import backend_from_url

            url = servers.enter_context(STARTERS[kind]()).url
            if kind == "postgres":
                backends[kind] = lambda u=url: backend_from_url(f"{u}?schema=b{time.time_ns()}")
            else:
                backends[kind] = lambda u=url: backend_from_url(f"{u}_{time.time_ns()}")
        print(f"{args.runs} runs x {args.steps} steps, best of {args.repeat}")
        print(
            f"{'backend':8} {'steps/s':>9} {'runs/s':>8} {'writes/step':>12} "
            f"{'writes/run':>11} {'reads/run':>10} {'SQL/step':>9}"
        )
        for name, make in backends.items():
            results = [await throughput(make(), args.runs, args.steps) for _ in range(args.repeat)]
            best = max(results, key=lambda r: r["steps_per_s"])
            spread = statistics.pstdev(r["steps_per_s"] for r in results)
            print(
                f"{name:8} {best['steps_per_s']:9.0f} {best['runs_per_s']:8.0f} "
                f"{best['writes_per_step']:12.2f} {best['writes_per_run']:11.1f} "
                f"{best['reads_per_run']:10.1f} {best['statements_per_step']:9.2f}"
                f"   (±{spread:.0f} steps/s)"
            )
        print("\nresume after a sleep, by history length (sqlite):")
        print(f"{'steps':>6} {'reads':>6} {'writes':>7} {'ms':>8}")
        rows = await resume_cost(backends["sqlite"](), [10, 100, 1000])
        for n, reads, writes, ms in rows:
            print(f"{n:6} {reads:6} {writes:7} {ms:8.1f}")


if __name__ == "__main__":
    asyncio.run(main())

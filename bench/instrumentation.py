"""What instrumentation costs on the embedded runtime: steps/s of 10-step runs on the memory
backend with no plugin, with a plugin that does nothing, and with OpenTelemetry (an SDK provider
whose spans go nowhere: the span work without an exporter's). Configurations alternate round by
round, so a busy machine slows all of them alike; the best round of each is printed.

    python bench/instrumentation.py [--runs 300] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyworkflow  # noqa: E402
from pyworkflow import start, step, workflow  # noqa: E402
from pyworkflow.observability import Instrumentation  # noqa: E402
from pyworkflow.storage import InMemoryStorageBackend  # noqa: E402

STEPS = 10


@step
async def add_one(x: int) -> int:
    return x + 1


@workflow(name="bench_instrumented")
async def ten_steps() -> int:
    x = 0
    for _ in range(STEPS):
        x = await add_one(x)
    return x


def plugins(kind: str) -> list[Instrumentation]:
    if kind == "none":
        return []
    if kind == "no-op plugin":
        return [Instrumentation()]
    from opentelemetry.sdk.trace import TracerProvider

    from pyworkflow.observability.otel import OtelInstrumentation

    return [OtelInstrumentation(tracer_provider=TracerProvider())]


async def one_round(kind: str, runs: int) -> float:
    pyworkflow.reset_config()
    pyworkflow.configure(storage=InMemoryStorageBackend(), instrumentation=plugins(kind))
    started = time.perf_counter()
    for _ in range(runs):
        await start(ten_steps)
    return runs * STEPS / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    kinds = ["none", "no-op plugin", "otel (SDK, no exporter)"]
    best = dict.fromkeys(kinds, 0.0)
    await one_round("none", 20)  # warm-up
    for _ in range(args.rounds):
        for kind in kinds:
            best[kind] = max(best[kind], await one_round(kind, args.runs))
    print(f"{args.runs} runs x {STEPS} steps, memory backend, best of {args.rounds} rounds")
    print(f"{'instrumentation':26} {'steps/s':>9} {'us/step':>8} {'vs none':>8}")
    for kind in kinds:
        print(
            f"{kind:26} {best[kind]:9.0f} {1e6 / best[kind]:8.1f} "
            f"{best[kind] / best['none'] - 1:+8.1%}"
        )


if __name__ == "__main__":
    asyncio.run(main())

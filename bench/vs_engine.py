"""The embedded per-step CPU path against pyworkflow-engine 0.1.9, measured in the same run.

The same 10-step workflow (``add_one`` ten times) on in-memory storage, run ``--runs`` times to
completion, once with this repository's pyworkflow and once with pyworkflow-engine 0.1.9 (durable,
local runtime). Each side runs in its own subprocess, alternating, ``--repeat`` times: the engine
from its own venv (``.cache/engine-venv``, created on first use with ``pip install
pyworkflow-engine==0.1.9``) so it never shadows this package. Logging is off on both sides.
Time is the process's CPU time (the machine may be shared), the best of 3 rounds per
subprocess. Prints steps/s per side (min / median / max over the repeats) and the ratio of the
medians.

    python bench/vs_engine.py [--runs 300] [--steps 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINE_VERSION = "0.1.9"
ENGINE_VENV = REPO_ROOT / ".cache" / "engine-venv"
ROUNDS = 3  # rounds of --runs per subprocess; its best counts


def engine_python() -> Path:
    """The engine venv's interpreter, creating the venv if it is not there yet."""
    python = ENGINE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ENGINE_VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import pyworkflow; print(pyworkflow.__version__)"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    if probe.stdout.strip() != ENGINE_VERSION:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"pyworkflow-engine=={ENGINE_VERSION}"],
            check=True,
        )
    return python


# --- one side, in a subprocess --------------------------------------------------------------
async def _measure(side: str, runs: int, steps: int) -> float:
    import logging

    logging.disable(logging.CRITICAL)
    import pyworkflow
    from pyworkflow import start, step, workflow

    if side == "engine":
        from loguru import logger

        logger.remove()  # the engine logs every event through loguru
        from pyworkflow.storage.memory import InMemoryStorageBackend

        pyworkflow.configure(
            default_runtime="local", default_durable=True, storage=InMemoryStorageBackend()
        )
    else:
        from pyworkflow.storage import InMemoryStorageBackend as OurMemory

        pyworkflow.configure(storage=OurMemory())

    @step()
    async def add_one(x: int) -> int:
        return x + 1

    @workflow()
    async def ten_steps(n: int) -> int:
        x = 0
        for _ in range(n):
            x = await add_one(x)
        return x

    for _ in range(20):  # warm-up: imports, caches
        await start(ten_steps, steps)
    best = 0.0
    for _ in range(ROUNDS):
        t0 = time.process_time()
        for _ in range(runs):
            await start(ten_steps, steps)
        best = max(best, runs * steps / (time.process_time() - t0))
    return best


def _side_main(side: str, runs: int, steps: int) -> None:
    rate = asyncio.run(_measure(side, runs, steps))
    print(json.dumps({"side": side, "steps_per_s": rate}))


def run_side(side: str, runs: int, steps: int) -> float:
    if side == "engine":
        python, env = engine_python(), {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        cwd = "/"  # nothing of this checkout on the path
    else:
        python, env = Path(sys.executable), {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        cwd = str(REPO_ROOT)
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--side", side, "--runs", str(runs)]
        + ["--steps", str(steps)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["steps_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--side", choices=["ours", "engine"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        _side_main(args.side, args.runs, args.steps)
        return
    rates: dict[str, list[float]] = {"ours": [], "engine": []}
    for _ in range(args.repeat):
        for side in rates:  # alternating, so machine noise hits both sides alike
            rates[side].append(run_side(side, args.runs, args.steps))
    print(
        f"{args.runs} runs x {args.steps} steps, in-memory storage, {args.repeat} repeats "
        "(steps/s: min / median / max)"
    )
    for side, values in rates.items():
        label = "pyworkflow" if side == "ours" else f"pyworkflow-engine {ENGINE_VERSION}"
        print(f"{label:24} {min(values):8.0f} {statistics.median(values):8.0f} {max(values):8.0f}")
    ratio = statistics.median(rates["ours"]) / statistics.median(rates["engine"])
    print(f"ratio (median ours / median engine): {ratio:.2f}x")


if __name__ == "__main__":
    main()

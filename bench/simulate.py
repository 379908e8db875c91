"""Deterministic simulation testing: random workflow programs under random faults, from seeds.

    python bench/simulate.py --seeds 10000 [--start 0] [--config memory|sqlite|aws|all]
    python bench/simulate.py --seed 123 [--config ...]     # reproduce one seed, with its trace

Each seed generates 1-3 programs for the one interpreter workflow, runs them in the seed's
configuration (or each of ``--config all``) with the seed's faults, runs them again without
faults, and checks the invariants of ``tests/simulation/invariants.py`` plus equal results.
A failing seed is printed with the command that reproduces it; ``--seed`` prints the
step-by-step trace (which worker drove which run, crash points, deliveries, clock moves) and
the broken invariants. ``--features ci`` uses the CI feature set (known bugs avoided).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.simulation.program import ALL_FEATURES, CI_FEATURES, Features, generate  # noqa: E402
from tests.simulation.runner import CONFIGS, SeedReport, check_seed  # noqa: E402


def _features(name: str) -> Features:
    return CI_FEATURES if name == "ci" else ALL_FEATURES


def _configs(choice: str | None) -> list[str | None]:
    if choice == "all":
        return list(CONFIGS)
    return [choice]


def reproduce(seed: int, config: str | None, features: Features, *, programs: bool) -> int:
    failed = False
    for cfg in _configs(config):
        report = check_seed(seed, cfg, features)
        print(f"seed {seed}, config {report.config}, plan {report.faulty.plan}")
        if programs:
            print(json.dumps(generate(seed, features), indent=1))
        print(f"--- trace ({len(report.faulty.trace)} entries) ---")
        for entry in report.faulty.trace:
            print(entry)
        print("--- results ---")
        print(f"with faults:    {report.faulty.results}")
        print(f"without faults: {report.reference.results}")
        if report.ok:
            print("all invariants hold")
        else:
            failed = True
            print("--- broken invariants ---")
            for problem in report.problems:
                print(f"  {problem}")
    return 1 if failed else 0


def sweep(start: int, count: int, config: str | None, features: Features, flag: str) -> int:
    began = time.perf_counter()
    failing: list[SeedReport] = []
    totals = {"runs": 0, "steps": 0, "crashes": 0, "store errors": 0, "simulations": 0}
    for seed in range(start, start + count):
        for cfg in _configs(config):
            report = check_seed(seed, cfg, features)
            totals["simulations"] += 1
            totals["runs"] += report.faulty.runs
            totals["steps"] += report.faulty.steps
            totals["crashes"] += report.faulty.crashes
            totals["store errors"] += report.faulty.store_errors
            if not report.ok:
                failing.append(report)
                cfg_flag = f" --config {cfg}" if config else ""
                print(f"FAIL seed {seed} ({report.config}): {report.problems[0]}\n"
                      f"     python bench/simulate.py --seed {seed}{cfg_flag}{flag}",
                      flush=True)
        done = seed - start + 1
        if done % 500 == 0:
            rate = done / (time.perf_counter() - began)
            print(f"... {done} seeds, {rate:.1f} seeds/s, {len(failing)} failing", flush=True)
    elapsed = time.perf_counter() - began
    print(f"\n{count} seeds in {elapsed:.1f}s: {count / elapsed:.1f} seeds/s")
    print(", ".join(f"{v} {k}" for k, v in totals.items()) + " simulated (with faults)")
    print(f"{len(failing)} failing seed(s): {[r.seed for r in failing]}")
    return 1 if failing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, help="reproduce this seed, with its trace")
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--config", choices=[*CONFIGS, "all"],
                        help="the configuration (default: one per seed, drawn from it)")
    parser.add_argument("--features", choices=["all", "ci"], default="all",
                        help="instruction kinds: all, or CI's (avoiding known bugs)")
    parser.add_argument("--programs", action="store_true", help="print the programs too")
    args = parser.parse_args(argv)
    features = _features(args.features)
    flag = " --features ci" if args.features == "ci" else ""
    if args.seed is not None:
        return reproduce(args.seed, args.config, features, programs=args.programs)
    return sweep(args.start, args.seeds, args.config, features, flag)


if __name__ == "__main__":
    sys.exit(main())

"""Deterministic simulation testing: random workflow programs under random faults, from seeds.

    python bench/simulate.py --seeds 10000 [--start 0] [--config memory|sqlite|aws|all]
                             [--jobs N] [--classify]
    python bench/simulate.py --seed 123 [--config ...]     # reproduce one seed, with its trace
    python bench/simulate.py --storage postgres|mysql --seeds 200   # on a database server

Each seed generates 1-3 programs for the one interpreter workflow, runs them in the seed's
configuration (or each of ``--config all``) with the seed's faults, runs them again without
faults, and checks the invariants of ``tests/simulation/invariants.py`` plus equal results.
A failing seed is printed with the command that reproduces it; ``--seed`` prints the
step-by-step trace (which worker drove which run, crash points, deliveries, clock moves) and
the broken invariants. ``--features ci`` uses the CI feature set (known bugs avoided).
``--storage postgres|mysql`` (the same as ``--config``) runs every seed with embedded workers
over a throwaway PostgreSQL / MariaDB server started for the sweep (``pyworkflow.dev.sql_servers``;
the Debian packages ``postgresql`` / ``mariadb-server``), one schema / database per simulation.
``--classify`` names the bug behind each failing seed: the feature switches of
``CI_FEATURES`` whose removal alone makes the seed pass (a program with a switch off is the same
program minus that switch's instructions), or "unexplained" when it fails with all of them off.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.simulation.program import ALL_FEATURES, CI_FEATURES, Features, generate  # noqa: E402
from tests.simulation.runner import CONFIGS, check_seed  # noqa: E402
from tests.simulation.servers import SERVER_CONFIGS, kind_of  # noqa: E402
from tests.storage.sql_servers import server  # noqa: E402


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


# The bugs CI avoids, each with the switches of CI_FEATURES that avoid it.
BUGS: dict[str, frozenset[str]] = {
    "known bug 3 (no lease renewal during a long step)": frozenset({"slow_steps"}),
    "known bug 5 (gather: a sibling runs twice)": frozenset({"plain_gather_failing"}),
    "new bug A (inline child inherits the branch)": frozenset({"branch_children"}),
    "new bug B (early stop forgets a skipped branch's ops)": frozenset(
        {"early_stop", "early_stop_waits"}
    ),
    "new bug C (user code swallows ConcurrencyError)": frozenset({"catch_all"}),
    "new bug D (early stop cancels a branch mid-write)": frozenset({"early_stop"}),
    "new bug E (a retried steal takes a live run)": frozenset({"concurrent_passes"}),
    "new bug F (parent never told its child ended)": frozenset({"faults_after_ending"}),
}


def classify(seed: int, config: str, features: Features) -> str:
    """The bugs behind a failure of ``seed``: those whose switches, turned on over CI's
    features (and no other), make it fail; the smallest such sets win."""
    if not check_seed(seed, config, CI_FEATURES).ok:
        return "unexplained (fails with CI's features too)"
    failing = {
        bug: names
        for bug, names in BUGS.items()
        if all(getattr(features, n) for n in names)
        and not check_seed(
            seed, config, dataclasses.replace(CI_FEATURES, **dict.fromkeys(names, True))
        ).ok
    }
    minimal = [
        bug
        for bug, names in failing.items()
        if not any(other < names for other in failing.values())
    ]
    return "; ".join(minimal) or "several bugs together (no one bug's switches fail it)"


def _chunk(args: tuple[list[int], str | None, Features, bool]) -> list[dict[str, Any]]:
    seeds, config, features, explain = args
    out = []
    for seed in seeds:
        for cfg in _configs(config):
            report = check_seed(seed, cfg, features)
            f = report.faulty
            out.append(
                {
                    "seed": seed,
                    "config": report.config,
                    "problems": report.problems,
                    "stats": (f.runs, f.steps, f.crashes, f.store_errors),
                    "why": classify(seed, report.config, features)
                    if explain and not report.ok
                    else "",
                }
            )
    return out


def sweep(
    start: int,
    count: int,
    config: str | None,
    features: Features,
    flag: str,
    jobs: int,
    explain: bool,
) -> int:
    began = time.perf_counter()
    failing: list[int] = []
    reasons: dict[str, int] = {}
    totals = {"runs": 0, "steps": 0, "crashes": 0, "store errors": 0, "simulations": 0}
    size = 25
    chunks = [
        (list(range(s, min(s + size, start + count))), config, features, explain)
        for s in range(start, start + count, size)
    ]
    with multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else _Inline() as pool:
        for done, results in enumerate(pool.imap(_chunk, chunks), start=1):
            for r in results:
                totals["simulations"] += 1
                for key, n in zip(
                    ("runs", "steps", "crashes", "store errors"), r["stats"], strict=True
                ):
                    totals[key] += n
                if r["problems"]:
                    failing.append(r["seed"])
                    cfg_flag = f" --config {r['config']}" if config else ""
                    why = f"\n     cause: {r['why']}" if r["why"] else ""
                    reasons[r["why"]] = reasons.get(r["why"], 0) + 1
                    print(
                        f"FAIL seed {r['seed']} ({r['config']}): {r['problems'][0]}{why}\n"
                        f"     python bench/simulate.py --seed {r['seed']}{cfg_flag}{flag}",
                        flush=True,
                    )
            if done * size % 1000 == 0:
                rate = done * size / (time.perf_counter() - began)
                print(
                    f"... {done * size} seeds, {rate:.1f} seeds/s, {len(failing)} failing",
                    flush=True,
                )
    elapsed = time.perf_counter() - began
    print(f"\n{count} seeds in {elapsed:.1f}s: {count / elapsed:.1f} seeds/s ({jobs} jobs)")
    print(", ".join(f"{v} {k}" for k, v in totals.items()) + " simulated (with faults)")
    print(f"{len(failing)} failing seed(s): {failing}")
    if explain:
        for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"  {n:>5}  {why}")
    return 1 if failing else 0


class _Inline:
    """``Pool``'s ``imap`` in this process (``--jobs 1``)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap(self, fn: Any, items: list[Any]) -> Any:
        return (fn(item) for item in items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, help="reproduce this seed, with its trace")
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument(
        "--config",
        "--storage",
        dest="config",
        choices=[*CONFIGS, *SERVER_CONFIGS, "all"],
        help="the configuration (default: one per seed, drawn from it); postgres and mysql "
        "run embedded workers on a server started for the sweep",
    )
    parser.add_argument(
        "--features",
        choices=["all", "ci"],
        default="all",
        help="instruction kinds: all, or CI's (avoiding known bugs)",
    )
    parser.add_argument("--programs", action="store_true", help="print the programs too")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes the seeds are split among (default: one per CPU)",
    )
    parser.add_argument(
        "--classify",
        action="store_true",
        help="name the bug behind each failing seed (reruns it per switch)",
    )
    args = parser.parse_args(argv)
    features = _features(args.features)
    flag = " --features ci" if args.features == "ci" else ""
    if args.config in SERVER_CONFIGS:
        try:
            server(kind_of(args.config))  # started once, before the jobs fork: they share it
        except pytest.fail.Exception as exc:  # the server's binaries are missing
            print(exc, file=sys.stderr)
            return 1
    if args.seed is not None:
        return reproduce(args.seed, args.config, features, programs=args.programs)
    return sweep(args.start, args.seeds, args.config, features, flag, args.jobs, args.classify)


if __name__ == "__main__":
    sys.exit(main())

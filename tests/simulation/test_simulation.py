"""Deterministic simulation: 300+ seeds per CI run, fixed regression seeds, and determinism.

CI runs ``CI_FEATURES`` (tests/simulation/program.py), which switches off the instruction kinds
and environment moves that run into engine bugs not fixed yet: known bugs 3 and 5, and new bugs
A-F (reproduced one by one in ``test_new_bugs.py``, with G, which the environment avoids by
letting 1 ms pass at each crash). Turn each switch back on when its fix has landed;
``python bench/simulate.py --seeds 10000`` runs everything.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from tests.simulation.program import ALL_FEATURES, CI_FEATURES, Features
from tests.simulation.runner import CONFIGS, SeedReport, check_seed

# A crashed execution's fan-out branches never run: Python warns when it collects them.
pytestmark = pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")

BATCHES = 12
PER_BATCH = 25  # 300 seeds, each in the configuration drawn from it

# Seeds that once failed: (seed, config, switches, the bug). Each must pass with CI's features;
# a seed with switches must still fail with those switches on as well (xfail, strict): when its
# bug is fixed the xfail turns into a failure, and the switches can go back on in CI_FEATURES.
REGRESSION_SEEDS: list[tuple[int, str, frozenset[str], str]] = [
    (771, "sqlite", frozenset(),
     "simulator: after a stalled drive failed, no worker pass was offered again (same time, "
     "same due runs), so the run stayed running"),
    (665, "aws", frozenset(),
     "simulator: a hook's deliveries were timed from a record whose creation had failed, so a "
     "payload planned after the timeout reached the newer record before its own"),
    (667, "memory", frozenset(),
     "simulator (and new bug G): a crash and the steal that followed at the same instant made "
     "two records of one hook tie on created_at; a process restart now takes 1 ms"),
    (0, "memory", frozenset({"slow_steps"}),
     "known bug 3: no lease renewal during a long step; a second worker runs it again"),
    (54, "memory", frozenset({"plain_gather_failing"}),
     "known bug 5: gather's sibling step outlives the execution: a different result on replay"),
    (62, "sqlite", frozenset({"branch_children"}),
     "new bug A: a child driven inline from a fan-out branch inherits the branch"),
    (48, "memory", frozenset({"early_stop", "early_stop_waits"}),
     "new bug B: an early stop's end ignores ops a skipped branch recorded before"),
    (37, "sqlite", frozenset({"catch_all"}),
     "new bug C: a stalled worker swallows ConcurrencyError in user code and runs on"),
    (212, "memory", frozenset({"early_stop"}),
     "new bug D: an early stop cancels a branch mid-write; a step runs twice in one drive"),
    (352, "sqlite", frozenset({"concurrent_passes"}),
     "new bug E: a steal retried after a lost race takes the run from a live worker"),
    (238, "memory", frozenset({"faults_after_ending"}),
     "new bug F: a child's crash before waking its parent leaves the parent waiting"),
]


def _explain(report: SeedReport) -> str:
    return (f"seed {report.seed} ({report.config}): reproduce with "
            f"`python bench/simulate.py --seed {report.seed} --config {report.config} "
            f"--features ci`\n" + "\n".join(report.problems))


@pytest.mark.parametrize("batch", range(BATCHES))
def test_random_seeds(batch: int) -> None:
    failing = []
    for seed in range(batch * PER_BATCH, (batch + 1) * PER_BATCH):
        report = check_seed(seed, None, CI_FEATURES)
        if not report.ok:
            failing.append(_explain(report))
    assert not failing, "\n\n".join(failing)


def _name(case: tuple[int, str, frozenset[str], str]) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("case", REGRESSION_SEEDS, ids=_name)
def test_regression_seed(case: tuple[int, str, frozenset[str], str]) -> None:
    seed, config, _, bug = case
    report = check_seed(seed, config, CI_FEATURES)
    assert report.ok, f"{bug}\n{_explain(report)}"


@pytest.mark.parametrize("case", [c for c in REGRESSION_SEEDS if c[2]], ids=_name)
def test_regression_seed_still_finds_its_bug(case: tuple[int, str, frozenset[str], str]
                                             ) -> None:
    seed, config, switches, bug = case
    report = check_seed(seed, config, dataclasses.replace(CI_FEATURES,
                                                          **dict.fromkeys(switches, True)))
    if report.ok:
        pytest.fail(f"fixed? {bug}: seed {seed} passes with {sorted(switches)} on; turn them "
                    "back on in CI_FEATURES and drop this expectation")
    pytest.xfail(bug)


def _fingerprint(seeds: range, features: Features) -> str:
    digest = hashlib.sha256()
    for seed in seeds:
        report = check_seed(seed, None, features)
        digest.update("\n".join(map(str, report.faulty.trace)).encode())
        digest.update(repr((report.faulty.results, report.problems)).encode())
    return digest.hexdigest()


def test_a_seed_replays_exactly() -> None:
    """Same seed, same trace, same results: what makes `--seed N` a reproduction. (Across
    processes too: ids come from the seed, nothing iterates a set of strings.)"""
    seeds = range(1000, 1012)
    assert _fingerprint(seeds, ALL_FEATURES) == _fingerprint(seeds, ALL_FEATURES)


def test_the_simulation_exercises_the_engine() -> None:
    """Enough happens in a few seeds: crashes, store errors, runs and steps, in each config."""
    totals = {c: [0, 0, 0, 0] for c in CONFIGS}
    for seed in range(40):
        for config in CONFIGS:
            r = check_seed(seed, config, CI_FEATURES).faulty
            for i, n in enumerate((r.runs, r.steps, r.crashes, r.store_errors)):
                totals[config][i] += n
    for config, (runs, steps, crashes, store_errors) in totals.items():
        assert runs >= 60 and steps >= 300 and crashes >= 10 and store_errors >= 10, \
            (config, runs, steps, crashes, store_errors)

"""Deterministic simulation: 300+ seeds per CI run, fixed regression seeds, and determinism.

CI runs ``CI_FEATURES`` (tests/simulation/program.py): every instruction kind and environment
move. A switch there turns a feature off while an engine bug it runs into is being fixed (none
is off today; the bugs found so far are reduced to tests in
``tests/correctness/test_found_by_simulation.py``). ``python bench/simulate.py --seeds 10000``
runs the same on more seeds. The first ``SERVER_SEEDS`` seeds run on PostgreSQL and MariaDB
too, and ``CONCURRENT_SEEDS`` more with overlapping round trips; ``python bench/simulate.py
--storage postgres`` runs more there.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.simulation.program import ALL_FEATURES, CI_FEATURES, Features
from tests.simulation.runner import CONFIGS, SeedReport, check_seed
from tests.storage.sql_servers import SQL_SERVERS

# A crashed execution's fan-out branches never run: Python warns when it collects them.
pytestmark = pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")

BATCHES = 12
PER_BATCH = 25  # 300 seeds, each in the configuration drawn from it
# On each database server (PostgreSQL, MariaDB): the first seeds, embedded workers over the
# server (each worker its own pool, the seed's own schema / database), their round trips taking
# turns (``tests/simulation/servers.py``); then a few more with round trips overlapping.
SERVER_SEEDS = 12  # taking turns: reproducible
CONCURRENT_SEEDS = 6  # round trips overlapping

# Seeds that once failed: (seed, config, switches, the bug). Each must pass with CI's features.
# (switches: the feature switches of a bug not fixed yet, kept off in CI_FEATURES meanwhile.)
REGRESSION_SEEDS: list[tuple[int, str, frozenset[str], str]] = [
    (
        771,
        "sqlite",
        frozenset(),
        "simulator: after a stalled drive failed, no worker pass was offered again (same time, "
        "same due runs), so the run stayed running",
    ),
    (
        665,
        "aws",
        frozenset(),
        "simulator: a hook's deliveries were timed from a record whose creation had failed, so a "
        "payload planned after the timeout reached the newer record before its own",
    ),
    (
        0,
        "memory",
        frozenset(),
        "known bug 3: no lease renewal during a long step; a second worker runs it again",
    ),
    (
        54,
        "memory",
        frozenset(),
        "known bug 5: gather's sibling step outlives the execution; then a sibling's wait reached "
        "gather before another's failure (a waiting coroutine now parks until its siblings end)",
    ),
    (
        62,
        "sqlite",
        frozenset(),
        "new bug A: a child driven inline from a fan-out branch inherits the branch",
    ),
    (
        48,
        "memory",
        frozenset(),
        "new bug B: an early stop's end ignores ops a skipped branch recorded before",
    ),
    (
        37,
        "sqlite",
        frozenset(),
        "new bug C: a stalled worker swallows ConcurrencyError in user code and runs on",
    ),
    (
        212,
        "memory",
        frozenset(),
        "new bug D: an early stop cancels a branch mid-write; a step runs twice in one drive",
    ),
    (
        352,
        "sqlite",
        frozenset(),
        "new bug E: a steal retried after a lost race takes the run from a live worker",
    ),
    (
        238,
        "memory",
        frozenset(),
        "new bug F: a child's crash before it wakes its parent leaves the parent waiting",
    ),
    (
        667,
        "memory",
        frozenset(),
        "new bug G: a hook record stored again at the same instant ties on created_at",
    ),
    (
        180,
        "sqlite",
        frozenset(),
        "replayed gather outcomes came in start order, not the recorded order",
    ),
    (
        102,
        "memory",
        frozenset(),
        "a worker pass stole from the owner its read found, a live one that had just won",
    ),
    (
        73,
        "sqlite",
        frozenset(),
        "one failed heartbeat renewal let a live owner's lease lapse (renew at a third now)",
    ),
    (
        262,
        "memory",
        frozenset(),
        "a cancellation reached a gathered coroutine before a sibling's earlier failure",
    ),
    (
        713,
        "sqlite",
        frozenset(),
        "a gathered coroutine's recorded failure overtook a sibling's earlier one on replay",
    ),
    (
        1682,
        "sqlite",
        frozenset(),
        "a fan-out's early stop cut off the step of a child it was driving inline",
    ),
    (
        398,
        "memory",
        frozenset(),
        "a hook payload arriving while the execution settled was taken in stride by the "
        "heartbeat, and the run suspended waiting for it forever",
    ),
    (
        2330,
        "sqlite",
        frozenset(),
        "an early stop with every item finished was not recorded; a replay stopped differently",
    ),
]


def _explain(report: SeedReport) -> str:
    return (
        f"seed {report.seed} ({report.config}): reproduce with "
        f"`python bench/simulate.py --seed {report.seed} --config {report.config} "
        f"--features ci`\n" + "\n".join(report.problems)
    )


@pytest.mark.parametrize("batch", range(BATCHES))
def test_random_seeds(batch: int) -> None:
    failing = []
    for seed in range(batch * PER_BATCH, (batch + 1) * PER_BATCH):
        report = check_seed(seed, None, CI_FEATURES)
        if not report.ok:
            failing.append(_explain(report))
    assert not failing, "\n\n".join(failing)


def _server_seeds(config: str, seeds: range) -> None:
    failing = []
    runs = steps = faults = 0
    for seed in seeds:
        report = check_seed(seed, config, CI_FEATURES)
        if not report.ok:
            failing.append(_explain(report))
        runs, steps = runs + report.faulty.runs, steps + report.faulty.steps
        faults += report.faulty.crashes + report.faulty.store_errors
    assert not failing, "\n\n".join(failing)
    # a seed that stalled would have ended early with nothing done
    assert runs >= 2 * len(seeds) and steps >= 10 * len(seeds) and faults >= len(seeds)


@pytest.mark.parametrize("kind", SQL_SERVERS)
def test_seeds_on_a_database_server(kind: str) -> None:
    """The simulation settles on a server too (it waits for the store's round trips, not for
    a number of loop turns), and its seeds keep every invariant there."""
    _server_seeds(kind, range(SERVER_SEEDS))


@pytest.mark.parametrize("kind", SQL_SERVERS)
def test_seeds_with_overlapping_round_trips_on_a_database_server(kind: str) -> None:
    """Round trips of several drives under way at once, as real workers' are: the server's
    row locks, SKIP LOCKED and conflict aborts take part."""
    _server_seeds(f"{kind}-concurrent", range(SERVER_SEEDS, SERVER_SEEDS + CONCURRENT_SEEDS))


def _name(case: tuple[int, str, frozenset[str], str]) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("case", REGRESSION_SEEDS, ids=_name)
def test_regression_seed(case: tuple[int, str, frozenset[str], str]) -> None:
    seed, config, _, bug = case
    report = check_seed(seed, config, CI_FEATURES)
    assert report.ok, f"{bug}\n{_explain(report)}"


def _fingerprint(seeds: range, features: Features, config: str | None = None) -> str:
    digest = hashlib.sha256()
    for seed in seeds:
        report = check_seed(seed, config, features)
        digest.update("\n".join(map(str, report.faulty.trace)).encode())
        digest.update(repr((report.faulty.results, report.problems)).encode())
    return digest.hexdigest()


def test_a_seed_replays_exactly() -> None:
    """Same seed, same trace, same results: what makes `--seed N` a reproduction. (Across
    processes too: ids come from the seed, nothing iterates a set of strings.)"""
    seeds = range(1000, 1012)
    assert _fingerprint(seeds, ALL_FEATURES) == _fingerprint(seeds, ALL_FEATURES)


@pytest.mark.parametrize("kind", SQL_SERVERS)
def test_a_seed_replays_exactly_on_a_database_server(kind: str) -> None:
    """Round trips taking turns make a server's seed reproducible too: its reply can only
    resume its own drive, since nothing else runs meanwhile."""
    seeds = range(3)
    assert _fingerprint(seeds, CI_FEATURES, kind) == _fingerprint(seeds, CI_FEATURES, kind)


def test_the_simulation_exercises_the_engine() -> None:
    """Enough happens in a few seeds: crashes, store errors, runs and steps, in each config."""
    totals = {c: [0, 0, 0, 0] for c in CONFIGS}
    for seed in range(40):
        for config in CONFIGS:
            r = check_seed(seed, config, CI_FEATURES).faulty
            for i, n in enumerate((r.runs, r.steps, r.crashes, r.store_errors)):
                totals[config][i] += n
    for config, (runs, steps, crashes, store_errors) in totals.items():
        assert runs >= 60 and steps >= 300 and crashes >= 10 and store_errors >= 10, (
            config,
            runs,
            steps,
            crashes,
            store_errors,
        )

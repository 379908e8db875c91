"""One seed, end to end: generate its programs, simulate them with the seed's faults in the
seed's configuration, simulate them again without faults, check the invariants of both and
compare the top-level results.

The fault-free run is the reference: memory backend, one worker, one action at a time, no
crashes, store errors, duplicates, stalls or interleaving. Results may not depend on what the
environment did, because the environment is event-driven where timing could change an outcome:
a hook is resumed relative to its creation and always before its timeout; a run is cancelled
by the environment exactly when it reaches its ``cancel`` instruction (its next await receives
the cancellation), or while it provably waits on a hook nobody will resume. Fan-outs with
``min_successful``/``tolerated_failures`` report only their completion reason (which items
finished before the early stop is timing); fire-and-forget children's outcomes are not part of
their parent's result. Nothing else is left to timing, so the comparison is exact.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.storage.memory import InMemoryStorageBackend
from pyworkflow.storage.sql.server import ServerSQLStorageBackend
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.simulation import interpreter as _interpreter  # noqa: F401 - registers sim_program
from tests.simulation.aws_driver import LEASE_SECONDS as AWS_LEASE
from tests.simulation.aws_driver import AwsDriver
from tests.simulation.driver import Driver, EmbeddedDriver
from tests.simulation.invariants import Waiting, check, snapshot, top_results
from tests.simulation.program import ALL_FEATURES, Features, Program, generate
from tests.simulation.servers import (
    SERVER_CONFIGS,
    RoundTrips,
    drop_store,
    kind_of,
    make_server_store,
    store_url,
)
from tests.simulation.world import FaultPlan, TraceEntry, World, installed

CONFIGS = ("memory", "sqlite", "aws")  # the configurations a seed draws from
# SERVER_CONFIGS: embedded workers over a database server (tests/simulation/servers.py), each
# worker with its own pool as separate processes would have; chosen by name only
# (``--config postgres``), never drawn, so every seed keeps the configuration it always had.
# Branches an early stop never started are closed unawaited; Python says so at collection.
warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
EMBEDDED_LEASE = 60.0
NO_FAULTS = FaultPlan()
_STORES = itertools.count()


def config_of(seed: int) -> str:
    return random.Random(f"config:{seed}").choice(CONFIGS)


def plan_of(seed: int) -> FaultPlan:
    return FaultPlan.draw(random.Random(f"plan:{seed}"))


@dataclass(frozen=True)
class SimResult:
    seed: int
    config: str
    plan: FaultPlan
    results: dict[int, Any]
    problems: tuple[str, ...]
    runs: int
    steps: int
    crashes: int
    store_errors: int
    rounds: int
    trace: tuple[TraceEntry, ...]


@dataclass(frozen=True)
class SeedReport:
    seed: int
    config: str
    faulty: SimResult
    reference: SimResult
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


async def _simulate(
    seed: int, config: str, plan: FaultPlan, programs: list[Program], tmp: Path, features: Features
) -> SimResult:
    lease = AWS_LEASE if config == "aws" else EMBEDDED_LEASE
    w = World(seed, plan, lease_seconds=lease, faults_after_ending=features.faults_after_ending)
    stores: list[Any] = []

    def make_store() -> Any:
        if config == "memory":
            return shared
        store = SQLiteStorageBackend(tmp / "sim.db")
        stores.append(store)
        return store

    shared = InMemoryStorageBackend() if config == "memory" else None
    round_trips = None
    if config in SERVER_CONFIGS:
        url = store_url(kind_of(config), f"sim{seed}_{os.getpid()}_{next(_STORES)}")
        if not config.endswith("-concurrent"):
            round_trips = RoundTrips()
            round_trips.environment = asyncio.current_task()

        def make_store() -> Any:
            store = make_server_store(config, url, round_trips)
            stores.append(store)
            return store

    with installed(w):
        observer = make_store()
        driver: Driver
        if config == "aws":
            driver = AwsDriver(w, programs, observer, make_store)
        else:
            driver = EmbeddedDriver(
                w,
                programs,
                observer,
                make_store,
                config,
                concurrent_passes=features.concurrent_passes,
            )
        driver.stores = stores  # the list itself: workers made later add their stores
        driver.round_trips = round_trips
        try:
            await driver.run()
            snap = await snapshot(observer)
            problems = await check(snap, driver.hooks)
        finally:
            await driver.close()
        problems += w.violations + [f"engine error: {e}" for e in driver.errors]
        if driver.stuck:
            problems.append(f"stuck: {driver.stuck}")
        results = top_results(snap, driver.top, len(programs), Waiting(snap, driver.hooks))
    for store in stores:
        if store is not observer:
            await store.close()
    if isinstance(observer, ServerSQLStorageBackend):
        await drop_store(observer)
    await observer.close()
    return SimResult(
        seed=seed,
        config=config,
        plan=plan,
        results=results,
        problems=tuple(problems),
        runs=len(snap.runs),
        steps=w.steps_run,
        crashes=w.crashes,
        store_errors=w.store_errors,
        rounds=driver.rounds,
        trace=tuple(w.trace),
    )


def simulate(
    seed: int, config: str, plan: FaultPlan, features: Features = ALL_FEATURES
) -> SimResult:
    """Simulate ``seed``'s programs in ``config`` under ``plan``, in a fresh event loop."""
    programs = generate(seed, features)
    tmp = Path(tempfile.mkdtemp(prefix=f"sim{seed}-"))
    logger = logging.getLogger("pyworkflow")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)  # drives that fail on purpose would log tracebacks
    owners = set(LIVE_OWNERS)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_simulate(seed, config, plan, programs, tmp, features))
    finally:
        loop.close()
        logger.setLevel(level)
        LIVE_OWNERS.intersection_update(owners)  # this seed's workers are gone
        shutil.rmtree(tmp, ignore_errors=True)


def check_seed(
    seed: int, config: str | None = None, features: Features = ALL_FEATURES
) -> SeedReport:
    config = config or config_of(seed)
    faulty = simulate(seed, config, plan_of(seed), features)
    reference = simulate(seed, "memory", NO_FAULTS, features)
    problems = list(faulty.problems)
    problems += [f"fault-free run: {p}" for p in reference.problems]
    for index in sorted(reference.results):
        got, want = faulty.results.get(index), reference.results[index]
        if got != want:
            problems.append(f"p{index}: result {got!r} differs from the fault-free {want!r}")
    return SeedReport(seed, config, faulty, reference, tuple(problems))

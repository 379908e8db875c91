"""The simulated world of one seed: virtual clock, seeded ids, the fault plan, the workers'
storage and transport wrappers, and the logs the invariants read (trace, step executions).

Nothing here is random except through the world's ``random.Random`` streams, all derived from
the seed; nothing waits on wall time. ``CURRENT`` is the world of the seed being simulated (the
interpreter workflow and its steps report to it); one seed runs at a time per process.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pyworkflow.core import clock as clock_module
from pyworkflow.core.clock import ManualClock
from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.runtime.faults import FaultyDispatcher, FaultyStorage, InjectedCrash, StoreThrottled
from pyworkflow.storage.base import StorageBackend

START = datetime.fromisoformat("2030-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class FaultPlan:
    """What the environment may do to the engine in one seed."""

    workers: int = 1
    crash_rate: float = 0.0  # chance that a fault point crashes its process
    store_error_rate: float = 0.0  # chance that it raises a transient store error instead
    max_crashes: int = 0
    max_store_errors: int = 0
    duplicate_rate: float = 0.0  # chance that a wake-up / message is delivered twice
    stall_at: int | None = None  # the n-th step execution stalls past its run's lease
    yield_rate: float = 0.0  # chance of a scheduling point before a storage call
    concurrency: int = 1  # environment actions started together

    @property
    def faulty(self) -> bool:
        return bool(
            self.max_crashes
            or self.max_store_errors
            or self.duplicate_rate
            or self.stall_at is not None
        )

    @staticmethod
    def draw(rng: random.Random) -> FaultPlan:
        return FaultPlan(
            workers=rng.randint(1, 4),
            crash_rate=rng.choice([0.0, 0.01, 0.03]),
            store_error_rate=rng.choice([0.0, 0.01, 0.03]),
            max_crashes=rng.randint(0, 3),
            max_store_errors=rng.randint(0, 3),
            duplicate_rate=rng.choice([0.0, 0.1, 0.3]),
            stall_at=rng.randint(1, 12) if rng.random() < 0.25 else None,
            yield_rate=rng.choice([0.0, 0.2, 0.5]),
            concurrency=rng.randint(1, 3),
        )


@dataclass(frozen=True)
class TraceEntry:
    at: float  # virtual seconds since the start
    who: str  # a worker ("w2#1": worker 2, second incarnation), "env" or "client"
    what: str

    def __str__(self) -> str:
        return f"{self.at:>10.1f}s {self.who:<7} {self.what}"


@dataclass
class Drive:
    """One environment action on a worker (a worker pass, a wake-up, a delivery...)."""

    id: int
    worker: str
    action: str
    status: str = "running"  # running | ok | failed | crashed
    excused: bool = False  # a fault hit it (or it stalled past its lease): re-runs allowed
    ended_a_run: bool = False  # it wrote a run's ending event


@dataclass(frozen=True)
class StepExec:
    run_id: str
    key: str
    attempt: int
    drive: int
    worker: str


@dataclass
class Blocker:
    """A step execution held by the environment: ``stall`` (its process frozen, a GC pause) or
    ``slow`` (a long step on a healthy worker). Released when the clock reaches ``until``."""

    kind: str
    until: datetime
    future: asyncio.Future[None]
    drive: Drive | None


_ENDING = "workflow."  # in a fault point's label: an append of a run's ending event
CURRENT_DRIVE: contextvars.ContextVar[Drive | None] = contextvars.ContextVar(
    "sim_drive", default=None
)


class SeededSecrets:
    """Stands in for the ``secrets`` module of ``pyworkflow.core.clock``: ids and tokens drawn
    from the seed, so listings ordered by run id are the same in every reproduction."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def token_hex(self, nbytes: int) -> str:
        return self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def token_urlsafe(self, nbytes: int) -> str:
        import base64

        raw = self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class World:
    def __init__(
        self,
        seed: int,
        plan: FaultPlan,
        *,
        lease_seconds: float,
        faults_after_ending: bool = True,
        trace_limit: int = 200_000,
    ) -> None:
        self.seed = seed
        self.plan = plan
        self.faults_after_ending = faults_after_ending
        self.clock = ManualClock(START)
        self.lease = timedelta(seconds=lease_seconds)
        self.env_rng = random.Random(f"env:{seed}:{plan.faulty}")
        self.fault_rng = random.Random(f"faults:{seed}")
        self.id_rng = random.Random(f"ids:{seed}:{plan.faulty}")
        self.trace: list[TraceEntry] = []
        self.trace_limit = trace_limit
        self.drives: list[Drive] = []
        self.execs: list[StepExec] = []
        self.violations: list[str] = []
        self.blockers: list[Blocker] = []
        self.tokens: dict[str, str] = {}  # token hash -> token (on_created saw it)
        self.cancels_sent: set[str] = set()  # "run/instruction" self-cancels done
        self.dead: set[str] = set()  # workers whose process crashed
        self.points = 0
        self.crashes = 0
        self.store_errors = 0
        self.steps_run = 0
        self.canceller: Any = None  # set by the driver: cancel(run_id) coroutine

    # --- trace ---------------------------------------------------------------------------------
    def log(self, who: str, what: str) -> None:
        if len(self.trace) < self.trace_limit:
            at = (self.clock.now() - START).total_seconds()
            self.trace.append(TraceEntry(at, who, what))

    def advance_to(self, when: datetime, why: str) -> None:
        if when > self.clock.now():
            self.log("env", f"clock +{(when - self.clock.now()).total_seconds():g}s ({why})")
            self.clock.advance((when - self.clock.now()).total_seconds())

    # --- drives --------------------------------------------------------------------------------
    def begin_drive(self, worker: str, action: str) -> Drive:
        drive = Drive(len(self.drives) + 1, worker, action)
        self.drives.append(drive)
        CURRENT_DRIVE.set(drive)
        self.log(worker, f"{action} (drive {drive.id})")
        return drive

    def end_drive(self, drive: Drive, status: str, detail: str = "") -> None:
        drive.status = status
        if status != "ok":
            drive.excused = True
        self.log(drive.worker, f"drive {drive.id} {status}{': ' + detail if detail else ''}")

    # --- faults --------------------------------------------------------------------------------
    def fault_point(self, worker: str, label: str) -> None:
        """Called at every fault point of ``worker``'s writes and sends."""
        if worker in self.dead:
            raise InjectedCrash(0, f"{label} (process already dead)")
        self.points += 1
        plan = self.plan
        if not plan.faulty:
            return
        roll = self.fault_rng.random()
        drive = CURRENT_DRIVE.get()
        if drive is not None and label.startswith("after ") and _ENDING in label:
            drive.ended_a_run = True
        if drive is not None and drive.ended_a_run and not self.faults_after_ending:
            return
        if self.crashes < plan.max_crashes and roll < plan.crash_rate:
            self.crashes += 1
            self.kill(worker, f"crash at point {self.points}: {label}")
            raise InjectedCrash(self.points, label)
        if (
            self.store_errors < plan.max_store_errors
            and plan.crash_rate <= roll < plan.crash_rate + plan.store_error_rate
        ):
            self.store_errors += 1
            if drive is not None:
                drive.excused = True
            self.log(worker, f"store error at point {self.points}: {label}")
            raise StoreThrottled(self.points, label)

    def kill(self, worker: str, why: str) -> None:
        self.dead.add(worker)
        self.log(worker, f"CRASH {why}")
        for drive in self.drives:
            if drive.worker == worker and drive.status == "running":
                drive.excused = True

    async def maybe_yield(self) -> None:
        """A scheduling point before a storage call, so concurrent drives interleave."""
        if self.plan.yield_rate and self.env_rng.random() < self.plan.yield_rate:
            await asyncio.sleep(0)

    # --- steps ---------------------------------------------------------------------------------
    def step_executed(self, run_id: str, key: str, attempt: int) -> StepExec:
        """Log a step execution; a second one of the same attempt must be excused by a fault
        that hit the first one's drive (at-least-once), else it is a violation."""
        drive = CURRENT_DRIVE.get()
        worker = drive.worker if drive else "?"
        if worker in self.dead:
            raise InjectedCrash(0, f"step {key} on a dead process")
        self.steps_run += 1
        mine = StepExec(run_id, key, attempt, drive.id if drive else 0, worker)
        for prev in self.execs:
            if (prev.run_id, prev.key, prev.attempt) != (run_id, key, attempt):
                continue
            first = self.drives[prev.drive - 1] if prev.drive else None
            if first is None or not first.excused:
                state = first.status if first else "?"
                self.violations.append(
                    f"step {key} attempt {attempt} of {run_id} executed again by {worker} "
                    f"(drive {mine.drive}) while its first execution (drive {prev.drive} on "
                    f"{prev.worker}, {state}) had no crash, store error or stall to excuse it"
                )
        self.execs.append(mine)
        self.log(worker, f"step {key} attempt {attempt} runs ({run_id})")
        return mine

    async def block(self, kind: str, seconds: float, what: str) -> None:
        """Hold the calling step until the clock has moved ``seconds`` on."""
        drive = CURRENT_DRIVE.get()
        loop = asyncio.get_running_loop()
        blocker = Blocker(
            kind, self.clock.now() + timedelta(seconds=seconds), loop.create_future(), drive
        )
        if kind == "stall" and drive is not None:
            # The whole process is frozen (a GC pause, a stopped VM): every drive in it stops
            # renewing its lease, and another worker may take any of its runs over.
            for other in self.drives:
                if other.worker == drive.worker and other.status == "running":
                    other.excused = True
        self.blockers.append(blocker)
        self.log(drive.worker if drive else "?", f"{kind} {seconds:g}s in {what}")
        await blocker.future

    async def self_cancel(self, run_id: str, instruction: str) -> None:
        """A run reached its ``cancel`` instruction: the environment cancels it right then
        (once; a replay passing the instruction again changes nothing). The request goes
        through the unfaulted store, like a caller that retries until it got through."""
        key = f"{run_id}/{instruction}"
        if key in self.cancels_sent:
            return
        self.cancels_sent.add(key)
        self.log("env", f"cancel {run_id} at {instruction}")
        await self.canceller(run_id)

    def stalled(self) -> set[str]:
        """Workers frozen in a step (a GC pause, a stopped VM): they neither heartbeat nor
        start anything until the stall ends."""
        return {b.drive.worker for b in self.blockers if b.kind == "stall" and b.drive}

    def release_due_blockers(self) -> bool:
        now = self.clock.now()
        due = [b for b in self.blockers if b.until <= now]
        for b in due:
            self.blockers.remove(b)
            who = b.drive.worker if b.drive else "?"
            if b.future.done():  # its task was cancelled meanwhile (an early stop)
                self.log(who, f"{b.kind} had been cancelled")
            else:
                b.future.set_result(None)
                self.log(who, f"{b.kind} ends")
        return bool(due)

    def release_all(self) -> None:
        for b in self.blockers:
            if not b.future.done():
                b.future.set_result(None)
        self.blockers.clear()


CURRENT: World | None = None


def world() -> World:
    assert CURRENT is not None, "no simulation is running"
    return CURRENT


@contextmanager
def installed(w: World) -> Iterator[World]:
    """Make ``w`` the current world and ids/tokens come from its seed, for the ``with`` body."""
    global CURRENT
    saved = clock_module.secrets
    clock_module.secrets = SeededSecrets(w.id_rng)  # type: ignore[assignment]
    CURRENT = w
    try:
        yield w
    finally:
        CURRENT = None
        clock_module.secrets = saved


# --- per-worker wrappers ------------------------------------------------------------------------
class WorkerFaults:
    """The ``Faults`` a worker's wrappers report to: the world decides."""

    def __init__(self, w: World, worker: str) -> None:
        self.world = w
        self.worker = worker

    def point(self, label: str) -> None:
        self.world.fault_point(self.worker, label)


class SimStorage(FaultyStorage):
    """One worker's view of the shared store: fault points around writes, a possible scheduling
    point before every call, and nothing at all once its process is dead."""

    def __init__(self, inner: StorageBackend, w: World, worker: str) -> None:
        super().__init__(inner, WorkerFaults(w, worker))  # type: ignore[arg-type]
        self.world = w
        self.worker = worker

    async def _alive(self) -> None:
        if self.worker in self.world.dead:
            raise InjectedCrash(0, "storage call of a dead process")
        await self.world.maybe_yield()
        if self.worker in self.world.dead:
            raise InjectedCrash(0, "storage call of a dead process")

    async def _write(self, label: str, call: Any) -> Any:
        await self._alive()
        return await super()._write(label, call)

    async def get_run(self, run_id: str) -> Any:
        await self._alive()
        return await self.inner.get_run(run_id)

    async def get_run_by_idempotency_key(self, key: str) -> Any:
        await self._alive()
        return await self.inner.get_run_by_idempotency_key(key)

    async def list_runs_page(self, **kwargs: Any) -> Any:
        await self._alive()
        return await self.inner.list_runs_page(**kwargs)

    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> Any:
        await self._alive()
        return await self.inner.list_due_runs(now, limit=limit, after=after)

    async def read_events(self, run_id: str, *, after_sequence: int = 0) -> Any:
        await self._alive()
        return await self.inner.read_events(run_id, after_sequence=after_sequence)

    async def get_hook_by_hash(self, token_hash: str) -> Any:
        await self._alive()
        return await self.inner.get_hook_by_hash(token_hash)

    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Any:
        await self._alive()
        return await self.inner.find_hook(run_id, hook_id=hook_id, name=name)

    async def read_hooks(self, **kwargs: Any) -> Any:
        await self._alive()
        return await self.inner.read_hooks(**kwargs)

    async def close(self) -> None:
        return None  # the shared store outlives its workers


class SimDispatcher(FaultyDispatcher):
    """A worker's transport: fault points around every send; nothing once its process died."""

    def __init__(self, inner: Any, w: World, worker: str) -> None:
        super().__init__(inner, WorkerFaults(w, worker))  # type: ignore[arg-type]


@dataclass
class Worker:
    """One process: a runtime with its own lease owner over the shared store."""

    name: str
    runtime: Any
    owner: str
    busy: int = 0
    notes: list[str] = field(default_factory=list)

    def retire(self) -> None:
        LIVE_OWNERS.discard(self.owner)

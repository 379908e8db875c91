"""Crash, recover, check: the machinery of the crash-point tests (embedded runtime).

A "process" is a ``LocalRuntime`` on its own ``SQLiteStorageBackend`` over one database file,
wrapped by ``pyworkflow.runtime.faults.inject``. When it crashes its lease owner is dropped from
``LIVE_OWNERS`` (its process is dead) and a fresh process takes over. Recovery is only what a
deployment has: ``pyworkflow worker`` passes (``run_once``: due runs, dead leases), the caller
retrying what failed (a start with its idempotency key, a hook payload: by token, or by name when
the token never reached ``on_created``), and time passing for timers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pyworkflow.core.clock import ManualClock
from pyworkflow.core.events import TERMINAL_OP_EVENTS, Event, EventType
from pyworkflow.core.hook import hash_token
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.exceptions import HookAlreadyReceivedError, HookError
from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.runtime.faults import Faults, InjectedCrash, inject
from pyworkflow.runtime.local import LocalRuntime
from pyworkflow.runtime.worker import run_once
from pyworkflow.service.hooks import deliver_hook
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.faults import workflows as wf

HOOK_PAYLOAD = {"n": 5}
MAX_ROUNDS = 100


class QueuedLocalRuntime(LocalRuntime):
    """The embedded runtime without in-process wake-ups (background tasks, ``call_later``):
    runs move only when a worker pass drives them, so crash points come in one fixed order.
    A waited-for child is still driven inline, as the embedded runtime does."""

    def spawn(self, run_id: str) -> None:
        return None

    async def wake_at(self, run_id: str, when: datetime, *, key: str = "") -> None:
        return None


# --- invariants ---------------------------------------------------------------------------------
@dataclass
class Family:
    """Every run a started run led to (its continue-as-new chain and their children)."""

    runs: list[WorkflowRun]
    histories: dict[str, list[Event]]
    result: Any


async def family(storage: StorageBackend, run_id: str) -> Family:
    runs: list[WorkflowRun] = []
    todo, seen = [run_id], set()
    while todo:
        rid = todo.pop(0)
        if rid in seen:
            continue
        seen.add(rid)
        run = await storage.get_run(rid)
        if run is None:
            continue
        runs.append(run)
        if run.continued_to_run_id:
            todo.append(run.continued_to_run_id)
        todo.extend(c.run_id for c in (await storage.list_runs_page(parent_run_id=rid)).items)
    histories = {r.run_id: await storage.get_events(r.run_id) for r in runs}
    by_id = {r.run_id: r for r in runs}
    last = runs[0]
    while last.continued_to_run_id in by_id:
        last = by_id[last.continued_to_run_id]
    result = last.get_result() if last.status == RunStatus.COMPLETED else last.status.value
    return Family(runs, histories, result)


def broken_invariants(fam: Family) -> list[str]:
    """What is wrong with a finished family: a run not terminal, a history with a gap, an op
    with two outcomes (two ``step.completed``...)."""
    problems: list[str] = []
    for run in fam.runs:
        events = fam.histories[run.run_id]
        if not run.status.is_terminal:
            problems.append(f"{run.workflow_name} {run.run_id} is {run.status.value}")
        if [e.sequence for e in events] != list(range(1, len(events) + 1)):
            problems.append(f"{run.run_id}: history has gaps: {[e.sequence for e in events]}")
        outcomes = Counter(e.op for e in events if e.type in TERMINAL_OP_EVENTS)
        twice = [op for op, n in outcomes.items() if n > 1]
        if twice:
            problems.append(f"{run.run_id}: ops {twice} have more than one outcome")
        ends = [
            e
            for e in events
            if e.type.value.startswith("workflow.") and e.type != EventType.WORKFLOW_STARTED
        ]
        if run.status.is_terminal and len(ends) != 1:
            problems.append(f"{run.run_id}: {len(ends)} ending events")
    return problems


def step_calls(key: str) -> dict[str, int]:
    """Step executions of one family, keyed without ``key`` (comparable across families)."""
    out: dict[str, int] = {}
    for name, n in wf.CALLS.items():
        kind, _, rest = name.partition(":")
        if rest == key or rest.startswith(f"{key}:") or rest.startswith(f"{key}/"):
            out[f"{kind}:{rest[len(key) :]}"] = n
    return out


# --- the embedded driver ------------------------------------------------------------------------
@dataclass
class Outcome:
    run_id: str | None
    crashes: list[str] = field(default_factory=list)
    rounds: int = 0
    stuck: bool = False


class EmbeddedDriver:
    """Start ``faults_reference`` and see it through crashes, as deployments do."""

    def __init__(
        self,
        db_path: Path,
        faults: Faults,
        clock: ManualClock,
        make_storage: Callable[[], StorageBackend] | None = None,
    ) -> None:
        self.db_path = db_path
        # each process opens its own connection(s) to one store: SQLite at db_path by default
        self.make_storage = make_storage or (lambda: SQLiteStorageBackend(db_path))
        self.faults = faults
        self.clock = clock
        self.rt: QueuedLocalRuntime | None = None
        self.delivered: set[str] = set()  # runs whose hook payload a call got through to

    async def new_process(self) -> QueuedLocalRuntime:
        if self.rt is not None:
            LIVE_OWNERS.discard(self.rt.executor.owner)  # that process is dead
            await self.rt.storage.close()
        self.rt = QueuedLocalRuntime(self.make_storage(), clock=self.clock, lease_seconds=60)
        inject(self.rt, self.faults)
        return self.rt

    async def close(self) -> None:
        if self.rt is not None:
            LIVE_OWNERS.discard(self.rt.executor.owner)
            await self.rt.storage.close()

    async def run(self, key: str, workflow: Any = wf.reference) -> Outcome:
        outcome = Outcome(run_id=None)
        rt = await self.new_process()
        for outcome.rounds in range(1, MAX_ROUNDS + 1):
            try:
                if outcome.run_id is None:
                    outcome.run_id = await self._start(rt, key, workflow)
                    continue
                await run_once(rt)
                fam = await family(rt.storage, outcome.run_id)
                if all(r.status.is_terminal for r in fam.runs):
                    return outcome
                if await self._deliver_hooks(rt, fam) or await self._due(rt):
                    continue
                if not self._advance_to_next_timer(fam):
                    outcome.stuck = True
                    return outcome
            except InjectedCrash as crash:
                outcome.crashes.append(crash.label)
                rt = await self.new_process()
        outcome.stuck = True
        return outcome

    async def _start(self, rt: LocalRuntime, key: str, workflow: Any) -> str:
        """``pyworkflow.start`` with an idempotency key, retried by its caller after a crash."""
        existing = await rt.storage.get_run_by_idempotency_key(key)
        if existing is not None:
            return existing.run_id
        defn = get_workflow_by_func(workflow)
        assert defn is not None
        run, history = await rt.executor.create(defn, (key,), {}, idempotency_key=key, lease=True)
        await rt.drive_created(run, history)
        return run.run_id

    async def _due(self, rt: LocalRuntime) -> bool:
        return bool(await rt.storage.list_due_runs(self.clock.now()))

    async def _deliver_hooks(self, rt: LocalRuntime, fam: Family) -> bool:
        """Send the payload to each waiting run's hook until one call of it has returned (a
        call that crashed is made again, as its caller would): with the token ``on_created``
        got, or by name if it never got there (the token is lost)."""
        sent = False
        for run in fam.runs:
            if run.status != RunStatus.SUSPENDED or run.run_id in self.delivered:
                continue
            hooks = await rt.storage.list_hooks(run_id=run.run_id)
            if not hooks:
                continue
            token = wf.TOKENS.get(run.run_id)
            hook = await rt.storage.get_hook_by_hash(hash_token(token)) if token else None
            if hook is None:
                hook = await rt.storage.find_hook(run.run_id, name=hooks[0].name)
            if hook is None:
                continue
            try:
                await deliver_hook(rt, hook, HOOK_PAYLOAD)
            except HookAlreadyReceivedError:
                pass  # a crashed call of ours stored it: this retry only had to wake the run
            except HookError:
                continue
            self.delivered.add(run.run_id)
            sent = True
        return sent

    def _advance_to_next_timer(self, fam: Family) -> bool:
        waits = [
            r.wake_at for r in fam.runs if r.status == RunStatus.SUSPENDED and r.wake_at is not None
        ]
        if not waits:
            return False
        self.clock.advance(max(0.0, (min(waits) - self.clock.now()).total_seconds()))
        return True

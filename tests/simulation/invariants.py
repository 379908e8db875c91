"""What must hold after every seed, read from the store and the world's logs.

- every run ended, or provably waits: suspended without a timer on hooks whose record is pending,
  without timeout, and that the environment will never resume (nor cancel), or on children
  that provably wait themselves;
- histories are gap-free (1..n), have at most one ending, nothing after it, and the run record
  agrees with it;
- every history replays without divergence (``replay_history(...).ok``);
- no op has two terminal events (a step completed twice...);
- no step attempt ran twice unless a fault hit its first execution (``World.step_executed``);
- each cancelled ``sim_program`` run recorded its shielded cleanup step exactly once;
- no action died of an exception the environment did not inject.

The comparison of results with the fault-free run of the same seed is in ``runner``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from pyworkflow.core.events import TERMINAL_OP_EVENTS, TERMINAL_RUN_EVENTS, Event, EventType
from pyworkflow.core.models import Hook, HookStatus, RunStatus, WorkflowRun
from pyworkflow.runtime.replay import replay_history
from pyworkflow.storage.base import StorageBackend
from tests.simulation.program import Instr

_ENDING_STATUS = {
    EventType.WORKFLOW_COMPLETED: RunStatus.COMPLETED,
    EventType.WORKFLOW_FAILED: RunStatus.FAILED,
    EventType.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
    EventType.WORKFLOW_CONTINUED_AS_NEW: RunStatus.CONTINUED_AS_NEW,
}
_CHILD_ENDINGS = {
    EventType.CHILD_WORKFLOW_COMPLETED,
    EventType.CHILD_WORKFLOW_FAILED,
    EventType.CHILD_WORKFLOW_CANCELLED,
}


@dataclass(frozen=True)
class Snapshot:
    """Everything in the store at the end of a seed."""

    runs: dict[str, WorkflowRun]
    histories: dict[str, list[Event]]
    hooks: list[Hook]


async def snapshot(store: StorageBackend) -> Snapshot:
    runs = {r.run_id: r for r in (await store.list_runs_page(limit=100_000)).items}
    histories = {rid: await store.get_events(rid) for rid in sorted(runs)}
    hooks = sorted(await store.list_hooks(limit=100_000), key=lambda h: h.token_hash)
    return Snapshot(runs, histories, hooks)


def open_ops(history: list[Event]) -> dict[int, Event]:
    """Hooks and awaited children a history started and did not finish, by op. Not those of a
    fan-out's items that an early stop skipped: nobody waits on them any more."""
    stopped = {
        str(e.data.get("path") or e.op): set(e.data.get("finished", []))
        for e in history
        if e.type == EventType.PARALLEL_COMPLETED
    }
    started: dict[int, Event] = {}
    for e in history:
        op = e.op
        if op is None or _skipped(e, stopped):
            continue
        if e.type == EventType.HOOK_CREATED or (
            e.type == EventType.CHILD_WORKFLOW_STARTED and e.data.get("wait", True)
        ):
            started[op] = e
        elif (
            e.type in (EventType.HOOK_RECEIVED, EventType.HOOK_EXPIRED) or e.type in _CHILD_ENDINGS
        ):
            started.pop(op, None)
    return started


def _skipped(event: Event, stopped: dict[str, set[int]]) -> bool:
    path = event.data.get("path")
    if not isinstance(path, str):
        return False
    for prefix, finished in stopped.items():
        if path.startswith(prefix + "."):
            item = int(path[len(prefix) + 1 :].split(".")[0])
            if item not in finished:
                return True
    return False


class Waiting:
    """Decides which open runs provably wait forever."""

    def __init__(self, snap: Snapshot, hook_plans: dict[str, Instr]) -> None:
        self.snap = snap
        self.plans = hook_plans
        self.memo: dict[str, str | None] = {}

    def reason(self, run_id: str) -> str | None:
        """Why ``run_id`` waits forever, or None if it should not be waiting."""
        if run_id not in self.memo:
            self.memo[run_id] = None  # a cycle proves nothing
            self.memo[run_id] = self._reason(run_id)
        return self.memo[run_id]

    def _reason(self, run_id: str) -> str | None:
        run = self.snap.runs.get(run_id)
        if run is None or run.status != RunStatus.SUSPENDED or run.cancel_requested:
            return None
        waits = open_ops(self.snap.histories.get(run_id, []))
        if not waits:
            return None
        # A wake-up without a timer (wake_key None) is the embedded runtime's look at a run
        # waiting for children: it waits as long as they do.
        if run.wake_at is not None and (
            run.wake_key is not None
            or not any(e.type == EventType.CHILD_WORKFLOW_STARTED for e in waits.values())
        ):
            return None
        reasons = []
        for event in waits.values():
            if event.type == EventType.HOOK_CREATED:
                why = self._hook(run_id, event)
            else:
                why = self._child(event.data["child_run_id"])
            if why is None:
                return None
            reasons.append(why)
        return "; ".join(reasons)

    def _hook(self, run_id: str, event: Event) -> str | None:
        hook_id = event.data.get("hook_id")
        records = [h for h in self.snap.hooks if h.run_id == run_id and h.hook_id == hook_id]
        records = sorted(records, key=lambda h: (h.created_at, h.op))[-1:]  # the one it uses
        plan = self.plans.get(str(event.data.get("name")))
        if (
            plan is None
            or any(d["good"] and not d.get("late") for d in plan["deliveries"])
            or plan["cancel_when_waiting"]
        ):
            return None
        if not records or any(
            h.status != HookStatus.PENDING or h.expires_at is not None for h in records
        ):
            return None
        return f"hook {event.data.get('name')} (never resumed)"

    def _child(self, child_id: str) -> str | None:
        child = self.snap.runs.get(child_id)
        while child is not None and child.status == RunStatus.CONTINUED_AS_NEW:
            child = self.snap.runs.get(child.continued_to_run_id or "")
        if child is None:
            return None
        why = self.reason(child.run_id)
        return None if why is None else f"child {child.run_id} ({why})"


async def check(snap: Snapshot, hook_plans: dict[str, Instr]) -> list[str]:
    problems: list[str] = []
    waiting = Waiting(snap, hook_plans)
    for run_id, run in sorted(snap.runs.items()):
        events = snap.histories[run_id]
        where = f"{run_id} ({run.status.value})"
        if not run.status.is_terminal and waiting.reason(run_id) is None:
            problems.append(
                f"{where} is neither ended nor provably waiting "
                f"(wake_at={run.wake_at}, lease={run.lease_owner})"
            )
        seqs = [e.sequence for e in events]
        if seqs != list(range(1, len(events) + 1)):
            problems.append(f"{where}: history not gap-free: {seqs}")
        outcomes = Counter(e.op for e in events if e.type in TERMINAL_OP_EVENTS)
        twice = sorted(op for op, n in outcomes.items() if op is not None and n > 1)
        if twice:
            problems.append(f"{where}: ops {twice} have more than one terminal event")
        ends = [i for i, e in enumerate(events) if e.type in TERMINAL_RUN_EVENTS]
        if ends and ends[0] != len(events) - 1:
            after = [e.type.value for e in events[ends[0] + 1 :]]
            problems.append(f"{where}: events after its ending: {after}")
        if run.status.is_terminal:
            if not ends:
                problems.append(f"{where}: no ending event")
            elif _ENDING_STATUS.get(events[ends[0]].type) != run.status:
                problems.append(f"{where}: history ends with {events[ends[0]].type.value}")
        elif ends:
            problems.append(f"{where}: history has ended ({events[ends[0]].type.value})")
        if events:
            report = await replay_history(events, run=run)
            if not report.ok:
                problems.append(
                    f"{where}: replay diverged: "
                    f"{report.divergence.message if report.divergence else report}"
                )
        if run.status == RunStatus.CANCELLED and run.workflow_name == "sim_program":
            cleanups = [
                e
                for e in events
                if e.type == EventType.STEP_COMPLETED and e.data.get("step_name") == "sim_cleanup"
            ]
            if len(cleanups) != 1:
                problems.append(f"{where}: cleanup step recorded {len(cleanups)} times")
    return problems


def top_results(
    snap: Snapshot, top: dict[int, str], n: int, waiting: Waiting | None = None
) -> dict[int, Any]:
    """Per top-level program: how its chain of runs ended (status and result or error type)."""
    waiting = waiting or Waiting(snap, {})
    out: dict[int, Any] = {}
    for index in range(n):
        run = snap.runs.get(top.get(index, ""))
        while run is not None and run.status == RunStatus.CONTINUED_AS_NEW:
            run = snap.runs.get(run.continued_to_run_id or "")
        if run is None:
            out[index] = "never started"
        elif run.status == RunStatus.COMPLETED:
            out[index] = ["completed", run.get_result()]
        elif run.status.is_terminal:
            out[index] = [run.status.value, run.error_type]
        else:
            out[index] = [run.status.value]
    return out

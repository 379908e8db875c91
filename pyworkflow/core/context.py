"""The replay state of one execution of one run. Pure bookkeeping: all I/O goes through the
``Journal`` the runtime injects.

Each durable operation (step, sleep, hook, child, context update) gets an ``op`` number from a
counter, in call order: never a hash of its arguments, so a step called twice with the same
arguments runs twice. Its events carry that number. On replay, ``begin`` finds the recorded events
of the op and checks that the code asks for the same kind and name; if not, the run fails with
``NonDeterminismError`` naming both.

Inside a fan-out (``parallel``/``map``) each branch numbers its operations on its own: an op there
is identified by its *path* ("3.1.0": fan-out op 3, branch 1, the branch's first op), recorded in
its events next to a run-unique ``op`` number. Branches finish in whatever order the world
decides, so only the path is stable across executions; the fan-out's block of op numbers is handed
out as branches ask for them, and the op numbers after the fan-out are the same on every replay
(see ``Block``).

Cancellation is an event like any other. An op is *settled* if its terminal event comes before
the first ``cancellation.requested`` event; awaiting an unsettled op outside ``shield()`` raises
``CancellationError``. Replay therefore delivers cancellation at exactly the same await as the
execution that first saw it.
"""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from pyworkflow.core.clock import Clock, new_event_id
from pyworkflow.core.events import TERMINAL_OP_EVENTS, Event, EventType
from pyworkflow.core.instrumentation import REPORTED_KINDS, OperationReporter
from pyworkflow.exceptions import (
    CancellationError,
    EventLimitExceededError,
    NonDeterminismError,
    OpMismatch,
    PrimitiveInStepError,
    RunFailure,
    SuspensionSignal,
    WorkflowError,
)

if TYPE_CHECKING:
    from pyworkflow.core.models import Hook, HookStatus, WorkflowRun

logger = logging.getLogger("pyworkflow")

_KIND_BY_PREFIX = {
    "step": "step",
    "sleep": "sleep",
    "hook": "hook",
    "child_workflow": "child",
    "context": "context",
    "parallel": "parallel",
    "patch": "patch",
}


class Journal(Protocol):
    """What an execution needs from the runtime. Implemented in ``pyworkflow.runtime``."""

    clock: Clock

    async def write(self, events: list[Event]) -> None:
        """Append events conditionally (``ConcurrencyError`` if the history moved)."""

    async def checkpoint(self) -> None:
        """Called before each new operation: renew the lease, notice outside changes
        (raises ``RestartSignal`` when the run must be reloaded)."""

    async def create_hook(self, hook: Hook) -> None: ...

    async def get_hook(self, run_id: str, hook_id: str) -> Hook | None: ...

    async def expire_hook(self, hook: Hook, status: HookStatus = ...) -> Hook:
        """Mark a pending hook expired (or ``status``); returns the stored hook (which may have
        been received meanwhile)."""

    async def start_child(
        self,
        workflow_name: str,
        child_run_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        op: int,
        parent_close_policy: str,
        wait: bool,
    ) -> None: ...

    async def get_run(self, run_id: str) -> WorkflowRun | None: ...

    async def cancel_run(self, run_id: str, reason: str | None) -> None: ...


@dataclass
class OpRecord:
    op: int
    kind: str
    name: str
    events: list[Event] = field(default_factory=list)
    terminal: Event | None = None

    def first(self, type_: EventType) -> Event | None:
        return next((e for e in self.events if e.type == type_), None)


@dataclass
class Block:
    """The op numbers of one top-level fan-out and everything nested in it. A branch op takes
    its recorded number, or else the lowest number above ``start`` that no recorded op holds;
    the fan-out ends at ``top`` (the highest number used), so the next op is the same on every
    execution however the branches interleaved."""

    start: int
    cursor: int
    top: int


@dataclass
class Lane:
    """A task other than the execution's own making durable calls (``asyncio.gather``'s
    coroutines). The tasks the workflow function starts make their first call in the order they
    were started (gather starts its coroutines in order), so that call takes the next op number
    as any call does and names the lane: ``base``. Each later call is identified by
    ``{base}.{k}``, whatever the interleaving of the tasks, which depends on timing the first
    time and not on replay (recorded calls return without yielding). A task started by a lane's
    task is the lane ``{base}/{n}``, n counting its first calls in order."""

    base: str
    task: asyncio.Task[Any]
    count: int = 1
    spawned: int = 0


@dataclass
class Branch:
    """One branch of a fan-out: its ops are ``{prefix}.0``, ``{prefix}.1``... in call order.
    ``settled_in_history``: the recorded run went on past the fan-out, so every op of its
    branches is in the history and the code may not make a new one."""

    prefix: str
    block: Block
    count: int = 0
    settled_in_history: bool = False


# (by event type, worked out once: op_kind runs for every event recorded or replayed)
_KIND_BY_TYPE = {t: _KIND_BY_PREFIX.get(t.value.split(".", 1)[0], "?") for t in EventType}


def op_kind(event: Event) -> str:
    return _KIND_BY_TYPE.get(event.type, "?")


@dataclass
class Limits:
    soft: int = 10_000
    hard: int = 50_000
    warning_interval: int = 100


class ExecutionContext:
    """State of one execution. ``current()`` returns it inside workflow and step code."""

    def __init__(
        self,
        run: WorkflowRun,
        history: list[Event],
        journal: Journal,
        *,
        durable: bool = True,
        inline_wait_max: float = 0.0,
        inline_sleep_max: float = 0.0,
        limits: Limits | None = None,
        default_retries: int = 3,
    ) -> None:
        self.run = run
        self.run_id = run.run_id
        self.workflow_name = run.workflow_name
        self.journal = journal
        self.clock = journal.clock
        self.is_durable = durable
        self.inline_wait_max = inline_wait_max  # retry backoffs up to this wait in-process
        self.inline_sleep_max = inline_sleep_max  # sleeps up to this too (transient runs)
        self.limits = limits or Limits()
        self.default_retries = default_retries  # of a step that does not say (configure())
        self.history = history
        self.next_seq = len(history) + 1
        self._pending: list[Event] = []
        self._next_assign = self.next_seq  # sequences are handed out here, written in order
        self.write_lock = asyncio.Lock()  # one write of the history at a time
        self._next_op = 0
        self._ops: dict[int, OpRecord] = {}
        self._by_path: dict[str, OpRecord] = {}  # branch ops of fan-outs (see module doc)
        # For each position prefix (a tuple of path numbers: () is the top level, (3,) fan-out
        # #3, (3, 1) its branch 1...), the highest next number recorded under it: what the
        # history holds beyond a fan-out, in its branches, and after a branch's last op.
        self._extent: dict[tuple[int, ...], int] = {}
        # Later calls of gathered coroutines (see ``Lane``): recorded ones by their key, the
        # numbers they own (the run's own counter skips those), this execution's keys.
        self._by_lane: dict[str, OpRecord] = {}
        self._lane_owned: set[int] = set()
        self._lane_of: dict[int, str] = {}
        self._high = -1  # the highest op number recorded or taken
        self._path_of: dict[int, str] = {}  # this execution's branch ops: op -> path
        self.cancel_seq: int | None = None
        self.cancel_reason: str | None = None
        self.step_context: Any = None
        # The public ``WorkflowContext`` (pyworkflow-engine API) over this execution, made on the
        # first ``get_context()``: one object per execution, so identity checks hold.
        self.facade: Any = None
        self.interrupted = False  # set by the runtime: reload at the next new operation
        self.awaits_child = False  # a child's ending is among what the run waits for
        self.child_wait_since: datetime | None = None  # since when (the earliest such child)
        self.closed = False  # the execution has ended: no operation may start any more
        self._open_block: Block | None = None  # a top-level fan-out in progress
        # Tasks other than the execution's own that made durable calls (asyncio.gather
        # branches, fan-out items): the execution ends only once they have settled.
        self.main_task: asyncio.Task[Any] | None = None
        # (a dict for its order: what is done with them must not depend on hashes of tasks)
        self.side_tasks: dict[asyncio.Task[Any], None] = {}
        self._parked: dict[asyncio.Task[Any], SuspensionSignal] = {}
        self._side_changed: asyncio.Event | None = None
        # Tasks the engine itself cancelled (a fan-out's early stop, a teardown): a step cut off
        # there is not "cancelled by the workflow" (see ``step._note_cancelled``).
        self.engine_cancelled: set[asyncio.Task[Any]] = set()
        # Tells instrumentation plugins about operations (set by the runtime when there are
        # plugins; None: nothing is reported and nothing costs).
        self.reporter: OperationReporter | None = None
        for event in history:
            self._index(event)
        # The recorded top-level ops in the order their outcomes were recorded, and which of
        # them this execution has reached (see ``_replay_turn``).
        self._recorded_top = [
            r for r in self._ops.values() if not isinstance(r.events[0].data.get("path"), str)
        ]
        self._outcome_order: list[tuple[float, int]] | None = None  # built on first use
        self._order_at = 0
        self._reached: set[int] = set()

    # --- history -----------------------------------------------------------------------------
    def _index(self, event: Event) -> None:
        if event.type == EventType.CANCELLATION_REQUESTED and self.cancel_seq is None:
            self.cancel_seq = event.sequence
            self.cancel_reason = event.data.get("reason")
        op = event.op
        if op is None:
            return
        rec = self._ops.get(op)
        if rec is None:
            rec = self._ops[op] = OpRecord(op, op_kind(event), str(event.data.get("name", "")))
        rec.events.append(event)
        path = event.data.get("path")
        if isinstance(path, str):
            self._by_path.setdefault(path, rec)
        lane = event.data.get("lane")
        if len(rec.events) == 1 and isinstance(lane, str):
            self._by_lane.setdefault(lane, rec)
            self._lane_owned.add(op)
        if op > self._high:
            self._high = op
        if len(rec.events) == 1:
            position = _position(path) if isinstance(path, str) else (op,)
            for k, number in enumerate(position):
                prefix = position[:k]
                if self._extent.get(prefix, -1) < number:
                    self._extent[prefix] = number
        if event.type in TERMINAL_OP_EVENTS or (
            event.type == EventType.CHILD_WORKFLOW_STARTED and not event.data.get("wait", True)
        ):
            rec.terminal = event

    @property
    def op_count(self) -> int:
        return self._next_op

    def recorded_ops(self) -> int:
        return len(self._ops)

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def shield_depth(self) -> int:
        """How many ``shield()`` blocks the calling task is inside. Per task, like ``in_step``:
        one gathered branch's cleanup does not shield its siblings."""
        return _shield_depth.get()

    @shield_depth.setter
    def shield_depth(self, depth: int) -> None:
        _shield_depth.set(depth)

    @property
    def in_step(self) -> bool:
        """Whether the calling task is inside a step. Per task (a ContextVar), so steps run
        concurrently with asyncio.gather each see only their own state."""
        return _in_step.get() is not None

    def make_event(self, type_: EventType, data: dict[str, Any]) -> Event:
        seq = self._next_assign
        self._next_assign += 1
        return Event(
            event_id=new_event_id(),
            run_id=self.run_id,
            type=type_,
            timestamp=self.clock.now(),
            data=data,
            sequence=seq,
        )

    async def record(
        self, type_: EventType, data: dict[str, Any], *, defer: bool = False, final: bool = False
    ) -> Event:
        """Record an event. Deferred events ride along with the next write (a suspension writes
        them together with the run record, in one atomic write)."""
        event = self.record_later(type_, data, final=final)
        if not defer or (not final and not self._fits(event)):
            # An event the store cannot hold is written (and fitted) at once: a deferred one
            # would reach the store only with a final write, after the code went on with it.
            await self.flush()
        return event

    def _fits(self, event: Event) -> bool:
        fits = getattr(self.journal, "fits", None)  # a runtime without payload limits has none
        return True if fits is None else bool(fits(event))

    def record_later(self, type_: EventType, data: dict[str, Any], *, final: bool = False) -> Event:
        """Record an event that rides along with the next write (no await: ``patched()`` is a
        plain function)."""
        if not final:  # the event that ends a run is always written, even past the limit
            self._check_limits(self._next_assign)
        op = data.get("op")
        if isinstance(op, int) and op in self._path_of and "path" not in data:
            data = {**data, "path": self._path_of[op]}
        elif isinstance(op, int) and op in self._lane_of and "lane" not in data:
            data = {**data, "lane": self._lane_of[op]}
        event = self.make_event(type_, data)
        self._pending.append(event)
        # Indexed at once: if the write fails the whole execution is discarded and replayed.
        self._index(event)
        if self.reporter is not None and event.op in self.reporter.reported:
            self.reporter.event(event)
        return event

    async def flush(self) -> None:
        # Concurrent steps (asyncio.gather) flush in sequence order, one write at a time.
        async with self.write_lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                await self.journal.write(batch)
            except RunFailure as failure:
                if failure.written:  # the store took the batch and ends the run with it
                    self.next_seq += len(batch)
                    self.history.extend(batch)
                else:
                    self._unwritten()
                raise
            except BaseException:
                self._unwritten()
                raise
            self.next_seq += len(batch)
            self.history.extend(batch)

    def _unwritten(self) -> None:
        """A write failed: what follows must not leave a gap in the sequence. This execution
        ends (its outcome, a reload or a failed drive) with what the store has; events recorded
        meanwhile by other tasks go too."""
        self._pending = []
        self._next_assign = self.next_seq

    @property
    def unwritten(self) -> tuple[Event, ...]:
        """Events recorded and not yet written (they ride with the next write)."""
        return tuple(self._pending)

    def take_pending(self) -> list[Event]:
        """Hand deferred events to the runtime, which writes them with the run record."""
        batch, self._pending = self._pending, []
        return batch

    def _check_limits(self, count: int) -> None:
        if count >= self.limits.hard:
            raise RunFailure(EventLimitExceededError(self.run_id, count, self.limits.hard))
        if (
            count >= self.limits.soft
            and (count - self.limits.soft) % max(1, self.limits.warning_interval) == 0
        ):
            logger.warning(
                "Run %s has %d events (soft limit %d, hard limit %d): consider continue_as_new()",
                self.run_id,
                count,
                self.limits.soft,
                self.limits.hard,
            )

    # --- operations --------------------------------------------------------------------------
    async def begin(self, kind: str, name: str) -> tuple[int, OpRecord | None]:
        """Allocate the next op: its number and its record if history has one (after checking
        it is the same kind and name), else None — a new operation, after a runtime checkpoint.

        The number is returned rather than read back later: concurrent operations (gather)
        allocate while this one awaits its checkpoint."""
        op, rec = self.allocate(kind, name)
        await self._replay_turn(rec)
        if rec is not None:
            self._reached.add(op)  # its outcome is handed out now (see _replay_turn)
            return op, rec
        if self.interrupted:
            from pyworkflow.exceptions import RestartSignal

            raise RestartSignal()
        await self.journal.checkpoint()
        self.check_deadline()
        return op, rec

    def _outcome_at(self, rec: OpRecord | None, *, shielded: bool = False) -> float:
        """Where in the history the outcome op ``rec`` hands out now was recorded: its ending
        event; the cancellation request for an op it leaves unsettled (that op raises
        ``CancellationError``); and after the whole history for an op without a recorded
        outcome, new or unfinished (what it does now is new)."""
        if self.cancel_seq is not None and not shielded and not self.settled(rec):
            last = rec.events[-1].sequence if rec is not None else 0
            return max(last, self.cancel_seq)
        if rec is None or rec.terminal is None:
            return float("inf")
        return rec.terminal.sequence

    async def suspension(self, signal: SuspensionSignal) -> SuspensionSignal:
        """The signal a primitive raises when its run must wait. In a task the workflow started
        (``asyncio.gather``'s coroutines), not at once: only when every other such task has
        ended or must wait too, and then the earliest wait of them all. So a sibling's failure
        or result always reaches ``gather`` before a wait does — on every execution alike,
        whatever the timing (a wait is no outcome: it only says the run cannot go on now)."""
        task = asyncio.current_task()
        if (
            task is None
            or task is self.main_task
            or self.main_task is None
            or _branch.get() is not None
        ):
            return signal
        self._parked[task] = signal
        self._notify()  # this task parking may be what another parked one waits for
        try:
            await asyncio.sleep(0)  # siblings started with this task make their first call
            while True:
                if self._side_changed is None:
                    self._side_changed = asyncio.Event()
                self._side_changed.clear()
                if not [
                    t
                    for t in self.side_tasks
                    if t is not task and not t.done() and t not in self._parked
                ]:
                    break
                await self._side_changed.wait()
            timed = [s for s in self._parked.values() if s.wake_at is not None]
            first = min(timed, key=lambda s: s.wake_at) if timed else signal  # type: ignore
            return SuspensionSignal(first.reason, wake_at=first.wake_at, **first.data)
        finally:
            del self._parked[task]
            self._notify()

    def _side_done(self, task: asyncio.Task[Any]) -> None:
        self._notify()

    def _notify(self) -> None:
        if self._side_changed is not None:
            self._side_changed.set()

    async def _replay_turn(self, rec: OpRecord | None) -> None:
        """In a task the workflow started (``asyncio.gather``), hand out a recorded outcome only
        once every outcome recorded before it has been handed out. Recorded calls return without
        waiting, so a replay would otherwise finish the gathered coroutines in the order they
        were started, not the order they finished in the recorded run: ``gather`` would raise
        another branch's exception first, ``as_completed`` would yield another order. A
        cancellation this op is about to raise counts as an outcome recorded at its request."""
        task = asyncio.current_task()
        if (
            task is None
            or task is self.main_task
            or self.main_task is None
            or _branch.get() is not None
        ):
            return
        mine = self._outcome_at(rec, shielded=self.shield_depth > 0)
        reached, idle = len(self._reached), 0
        while (earliest := self._earliest_unreached()) is not None and earliest < mine:
            await asyncio.sleep(0)
            if len(self._reached) != reached:
                reached, idle = len(self._reached), 0
            else:
                idle += 1
                if idle > 200:  # nobody gets to it (changed code, a task gone): go on
                    return

    def _earliest_unreached(self) -> float | None:
        if self._outcome_order is None:  # (after this execution's own cancellation record)
            # (only outcomes the history holds: an unfinished op's next one is new)
            self._outcome_order = sorted(
                (at, r.op)
                for r in self._recorded_top
                if (at := self._outcome_at(r)) != float("inf")
            )
        order = self._outcome_order
        while self._order_at < len(order) and order[self._order_at][1] in self._reached:
            self._order_at += 1
        return order[self._order_at][0] if self._order_at < len(order) else None

    def position(self) -> str:
        """Where the next op of the calling task sits: its number, or its path in a fan-out."""
        branch = _branch.get()
        if branch is None:
            return str(self._next_op)
        return f"{branch.prefix}.{branch.count}"

    def peek(self) -> OpRecord | None:
        """The recorded op at the calling task's next position, without taking it."""
        branch = _branch.get()
        if branch is None:
            return self._ops.get(self._next_op)
        return self._by_path.get(f"{branch.prefix}.{branch.count}")

    def allocate(self, kind: str, name: str) -> tuple[int, OpRecord | None]:
        """Take the next position (no checkpoint): its op number and its recorded op, if any,
        checked to be the same kind and name."""
        op, rec = self._allocate(kind, name)
        if self.reporter is not None and kind in REPORTED_KINDS:
            self.reporter.started(op, kind, name, rec)
        return op, rec

    def _allocate(self, kind: str, name: str) -> tuple[int, OpRecord | None]:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop: a synchronous caller (tests of the core)
            task = None
        if self.closed:
            # A task the workflow started and never awaited, reaching a durable call after the
            # execution ended: nothing may be written after the run's ending (or its
            # suspension). Recorded nowhere: the task is cancelled.
            logger.warning(
                "Run %s: %s %r was called after the workflow function ended (from a "
                "task it did not await): not run. Await every task it starts.",
                self.run_id,
                kind,
                name,
            )
            raise asyncio.CancelledError(f"{kind} {name!r} after the execution ended")
        # (no main task: a caller driving the context by hand, all of it one sequence)
        side = task is not self.main_task and task is not None and self.main_task is not None
        if side and task not in self.side_tasks:
            self.side_tasks[task] = None  # type: ignore[index]
            task.add_done_callback(self._side_done)  # type: ignore[union-attr]
        branch = _branch.get()
        if branch is None and self._open_block is not None:
            raise RuntimeError(
                f"{kind} {name!r} was called next to a running parallel()/map(): await the "
                "fan-out first, or make the call one of its branches"
            )
        lane = _lane.get() if side and branch is None else None
        if lane is not None:
            if lane.task is task:
                key = f"{lane.base}.{lane.count}"
                lane.count += 1
                return self._allocate_in_lane(key, kind, name)
            # the first call of a task a gathered coroutine started
            key = f"{lane.base}/{lane.spawned}"
            lane.spawned += 1
            _lane.set(Lane(base=key, task=task))  # type: ignore[arg-type]
            return self._allocate_in_lane(key, kind, name)
        if branch is None:
            while self._next_op in self._lane_owned:  # numbers of gathered coroutines' calls
                self._next_op += 1
            op = self._next_op
            self._next_op += 1
            self._high = max(self._high, op)
            rec = self._ops.get(op)
            if rec is not None and not side:  # a side task's, once its turn came (begin)
                self._reached.add(op)
            # A fan-out left by an exception may have handed this number to a branch op that
            # was never recorded: it is a top-level op now.
            self._path_of.pop(op, None)
            where: int | str = op
            if side:
                _lane.set(Lane(base=str(op), task=task))  # type: ignore[arg-type]
        else:
            path = f"{branch.prefix}.{branch.count}"
            branch.count += 1
            rec = self._by_path.get(path)
            if rec is None and branch.settled_in_history and self.cancel_seq is None:
                # (under a cancellation the primitive raises CancellationError next instead,
                # as it did in the recorded run)
                _diverge(
                    self.run_id,
                    path,
                    "nothing here: the fan-out had finished",
                    f"{kind} {name!r}",
                    f"the history has no operation #{path}, but the recorded run went on "
                    f"past its fan-out (#{branch.prefix.rpartition('.')[0]}): the code "
                    f"now calls {kind} {name!r} in a branch that had ended",
                )
            op = rec.op if rec is not None else self._take(branch.block)
            branch.block.top = max(branch.block.top, op)
            self._path_of[op] = path
            where = path
        if rec is not None and (rec.kind != kind or rec.name != name):
            _diverge(
                self.run_id,
                where,
                f"{rec.kind} {rec.name!r}",
                f"{kind} {name!r}",
                f"the history recorded {rec.kind} {rec.name!r} but the code now calls "
                f"{kind} {name!r}"
                + (
                    " (a removed patched() check needs deprecate_patch())"
                    if rec.kind == "patch"
                    else ""
                ),
            )
        return op, rec

    def _allocate_in_lane(self, key: str, kind: str, name: str) -> tuple[int, OpRecord | None]:
        rec = self._by_lane.get(key)
        if rec is not None:
            op = rec.op
        else:
            op = self._high = max(self._high, self._next_op - 1) + 1  # above all: unrecorded
        self._lane_owned.add(op)
        self._lane_of[op] = key
        if rec is not None and (rec.kind != kind or rec.name != name):
            _diverge(
                self.run_id,
                f"L{key}",
                f"{rec.kind} {rec.name!r}",
                f"{kind} {name!r}",
                f"the history recorded {rec.kind} {rec.name!r} as call L{key} of a "
                f"gathered coroutine, but the code now calls {kind} {name!r}",
            )
        return op, rec

    # --- fan-out checks (see ``pyworkflow.core.parallel``) -----------------------------------
    def recorded_past(self, op: int) -> bool:
        """Whether the history holds an op after fan-out ``op`` in its scope (the top level, or
        the branch around it): the recorded run finished that fan-out and went on."""
        if op in self._lane_of:
            return False  # a gathered coroutine's call: what follows it is not "after" it
        position = _position(self.path_of(op))
        return self._extent.get(position[:-1], -1) > position[-1]

    def recorded_items(self, op: int) -> int:
        """How many items of fan-out ``op`` the history holds ops of (the highest one + 1)."""
        return self._extent.get(_position(self.fan_out_prefix(op)), -1) + 1

    def fan_out_prefix(self, op: int) -> str:
        """What the paths of fan-out ``op``'s branch ops begin with: its own path (numbers
        only), or its number when it is a later call of a gathered coroutine."""
        return str(op) if op in self._lane_of else self.path_of(op)

    def check_branch_end(self, branch: Branch) -> None:
        """A branch returned (or raised an item failure): nothing of it may be left unreplayed
        in the history, or the code lost a durable call that the recorded run made."""
        if self._extent.get(_position(branch.prefix), -1) < branch.count:
            return
        path = f"{branch.prefix}.{branch.count}"
        rec = self._by_path.get(path) or next(
            r for p, r in self._by_path.items() if p.startswith(path + ".")
        )
        _diverge(
            self.run_id,
            path,
            f"{rec.kind} {rec.name!r}",
            "the branch's end",
            f"the history recorded {rec.kind} {rec.name!r} in this branch but the code "
            "now ends the branch before it",
        )

    def position_settled(self) -> bool:
        """Whether nothing new may be recorded at the calling task's position: it is in a
        branch of a fan-out the recorded run had finished (``patched()`` answers False)."""
        branch = _branch.get()
        return branch is not None and branch.settled_in_history and self.cancel_seq is None

    def _take(self, block: Block) -> int:
        while block.cursor in self._ops:  # numbers recorded by other branches stay theirs
            block.cursor += 1
        op = block.cursor
        block.cursor += 1
        return op

    # --- fan-out blocks (see ``pyworkflow.core.parallel``) -----------------------------------
    def open_block(self, op: int) -> Block:
        """The block the branches of fan-out ``op`` draw their numbers from: a new one at top
        level, the enclosing one inside a branch."""
        branch = _branch.get()
        if branch is not None:
            return branch.block
        block = Block(start=op + 1, cursor=op + 1, top=op)
        self._open_block = block
        return block

    def close_block(self, block: Block, next_op: int | None = None, *, exact: bool = False) -> None:
        """End a fan-out. ``next_op``: a recorded early stop's end (raises the block's end), or
        with ``exact`` the end to use as is (a fan-out left by an exception, see
        ``recorded_end``)."""
        if next_op is not None:
            block.top = (
                next_op - 1 if exact and _branch.get() is None else max(block.top, next_op - 1)
            )
        if _branch.get() is None:
            self._open_block = None
            self._next_op = block.top + 1
        if self.reporter is not None:
            self.reporter.fan_out_closed()

    def opening(self, rec: OpRecord, type_: EventType) -> Event:
        """The event that opened recorded op ``rec`` (``sleep.started``, ``hook.created``...).
        A record without it is a history this code cannot replay: the run fails, as on any
        other disagreement between code and history."""
        event = rec.first(type_)
        if event is None:
            _diverge(
                self.run_id,
                self.path_of(rec.op),
                f"{type_.value} for {rec.kind} {rec.name!r}",
                "no such event",
                f"the history holds {rec.kind} {rec.name!r} without its {type_.value} event",
            )
        return event

    def path_of(self, op: int) -> str:
        """The identity of op ``op``: its path inside a fan-out, ``L{first}.{k}`` for a later
        call of a gathered coroutine, else its number."""
        lane = self._lane_of.get(op)
        return f"L{lane}" if lane is not None else self._path_of.get(op, str(op))

    def recorded_end(self, op: int, prefix: str) -> int:
        """The first op number after fan-out ``op`` judged by its recorded ops only. Used when
        the fan-out ends by an exception the workflow may catch (cancellation): which branches
        had taken a number by then is a matter of timing, what the history holds is not."""
        top = max(
            (r.op for p, r in self._by_path.items() if p.startswith(prefix + ".")), default=op
        )
        return max(top, op) + 1

    def check_deadline(self) -> None:
        deadline = self.run.deadline_at
        if deadline is not None and self.clock.now() >= deadline:
            raise RunFailure(
                WorkflowError(
                    f"Run {self.run_id} exceeded its max_duration ({self.run.max_duration})"
                )
            )

    def settled(self, rec: OpRecord | None) -> bool:
        """Whether the op finished before any cancellation request."""
        if rec is None or rec.terminal is None:
            return False
        return self.cancel_seq is None or rec.terminal.sequence < self.cancel_seq

    @property
    def cancellation_requested(self) -> bool:
        return self.cancel_seq is not None

    def check_cancellation(self, rec: OpRecord | None = None) -> None:
        """Raise ``CancellationError`` if cancellation applies to this op (see module doc)."""
        if self.cancel_seq is None or self.shield_depth > 0 or self.settled(rec):
            return
        raise CancellationError(
            f"Workflow {self.run_id} was cancelled"
            + (f": {self.cancel_reason}" if self.cancel_reason else ""),
            reason=self.cancel_reason,
        )

    def unconsumed_ops(self) -> list[OpRecord]:
        taken = set(self._lane_of.values())
        return [
            r
            for op, r in sorted(self._ops.items())
            if (op >= self._next_op and op not in self._lane_owned)
            or (op in self._lane_owned and self._lane_key(r) not in taken)
        ]

    @staticmethod
    def _lane_key(rec: OpRecord) -> str | None:
        lane = rec.events[0].data.get("lane") if rec.events else None
        return lane if isinstance(lane, str) else None


def _position(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in path.split("."))


def _diverge(run_id: str, where: int | str, expected: str, found: str, detail: str) -> NoReturn:
    """Fail the run: code and history disagree at ``where``. The error carries an
    ``OpMismatch`` for ``pyworkflow replay``."""
    raise RunFailure(
        NonDeterminismError(
            f"Run {run_id}, operation #{where}: {detail}. Workflow code must make the same durable "
            "calls in the same order on replay.",
            mismatch=OpMismatch(where, expected, found),
        )
    )


_current: ContextVar[ExecutionContext | None] = ContextVar("pyworkflow_context", default=None)
# the step (or hook callback) the calling task is inside, by name; None in workflow code
_in_step: ContextVar[str | None] = ContextVar("pyworkflow_in_step", default=None)
_shield_depth: ContextVar[int] = ContextVar("pyworkflow_shield_depth", default=0)
_branch: ContextVar[Branch | None] = ContextVar("pyworkflow_branch", default=None)
_lane: ContextVar[Lane | None] = ContextVar("pyworkflow_lane", default=None)
# A context the user installed with ``set_context()`` (a ``MockContext`` in a test): the
# primitives hand their work to it when no execution of ours is running.
_override: ContextVar[Any] = ContextVar("pyworkflow_public_context", default=None)


def _reset(var: ContextVar[Any], token: Any) -> None:
    try:
        var.reset(token)
    except ValueError:
        # "created in a different Context": a coroutine being torn down outside its task
        # (garbage-collected, its loop closed). That context goes with it; nothing to undo,
        # and raising here would turn a teardown into the workflow's own failure.
        pass


def enter_branch(branch: Branch) -> Any:
    return _branch.set(branch)


def enter_step(name: str) -> Any:
    return _in_step.set(name)


def leave_step(token: Any) -> None:
    _reset(_in_step, token)


def current() -> ExecutionContext | None:
    return _current.get()


def override() -> Any:
    """The context ``set_context()`` installed, if no execution of ours is running (a running
    one always wins: the engine must not hand a real run's operations to a test double)."""
    return _override.get() if _current.get() is None else None


def require(what: str) -> ExecutionContext:
    """The running workflow's context for primitive ``what`` ("hook()"), which only workflow
    code may call: ``RuntimeError`` outside a workflow, ``PrimitiveInStepError`` inside a step
    (recorded inside a step, it would be an operation the step's retry or replay repeats)."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError(f"{what} can only be used inside a workflow (a @workflow function)")
    refuse_in_step(what)
    return ctx


def refuse_in_step(what: str) -> None:
    """``PrimitiveInStepError`` if the calling task is inside a step."""
    inside = _in_step.get()
    if inside is not None:
        raise PrimitiveInStepError(
            f"{what} cannot be called inside {inside}: it is a workflow primitive. Call it in "
            "the workflow function, between steps (inside a step use plain code: "
            "asyncio.sleep(), an HTTP call...)"
        )


def activate(ctx: ExecutionContext | None) -> Any:
    """Make ``ctx`` the running workflow's, in a clean state: a run driven from inside
    another's step, branch or shield (the embedded runtime drives a waited-for child inline)
    must not number its operations as that branch's or think itself in a step."""
    return (
        _current.set(ctx),
        _branch.set(None),
        _in_step.set(None),
        _shield_depth.set(0),
        _lane.set(None),
        _override.set(None),
    )


def deactivate(tokens: Any) -> None:
    current, branch, in_step, shield, lane, override_ = tokens
    _reset(_override, override_)
    _reset(_lane, lane)
    _reset(_shield_depth, shield)
    _reset(_in_step, in_step)
    _reset(_branch, branch)
    _reset(_current, current)

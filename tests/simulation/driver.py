"""The environment loop shared by every configuration, and the embedded one (memory, SQLite).

Each round the environment lists what it could do now (start a program, resume a hook, cancel
a waiting run, deliver a wake-up, run a worker pass, ...), starts one to ``plan.concurrency``
of them as asyncio tasks, and lets the loop run until nothing is runnable (``quiesce``): tasks
then are done or held by the world (a stalled or slow step). When nothing can be done, the
virtual clock jumps to the next thing that has a time (a timer, a lease expiry, a hook's
delivery, a message's visibility, a held step's release). When nothing has a time either, the
seed is over; the invariants then say whether every run ended or provably waits.

Embedded: workers are ``SimLocalRuntime``s over one store (a shared ``InMemoryStorageBackend``,
or one SQLite connection each over one file). Their in-process wake-ups (``spawn``,
``call_later``) become the world's queue of wake-ups, owned by the worker that made them (lost
when it crashes), delivered in any order, sometimes twice; ``run_once`` passes recover the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pyworkflow.core.hook import hash_token
from pyworkflow.core.models import Hook, RunStatus, WorkflowRun
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.exceptions import HookError, HookPayloadError
from pyworkflow.runtime.faults import InjectedCrash, StoreThrottled
from pyworkflow.runtime.journal import request_cancel
from pyworkflow.runtime.local import LocalRuntime
from pyworkflow.runtime.worker import owner_is_dead, run_once
from pyworkflow.service.hooks import deliver_hook
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.memory import InMemoryStorageBackend, is_due
from pyworkflow.storage.sql.server import ServerSQLStorageBackend
from tests.simulation.interpreter import BAD_PAYLOAD, GOOD_PAYLOAD, sim_program
from tests.simulation.invariants import open_ops
from tests.simulation.program import Instr, Program, hooks_of
from tests.simulation.servers import RoundTrips
from tests.simulation.world import CURRENT_DRIVE, SimDispatcher, SimStorage, Worker, World

MAX_ROUNDS = 4000
# Writes and sends a seed may make (typical seeds make a few hundred): past this the engine is
# running away (a drive that replays and conflicts again and again), and the seed is stuck.
MAX_POINTS = 30_000
# A server reply slower than this is a hang (a lock held by a task that will never run), not
# a slow query: the seed is reported stuck instead of waiting forever. Not a timing assertion.
SERVER_REPLY_SECONDS = 120.0
Action = tuple[str, Worker | None, Callable[[], Awaitable[Any]]]


@dataclass(frozen=True)
class Delivery:
    token_hash: str
    index: int


class Driver:
    """The environment of one seed; subclasses bring the runtime (embedded, AWS)."""

    config = "?"

    def __init__(self, w: World, programs: list[Program], store: StorageBackend) -> None:
        self.world = w
        self.programs = programs
        self.store = store  # the environment's own view: never faulted
        self.hooks = hooks_of(programs)
        self.top: dict[int, str] = {}  # program index -> run id of its first run
        self.workers: list[Worker] = []
        self.incarnation: dict[int, int] = {}
        self.tasks: list[tuple[asyncio.Task[Any], Any]] = []
        self.delivered: set[Delivery] = set()
        self.delivering: set[Delivery] = set()
        self.cancelled: set[str] = set()
        self.cancelling: set[str] = set()
        self.starting: set[int] = set()
        self.rounds = 0
        self.stuck: str | None = None
        self.errors: list[str] = []  # unexpected exceptions out of actions
        #: every store made so far; settling waits for those on a database server
        self.stores: list[StorageBackend] = []
        self.round_trips: RoundTrips | None = None  # server stores taking turns
        self._runs: dict[str, WorkflowRun] | None = None
        self._hooks: list[Hook] | None = None
        w.canceller = self.cancel_inside

    # --- to be provided by a configuration -----------------------------------------------------
    async def new_worker(self, index: int, name: str) -> Worker:
        raise NotImplementedError

    async def start_program(self, worker: Worker | None, index: int) -> str:
        raise NotImplementedError

    async def resume(self, worker: Worker | None, hook: Hook, payload: Any, by_name: bool) -> None:
        raise NotImplementedError

    async def cancel(self, worker: Worker | None, run_id: str) -> None:
        raise NotImplementedError

    async def cancel_inside(self, run_id: str) -> None:
        raise NotImplementedError

    async def transport_actions(self) -> list[Action]:
        return []

    async def transport_times(self) -> list[datetime]:
        return []

    def caller(self) -> Worker | None:
        """Who makes API calls (start, resume, cancel): a live worker, or a client."""
        live = self.live_workers()
        return self.world.env_rng.choice(live) if live else None

    async def close(self) -> None:
        for worker in self.workers:
            worker.retire()

    # --- workers -------------------------------------------------------------------------------
    async def setup(self) -> None:
        for i in range(self.world.plan.workers):
            self.incarnation[i] = 0
            self.workers.append(await self.new_worker(i, f"w{i}#0"))

    def live_workers(self) -> list[Worker]:
        return [wk for wk in self.workers if wk.name not in self.world.dead]

    async def replace_dead(self) -> None:
        for i, worker in enumerate(self.workers):
            if worker.name in self.world.dead:
                worker.retire()  # its lease owner is gone: others may take its runs at once
                self.incarnation[i] += 1
                self.workers[i] = await self.new_worker(i, f"w{i}#{self.incarnation[i]}")
                self.world.log("env", f"{worker.name} replaced by {self.workers[i].name}")

    # --- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.setup()
        w = self.world
        try:
            for self.rounds in range(1, MAX_ROUNDS + 1):
                if w.points > MAX_POINTS:
                    self.stuck = f"runaway: over {MAX_POINTS} writes and sends"
                    return
                await self.replace_dead()
                frozen = w.stalled()  # a frozen process starts nothing until it thaws
                actions = [
                    a for a in await self.actions() if a[1] is None or a[1].name not in frozen
                ]
                if actions:
                    n = min(len(actions), w.env_rng.randint(1, w.plan.concurrency))
                    for label, worker, make in w.env_rng.sample(actions, n):
                        self.launch(label, worker, make)
                    await self.settle()
                    continue
                if w.release_due_blockers():
                    await self.settle()
                    continue
                when = await self.next_time()
                if when is None:
                    return
                w.advance_to(self.beat_before(when), "nothing to do before then")
                await self.heartbeats()
            self.stuck = f"round limit ({MAX_ROUNDS}) reached"
        finally:
            w.release_all()
            await self.settle()
            if self.tasks and self.stuck is None:  # blocked for good (a lock never released)
                self.stuck = f"{len(self.tasks)} action(s) never finished"
            for task, _ in self.tasks:
                task.cancel()
            await self.settle()

    def beat_before(self, when: datetime) -> datetime:
        """Time moves at most a third of a lease at a time while an execution is under way in
        a live worker: its heartbeat beats that often."""
        frozen = self.world.stalled()
        beating = [
            wk.runtime.executor.lease
            for wk in self.live_workers()
            if wk.name not in frozen and wk.runtime.executor.active
        ]
        if not beating:
            return when
        return min(when, self.world.clock.now() + min(beating) / 3)

    async def heartbeats(self) -> None:
        """Time moved: each live worker renews the leases of the executions under way in it,
        as its heartbeat timer does in real time (a frozen one does not). Before anyone else
        acts at the new time, so a lease that lapsed meanwhile is renewed first: with real time
        the beat comes every third of a lease."""
        frozen = self.world.stalled()
        for worker in self.live_workers():
            executor = worker.runtime.executor
            if worker.name in frozen or not executor.active:
                continue
            self.launch("heartbeat", worker, executor.renew_leases)
        await self.settle()

    def launch(self, label: str, worker: Worker | None, make: Callable[[], Awaitable[Any]]) -> None:
        name = worker.name if worker else "client"

        async def action() -> Any:
            drive = self.world.begin_drive(name, label)
            try:
                await make()
            except InjectedCrash as crash:
                self.world.end_drive(drive, "crashed", str(crash))
                if name not in self.world.dead:
                    self.world.kill(name, str(crash))
                return
            except StoreThrottled as exc:
                self.world.end_drive(drive, "failed", str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - an engine error: reported, seed fails
                self.world.end_drive(drive, "failed", f"{type(exc).__name__}: {exc}")
                self.errors.append(f"{label} on {name}: {type(exc).__name__}: {exc}")
                return
            self.world.end_drive(drive, "ok")

        if worker is not None:
            worker.busy += 1
        task = asyncio.get_running_loop().create_task(action(), context=_fresh_context())
        self.tasks.append((task, worker))

    async def settle(self) -> None:
        """Run every runnable task until none is (each is done or held by the world).

        A task awaiting a database server is not runnable yet but not held either: its reply
        comes after no fixed number of loop turns. So when no task is ready, settling also
        waits for the servers' in-flight operations (``wait_idle``), or with ``round_trips``
        for the one under way or grants the next (``tests/simulation/servers.py``), and goes
        on; the embedded stores have neither, so their seeds settle exactly as before."""
        self.forget_views()
        loop = asyncio.get_running_loop()
        for _ in range(200_000):
            await asyncio.sleep(0)
            if getattr(loop, "_ready", None):
                continue
            if not await self.wait_for_servers():
                break
        else:
            self.stuck = "actions kept running without end (a livelock)"
        still = []
        for task, worker in self.tasks:
            if task.done():
                if worker is not None:
                    worker.busy -= 1
                if not task.cancelled():
                    task.exception()  # retrieved: actions catch what they expect
            else:
                still.append((task, worker))
        self.tasks = still
        self.forget_views()

    async def wait_for_servers(self) -> bool:
        """Nothing is ready: wait for the server stores' operations under way (with turns:
        the one under way, or grant the next); whether there was any. Without any, it returns
        at once without giving the loop a turn: embedded seeds settle exactly as they did."""
        if not self._servers_busy():
            return False
        try:
            return await asyncio.wait_for(self._server_round_trips(), SERVER_REPLY_SECONDS)
        except TimeoutError:
            self.stuck = "a database server operation never finished (a lock never released)"
            return False

    def _servers_busy(self) -> list[ServerSQLStorageBackend]:
        return [s for s in self.stores if isinstance(s, ServerSQLStorageBackend) and s.in_flight]

    async def _server_round_trips(self) -> bool:
        if self.round_trips is not None:
            return await self.round_trips.step()
        for server in self._servers_busy():
            await server.wait_idle()
        return True

    async def actions(self) -> list[Action]:
        out: list[Action] = []
        for index in range(len(self.programs)):
            if index not in self.top and index not in self.starting:
                out.append((f"start p{index}", self.caller(), self._starter(index)))
        out += await self.hook_actions()
        out += await self.transport_actions()
        return [a for a in out if a[1] is not None or self.client_calls()]

    def client_calls(self) -> bool:
        return False

    def _starter(self, index: int) -> Callable[[], Awaitable[Any]]:
        async def start() -> None:
            self.starting.add(index)
            try:
                self.top[index] = await self.start_program(self._worker_of_task(), index)
                self.world.log("env", f"p{index} is run {self.top[index]}")
            finally:
                self.starting.discard(index)

        return start

    # --- hooks and cancels ---------------------------------------------------------------------
    # --- what the environment sees (read-only; cached until the next action) --------------------
    async def all_runs(self) -> dict[str, WorkflowRun]:
        if self._runs is None:
            if isinstance(self.store, InMemoryStorageBackend):
                # the records themselves, uncopied: the environment never changes them
                self._runs = dict(self.store._runs)
            else:
                page = await self.store.list_runs_page(limit=10_000)
                self._runs = {r.run_id: r for r in page.items}
        return self._runs

    async def all_hooks(self) -> list[Hook]:
        if self._hooks is None:
            if isinstance(self.store, InMemoryStorageBackend):
                hooks = list(self.store._hooks.values())
            else:
                hooks = await self.store.list_hooks(limit=10_000)
            # A hook record whose creation failed under its execution was made again by a
            # later one: the run waits on the newest record of its hook id (``find_hook``), so
            # the environment's deliveries are planned relative to that one only.
            newest: dict[tuple[str, str], Hook] = {}
            for h in sorted(hooks, key=lambda h: (h.created_at, h.op, h.token_hash)):
                newest[(h.run_id, h.hook_id)] = h
            self._hooks = sorted(newest.values(), key=lambda h: (h.created_at, h.token_hash))
        return self._hooks

    async def child_ended(self, run: WorkflowRun) -> bool:
        """Whether a child ``run`` waits for has ended: only then does a worker's check of a
        run waiting for children (a wake-up without timer, LocalRuntime's child check) change
        anything; otherwise the environment need not move time for it."""
        runs = await self.all_runs()
        waits = open_ops(await self.store.get_events(run.run_id))
        for event in waits.values():
            child = runs.get(str(event.data.get("child_run_id")))
            while child is not None and child.status == RunStatus.CONTINUED_AS_NEW:
                child = runs.get(child.continued_to_run_id or "")
            if child is not None and child.status.is_terminal:
                return True
        return False

    async def due_ids(self) -> frozenset[str]:
        now = self.world.clock.now()
        return frozenset(r.run_id for r in (await self.all_runs()).values() if is_due(r, now))

    def forget_views(self) -> None:
        self._runs, self._hooks = None, None

    async def hook_actions(self) -> list[Action]:
        now = self.world.clock.now()
        out: list[Action] = []
        for hook in await self.all_hooks():
            instr = self.hooks.get(hook.name)
            if instr is None:
                continue
            for i, plan in enumerate(instr["deliveries"]):
                d = Delivery(hook.token_hash, i)
                if d in self.delivered or d in self.delivering:
                    continue
                if hook.created_at + timedelta(seconds=plan["after"]) <= now:
                    out.append(
                        (
                            f"resume {hook.name} #{i} ({'good' if plan['good'] else 'bad'})",
                            self.caller(),
                            self._resumer(hook, instr, d),
                        )
                    )
            if (
                instr["cancel_when_waiting"]
                and hook.run_id not in self.cancelled
                and hook.run_id not in self.cancelling
                and hook.status.value == "pending"
            ):
                run = (await self.all_runs()).get(hook.run_id)
                if run is not None and run.status == RunStatus.SUSPENDED:
                    out.append(
                        (
                            f"cancel {hook.run_id} (waits on {hook.name})",
                            self.caller(),
                            self._canceller(hook.run_id),
                        )
                    )
        return out

    def _resumer(self, hook: Hook, instr: Instr, d: Delivery) -> Callable[[], Awaitable[Any]]:
        plan = instr["deliveries"][d.index]
        good = plan["good"]

        async def resume() -> None:
            worker = self._worker_of_task()
            self.delivering.add(d)
            try:
                await self.resume(
                    worker,
                    hook,
                    GOOD_PAYLOAD if good else BAD_PAYLOAD,
                    instr["by_name"] or hook.token_hash not in self.world.tokens,
                )
                if not good and instr["typed"]:
                    self.world.violations.append(
                        f"a bad payload for typed hook {hook.name} was accepted"
                    )
                if plan.get("late"):
                    self.world.violations.append(
                        f"a payload for {hook.name} was accepted after its timeout"
                    )
            except HookPayloadError:
                if good or not instr["typed"]:
                    self.world.violations.append(f"a good payload for {hook.name} was refused")
            except HookError as exc:
                self.world.log("env", f"resume {hook.name}: {type(exc).__name__}")
            except BaseException:
                self.delivering.discard(d)  # the call died: its caller makes it again
                raise
            self.delivering.discard(d)
            self.delivered.add(d)

        return resume

    def _canceller(self, run_id: str) -> Callable[[], Awaitable[Any]]:
        async def cancel() -> None:
            self.cancelling.add(run_id)
            try:
                await self.cancel(self._worker_of_task(), run_id)
            finally:
                self.cancelling.discard(run_id)
            self.cancelled.add(run_id)

        return cancel

    def _worker_of_task(self) -> Worker | None:
        drive = CURRENT_DRIVE.get()
        return next((wk for wk in self.workers if drive and wk.name == drive.worker), None)

    # --- time ----------------------------------------------------------------------------------
    async def next_time(self) -> datetime | None:
        now = self.world.clock.now()
        times: list[datetime] = [b.until for b in self.world.blockers]
        for hook in await self.all_hooks():
            instr = self.hooks.get(hook.name)
            for i, plan in enumerate(instr["deliveries"] if instr else []):
                if Delivery(hook.token_hash, i) not in self.delivered:
                    times.append(hook.created_at + timedelta(seconds=plan["after"]))
        times += await self.transport_times()
        future = [t for t in times if t > now]
        return min(future) if future else None

    async def open_runs(self) -> list[WorkflowRun]:
        return [r for r in (await self.all_runs()).values() if not r.status.is_terminal]


def _fresh_context() -> Any:
    import contextvars

    ctx = contextvars.copy_context()
    ctx.run(CURRENT_DRIVE.set, None)
    return ctx


# --- embedded ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Wake:
    due: datetime
    run_id: str
    worker: str
    serial: int


class SimLocalRuntime(LocalRuntime):
    """The embedded runtime with its in-process wake-ups handed to the world's queue."""

    driver: EmbeddedDriver
    worker_name: str

    def spawn(self, run_id: str) -> None:
        self.driver.enqueue(run_id, self.clock.now(), self.worker_name)

    async def wake_at(self, run_id: str, when: datetime, *, key: str = "") -> None:
        self.driver.enqueue(run_id, when, self.worker_name)


class EmbeddedDriver(Driver):
    def __init__(
        self,
        w: World,
        programs: list[Program],
        store: StorageBackend,
        make_store: Callable[[], StorageBackend],
        config: str,
        *,
        concurrent_passes: bool = True,
    ) -> None:
        super().__init__(w, programs, store)
        self.concurrent_passes = concurrent_passes
        self.make_store = make_store
        self.config = config
        self.wakes: list[Wake] = []
        self.serial = 0
        self.polled: dict[str, tuple[datetime, frozenset[str], int]] = {}

    def enqueue(self, run_id: str, when: datetime, worker: str) -> None:
        """A ``spawn``/``call_later`` of ``worker``. Two timers of one worker for the same run
        and time are one (the second drive would find nothing to do); duplicates are made at
        delivery instead."""
        if any(wk.run_id == run_id and wk.due == when and wk.worker == worker for wk in self.wakes):
            return
        self.serial += 1
        self.wakes.append(Wake(when, run_id, worker, self.serial))
        delay = (when - self.world.clock.now()).total_seconds()
        self.world.log(worker, f"wake-up of {run_id} at +{delay:g}s")

    async def new_worker(self, index: int, name: str) -> Worker:
        storage = SimStorage(self.make_store(), self.world, name)
        rt = SimLocalRuntime(
            storage, clock=self.world.clock, lease_seconds=self.world.lease.total_seconds()
        )
        rt.driver, rt.worker_name = self, name
        rt.executor.dispatcher = SimDispatcher(rt, self.world, name)
        return Worker(name, rt, rt.executor.owner)

    async def start_program(self, worker: Worker | None, index: int) -> str:
        """``pyworkflow.start`` with an idempotency key, retried by its caller after a crash."""
        assert worker is not None
        rt: SimLocalRuntime = worker.runtime
        key = f"sim-{self.world.seed}-p{index}"
        existing = await rt.storage.get_run_by_idempotency_key(key)
        if existing is not None:
            return existing.run_id
        defn = get_workflow_by_func(sim_program)
        assert defn is not None
        run, history = await rt.executor.create(
            defn, (self.programs[index],), {}, idempotency_key=key, lease=True
        )
        self.top[index] = run.run_id
        await rt.drive_created(run, history)
        return run.run_id

    async def resume(self, worker: Worker | None, hook: Hook, payload: Any, by_name: bool) -> None:
        assert worker is not None
        rt: SimLocalRuntime = worker.runtime
        if by_name:
            found = await rt.storage.find_hook(hook.run_id, name=hook.name)
        else:
            found = await rt.storage.get_hook_by_hash(
                hash_token(self.world.tokens[hook.token_hash])
            )
        if found is None:
            raise HookError(f"{hook.name} not found")
        await deliver_hook(rt, found, payload)

    async def cancel(self, worker: Worker | None, run_id: str) -> None:
        """``pyworkflow.cancel_workflow`` on this worker's runtime."""
        assert worker is not None
        rt: SimLocalRuntime = worker.runtime
        run = await request_cancel(rt.storage, rt.clock, run_id, "environment")
        if run is None:
            return
        if rt.is_active(run_id):
            rt.interrupt(run_id)
        elif run.status in (RunStatus.SUSPENDED, RunStatus.PENDING):
            await rt.drive(run_id, follow_chain=False)
        else:
            rt.spawn(run_id)

    async def cancel_inside(self, run_id: str) -> None:
        """The run's own cancel instruction: flag it, and have its execution reload (what
        ``cancel_workflow`` does for a run active in this process)."""
        await request_cancel(self.store, self.world.clock, run_id, "cancel instruction")
        for worker in self.live_workers():
            worker.runtime.interrupt(run_id)

    async def transport_actions(self) -> list[Action]:
        now = self.world.clock.now()
        out: list[Action] = []
        live = {wk.name: wk for wk in self.live_workers()}
        self.wakes = [wk for wk in self.wakes if wk.worker in live]  # died with their process
        for wake in self.wakes:
            if wake.due <= now:
                out.append((f"wake-up {wake.run_id}", live[wake.worker], self._waker(wake)))
        due = await self._due_ids()
        passing = any(
            d.action == "worker pass" and d.status == "running" for d in self.world.drives
        )
        # a worker polls when something is due that it has not tried in this state of the
        # world yet (the time, what is due, and how many writes and sends were made)
        state = (now, due, self.world.points)
        for worker in live.values():
            if (
                due
                and self.polled.get(worker.name) != state
                and (self.concurrent_passes or not passing)
            ):
                out.append(("worker pass", worker, self._pass(worker, state)))
                if not self.concurrent_passes:
                    break
        return out

    def _pass(
        self, worker: Worker, state: tuple[datetime, frozenset[str], int]
    ) -> Callable[[], Awaitable[Any]]:
        async def poll() -> None:
            self.polled[worker.name] = state
            await run_once(worker.runtime)

        return poll

    def _waker(self, wake: Wake) -> Callable[[], Awaitable[Any]]:
        async def drive() -> None:
            if wake in self.wakes and self.world.env_rng.random() >= self.world.plan.duplicate_rate:
                self.wakes.remove(wake)  # else delivered again later: a duplicate
            worker = self._worker_of_task()
            assert worker is not None
            await worker.runtime.drive(wake.run_id, follow_chain=False)

        return drive

    async def _due_ids(self) -> frozenset[str]:
        due = set(await self.due_ids())
        # runs leased to a crashed process: a worker pass steals them at once
        due |= {
            r.run_id
            for r in await self.open_runs()
            if r.status == RunStatus.RUNNING and owner_is_dead(r.lease_owner)
        }
        return frozenset(due)

    async def transport_times(self) -> list[datetime]:
        times = [wk.due for wk in self.wakes]
        for run in await self.open_runs():
            if (
                run.status == RunStatus.SUSPENDED
                and run.wake_at is not None
                and (run.wake_key is not None or await self.child_ended(run))
            ):
                times.append(run.wake_at)
            if run.lease_expires_at is not None and run.status in (
                RunStatus.RUNNING,
                RunStatus.PENDING,
            ):
                times.append(run.lease_expires_at)
        return times

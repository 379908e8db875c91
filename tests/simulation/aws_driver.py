"""The AWS configuration: ``AwsRuntime.drive_message`` (the worker Lambda's path) over SQLite,
with an in-process SQS queue and EventBridge Scheduler standing in for the real services.

- ``SimQueue``: a standard queue. Messages become visible after their ``DelaySeconds``; a
  receive hides one for the visibility timeout and counts it (``receive_count``); a handled
  message is deleted, a failed one (the drive raised, or its container crashed) reappears when
  its visibility ends; any visible message may be received next (no order), and a send is
  sometimes delivered twice (at-least-once).
- ``SimScheduler``: one-time ``at(...)`` schedules (rounded up to the second, like
  ``transport.scheduler.at_expression``) that send their message and delete themselves.
- ``SimAwsDispatcher``: ``AwsDispatcher``'s decisions (wake: a message; a wait up to 900 s: a
  delayed message; longer: a schedule named after the wait's key; forget: delete it) on those.

Containers (workers) take one message at a time. The client (API calls: start, resume a hook,
cancel) is an ``AwsRuntime`` of its own; when it crashes its caller retries the call. The
deployed stack's sweep runs every ``SWEEP_SECONDS`` of virtual time when some run is due.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pyworkflow.core.models import Hook, RunStatus, WorkflowRun
from pyworkflow.exceptions import HookNotFoundError
from pyworkflow.runtime.aws import AwsRuntime, PoisonMessageError, lease_for_visibility
from pyworkflow.runtime.journal import request_cancel
from pyworkflow.storage.base import StorageBackend
from pyworkflow.transport.aws import AwsDispatcher
from pyworkflow.transport.sqs import SQS_MAX_DELAY_SECONDS
from tests.aws.ops import AwsOps
from tests.simulation.driver import Action, Driver
from tests.simulation.interpreter import sim_program
from tests.simulation.program import Program
from tests.simulation.world import START, SimDispatcher, SimStorage, Worker, World

VISIBILITY_SECONDS = 120.0
LEASE_SECONDS = lease_for_visibility(VISIBILITY_SECONDS)
SWEEP_SECONDS = 300.0
# More deliveries than a seed's faults can fail (3 crashes + 3 store errors): the poison-message
# verdict is the engine giving up, which would differ from the fault-free run by design.
MAX_RECEIVES = 10


@dataclass
class Message:
    id: int
    body: str
    visible_at: datetime
    receive_count: int = 0
    in_flight: bool = False


class SimQueue:
    def __init__(self, w: World) -> None:
        self.world = w
        self.messages: list[Message] = []
        self.serial = 0
        self.dead_letters: list[Message] = []

    def send(self, body: str, delay: float = 0.0) -> None:
        copies = 2 if self.world.env_rng.random() < self.world.plan.duplicate_rate else 1
        for _ in range(copies):
            self.serial += 1
            self.messages.append(
                Message(self.serial, body, self.world.clock.now() + timedelta(seconds=delay))
            )
        self.world.log(
            "sqs",
            f"send m{self.serial} {body} delay={delay:g}" + (" (twice)" if copies > 1 else ""),
        )

    def visible(self) -> list[Message]:
        now = self.world.clock.now()
        return [m for m in self.messages if not m.in_flight and m.visible_at <= now]

    def receive(self, message: Message) -> None:
        message.receive_count += 1
        message.in_flight = True
        message.visible_at = self.world.clock.now() + timedelta(seconds=VISIBILITY_SECONDS)

    def settle(self, message: Message, *, ok: bool) -> None:
        message.in_flight = False
        if ok and message in self.messages:
            self.messages.remove(message)  # else: visible again when its visibility ends

    def times(self) -> list[datetime]:
        return [m.visible_at for m in self.messages]


class SimScheduler:
    def __init__(self, queue: SimQueue) -> None:
        self.queue = queue
        self.schedules: dict[str, tuple[datetime, str]] = {}

    def create(self, name: str, when: datetime, body: str) -> None:
        if name in self.schedules:
            return  # ConflictException: an earlier attempt of this suspension made it
        if when.microsecond:
            when = when.replace(microsecond=0) + timedelta(seconds=1)  # at() is to the second
        self.schedules[name] = (when, body)

    def delete(self, name: str) -> bool:
        return self.schedules.pop(name, None) is not None

    def fire_due(self, now: datetime) -> bool:
        due = sorted((when, name) for name, (when, _) in self.schedules.items() if when <= now)
        for _, name in due:
            _, body = self.schedules.pop(name)
            self.queue.world.log("scheduler", f"fires {name}")
            self.queue.send(body)
        return bool(due)


class SimAwsDispatcher:
    """``AwsDispatcher`` with the simulated queue and scheduler as its services."""

    def __init__(self, queue: SimQueue, scheduler: SimScheduler, w: World) -> None:
        self.queue = queue
        self.scheduler = scheduler
        self.clock = w.clock
        self.requests: Counter[str] = Counter()

    async def wake(self, run_id: str, *, reason: str = "wake") -> None:
        self.queue.send(AwsDispatcher.body(run_id, reason))

    async def wake_at(self, run_id: str, when: datetime, *, key: str) -> None:
        delay = (when - self.clock.now()).total_seconds()
        body = AwsDispatcher.body(run_id, "timer", key)
        if delay <= 0:
            self.queue.send(body)
        elif delay <= SQS_MAX_DELAY_SECONDS:
            self.queue.send(body, math.ceil(delay))
        else:
            from pyworkflow.transport.scheduler import schedule_name

            self.scheduler.create(schedule_name(key), when, AwsDispatcher.body(run_id, "timer"))

    async def start_child(self, run_id: str, *, wait: bool) -> None:
        self.queue.send(AwsDispatcher.body(run_id, "child"))

    async def forget(self, run: WorkflowRun) -> None:
        if run.wake_key:
            await self.delete_schedule(run.wake_key)

    async def delete_schedule(self, key: str) -> bool:
        from pyworkflow.transport.scheduler import schedule_name

        return self.scheduler.delete(schedule_name(key))

    async def close(self) -> None:
        return None


class AwsDriver(Driver):
    config = "aws"

    def __init__(
        self,
        w: World,
        programs: list[Program],
        store: StorageBackend,
        make_store: Callable[[], StorageBackend],
    ) -> None:
        super().__init__(w, programs, store)
        self.make_store = make_store
        self.queue = SimQueue(w)
        self.scheduler = SimScheduler(self.queue)
        self.client: AwsRuntime | None = None
        self.client_name = "client#0"
        self.clients = 0
        self.last_sweep = START

    def _runtime(self, name: str) -> AwsRuntime:
        inner = SimAwsDispatcher(self.queue, self.scheduler, self.world)
        dispatcher = SimDispatcher(inner, self.world, name)
        rt = AwsRuntime(
            SimStorage(self.make_store(), self.world, name),
            dispatcher,  # type: ignore[arg-type]
            clock=self.world.clock,
            lease_seconds=LEASE_SECONDS,
            max_receives=MAX_RECEIVES,
        )
        return rt

    async def new_worker(self, index: int, name: str) -> Worker:
        rt = self._runtime(name)
        return Worker(name, rt, rt.executor.owner)

    def _worker_of_task(self) -> Worker | None:
        found = super()._worker_of_task()
        if found is None and self.client is not None:
            return Worker(self.client_name, self.client, self.client.executor.owner)
        return found

    def client_calls(self) -> bool:
        return True

    def caller(self) -> Worker | None:
        return None  # API calls come from the client, not a container

    def _client(self) -> AwsRuntime:
        if self.client is None or self.client_name in self.world.dead:
            if self.client is not None:
                from pyworkflow.runtime.executor import LIVE_OWNERS

                LIVE_OWNERS.discard(self.client.executor.owner)
            self.clients += 1
            self.client_name = f"client#{self.clients}"
            self.client = self._runtime(self.client_name)
        return self.client

    def launch(self, label: str, worker: Worker | None, make: Callable[[], Awaitable[Any]]) -> None:
        if worker is None:
            self._client()
            worker = Worker(self.client_name, self.client, self.client.executor.owner)  # type: ignore[union-attr]
        super().launch(label, worker, make)

    async def close(self) -> None:
        await super().close()
        if self.client is not None:
            from pyworkflow.runtime.executor import LIVE_OWNERS

            LIVE_OWNERS.discard(self.client.executor.owner)

    # --- API calls -----------------------------------------------------------------------------
    async def start_program(self, worker: Worker | None, index: int) -> str:
        assert worker is not None
        key = f"sim-{self.world.seed}-p{index}"
        return await AwsOps(worker.runtime).start(
            sim_program, self.programs[index], idempotency_key=key
        )

    async def resume(self, worker: Worker | None, hook: Hook, payload: Any, by_name: bool) -> None:
        assert worker is not None
        rt = AwsOps(worker.runtime)
        if by_name:
            await rt.resume_hook_by_name(hook.run_id, hook.name, payload)
            return
        try:
            await rt.resume_hook(self.world.tokens[hook.token_hash], payload)
        except HookNotFoundError:  # a token of an attempt whose hook record was replaced
            await rt.resume_hook_by_name(hook.run_id, hook.name, payload)

    async def cancel(self, worker: Worker | None, run_id: str) -> None:
        assert worker is not None
        await AwsOps(worker.runtime).cancel(run_id, "environment")

    async def cancel_inside(self, run_id: str) -> None:
        await request_cancel(self.store, self.world.clock, run_id, "cancel instruction")
        self.queue.send(AwsDispatcher.body(run_id, "cancel"))

    # --- transport -----------------------------------------------------------------------------
    async def transport_actions(self) -> list[Action]:
        now = self.world.clock.now()
        out: list[Action] = []
        self.scheduler.fire_due(now)
        idle = [wk for wk in self.live_workers() if wk.busy == 0]
        for message in self.queue.visible():
            if not idle:
                break
            worker = self.world.env_rng.choice(idle)
            idle.remove(worker)
            out.append(
                (
                    f"deliver m{message.id} {message.body} (receive {message.receive_count + 1})",
                    worker,
                    self._deliverer(message),
                )
            )
        tick = self.last_sweep + timedelta(seconds=SWEEP_SECONDS)
        if now >= tick:
            if await self.due_ids():
                out.append(("sweep", None, self._sweeper()))
        return out

    def _deliverer(self, message: Message) -> Callable[[], Awaitable[Any]]:
        async def deliver() -> None:
            worker = self._worker_of_task()
            assert worker is not None
            self.queue.receive(message)
            ok = False
            try:
                outcome = await worker.runtime.drive_message(
                    message.body, receive_count=message.receive_count
                )
                ok = True
                self.world.log(worker.name, f"m{message.id}: {outcome.status} noop={outcome.noop}")
            except PoisonMessageError as exc:
                ok = True  # to the dead-letter queue
                self.queue.dead_letters.append(message)
                self.world.log(worker.name, f"m{message.id} to the DLQ: {exc}")
            finally:
                self.queue.settle(message, ok=ok)

        return deliver

    def _sweeper(self) -> Callable[[], Awaitable[Any]]:
        async def sweep() -> None:
            worker = self._worker_of_task()
            assert worker is not None
            self.last_sweep = self.world.clock.now()
            woken = await worker.runtime.sweep()
            self.world.log(worker.name, f"sweep woke {woken}")

        return sweep

    async def transport_times(self) -> list[datetime]:
        times = self.queue.times() + [when for when, _ in self.scheduler.schedules.values()]
        due: list[datetime] = []
        for run in await self.open_runs():
            if run.status == RunStatus.SUSPENDED and run.wake_at is not None:
                due.append(run.wake_at)
            if run.lease_expires_at is not None and run.status in (
                RunStatus.RUNNING,
                RunStatus.PENDING,
            ):
                due.append(run.lease_expires_at)
            if run.status == RunStatus.PENDING:
                due.append(run.created_at)
        if due:
            # the sweep notices a due run at its first tick after it is due
            first = min(due)
            ticks = max(0, math.ceil((first - self.last_sweep).total_seconds() / SWEEP_SECONDS))
            times.append(self.last_sweep + timedelta(seconds=max(1, ticks) * SWEEP_SECONDS))
        return times

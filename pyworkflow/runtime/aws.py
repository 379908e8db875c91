"""The AWS runtime: the same executor as the embedded one, with SQS and EventBridge Scheduler as
its transport (``pyworkflow.transport.aws.AwsDispatcher``).

Every wake-up of a run is one SQS message on the work queue (``transport.messages``); the worker
Lambda (``pyworkflow/handlers/worker.py``) hands it to ``AwsRuntime.drive_message``, which drives
the run named in it, or fires the schedule a tick names.

Unlike ``LocalRuntime`` nothing here waits in-process: a run that must wait suspends, and the
message that wakes it arrives in some later invocation, possibly in another container.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyworkflow.config import get_config, get_storage
from pyworkflow.core.clock import Clock, SystemClock, new_id
from pyworkflow.core.context import ExecutionContext, Limits
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import RunStatus, Schedule, ScheduleSpec, WorkflowRun
from pyworkflow.core.registry import WorkflowDefinition
from pyworkflow.exceptions import ConcurrencyError, WorkflowError
from pyworkflow.observability.plugins import incoming_trace
from pyworkflow.runtime.aws_schedules import AwsSchedules
from pyworkflow.runtime.executor import MAX_RESTARTS, Executor, written_run
from pyworkflow.settings import get_settings
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.shared import due_key
from pyworkflow.transport.aws import AwsDispatcher
from pyworkflow.transport.messages import (
    BucketTick,
    MalformedMessageError,
    ScheduleTick,
    bucket_body,
    parse_message,
)
from pyworkflow.transport.sqs import Wake
from pyworkflow.transport.storm import rearm_delay

logger = logging.getLogger("pyworkflow")

DEFAULT_VISIBILITY_TIMEOUT = 900.0
DEFAULT_MAX_RECEIVES = 5
POISON_ERROR_TYPE = "PoisonMessageError"
#: runs a due bucket's sweep reads a page
BUCKET_PAGE = 1000
#: a bucket sweep with less time left than this hands the rest on (a continuation message)
BUCKET_MARGIN_SECONDS = 30.0


class PoisonMessageError(WorkflowError):
    """A message kept failing: its run is marked failed and the message goes to the DLQ."""


def _setting(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass
class DriveStats:
    """What executions did, for the worker's metrics (counted from what the executor already
    holds: no extra reads)."""

    runs_started: int = 0
    events_replayed: int = 0
    steps_executed: int = 0


_STEP_ENDINGS = frozenset(
    {EventType.STEP_COMPLETED, EventType.STEP_FAILED, EventType.STEP_RETRYING}
)


class AwsExecutor(Executor):
    """The executor, counting replayed events and executed steps for metrics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = DriveStats()
        self._replayed: dict[str, int] = {}

    async def rearm_timer(self, run_id: str, when: datetime, key: str) -> None:
        """A Scheduler hop woke the run early (on purpose: it fires ahead of Scheduler's minute
        of imprecision): the rest of the wait rides on an SQS delay, whatever
        ``PYWORKFLOW_SQS_DELAY_MAX_SECONDS`` says about a wait's first hop."""
        dispatcher = self.dispatcher
        if isinstance(dispatcher, AwsDispatcher):
            await dispatcher.rearm(run_id, when, key=key)
        else:  # a stand-in dispatcher (the simulation's): its own wake_at
            await super().rearm_timer(run_id, when, key)

    async def execute(self, run: WorkflowRun, history: list[Event]) -> WorkflowRun:
        self.stats.events_replayed += len(history)
        if len(history) <= 1:
            self.stats.runs_started += 1
        self._replayed[run.run_id] = len(history)
        return await super().execute(run, history)

    def on_execution_done(self, ctx: ExecutionContext) -> None:
        # The step endings this execution recorded: those past the history it replayed.
        before = self._replayed.pop(ctx.run_id, len(ctx.history))
        # (with those recorded and still to be written with the outcome)
        recorded = [*ctx.history[before:], *ctx.unwritten]
        self.stats.steps_executed += sum(1 for e in recorded if e.type in _STEP_ENDINGS)


@dataclass
class DriveOutcome:
    """What one message did to its run."""

    run_id: str | None
    status: RunStatus | None = None
    noop: bool = False  # duplicate/stale: finished run, or leased to a live worker
    malformed: bool = False
    stats: DriveStats = field(default_factory=DriveStats)
    started: list[str] = field(default_factory=list)  # runs a schedule tick started
    woken: int = 0  # runs a due bucket's sweep woke


def storage_from_env() -> StorageBackend:
    """``PYWORKFLOW_STORAGE=dynamodb`` gives the DynamoDB backend (table, endpoint and region
    from its own env: ``PYWORKFLOW_TABLE``...); anything else is the embedded choice of
    ``pyworkflow.config``. Payloads over the threshold go to ``PYWORKFLOW_BLOB_BUCKET``
    (``pyworkflow.storage.offload``); without a bucket, DynamoDB's item limit is a clear error."""
    settings = get_settings()
    from pyworkflow.runtime.storage_factory import database_url, dynamodb_storage

    # PYWORKFLOW_DATABASE_URL (Aurora PostgreSQL/MySQL) wins over the template's "dynamodb"
    if database_url(settings) is None and settings.storage_kind.lower() == "dynamodb":
        return dynamodb_storage(settings)
    return get_storage()  # offloads too when PYWORKFLOW_BLOB_* says so


class AwsRuntime:
    """Storage + an executor whose dispatcher is SQS/Scheduler. Drives one message at a time;
    never waits in-process."""

    def __init__(
        self,
        storage: StorageBackend,
        dispatcher: AwsDispatcher,
        *,
        clock: Clock | None = None,
        lease_seconds: float | None = None,
        max_receives: int | None = None,
    ) -> None:
        config = get_config()
        self.storage = storage
        self.dispatcher = dispatcher
        self.clock = clock or config.clock or SystemClock()
        if lease_seconds is None:
            lease_seconds = lease_for_visibility(
                _setting(get_settings().visibility_timeout, DEFAULT_VISIBILITY_TIMEOUT)
            )
        self.max_receives = max_receives or int(
            _setting(get_settings().max_receives, DEFAULT_MAX_RECEIVES)
        )
        self.executor = AwsExecutor(
            storage,
            self.clock,
            dispatcher,
            lease_seconds=lease_seconds,
            # Nothing waits in-process: a Lambda second costs more than a timer.
            inline_wait_max=0.0,
            inline_sleep_max=0.0,
            limits=Limits(
                config.event_soft_limit, config.event_hard_limit, config.event_warning_interval
            ),
        )
        #: schedules: the embedded operations plus their EventBridge schedules
        self.schedules = AwsSchedules(self)

    @classmethod
    def from_env(cls, *, clock: Clock | None = None) -> AwsRuntime:
        return cls(storage_from_env(), AwsDispatcher.from_env(clock=clock), clock=clock)

    async def close(self) -> None:
        """Close the clients of the dispatcher and the storage (both reopen lazily)."""
        from pyworkflow.runtime.executor import LIVE_OWNERS

        LIVE_OWNERS.discard(self.executor.owner)
        await self.dispatcher.close()
        await self.storage.close()

    # --- the worker's side -----------------------------------------------------------------
    async def drive_message(
        self,
        body: str | bytes | dict[str, Any],
        *,
        time_left: Callable[[], float] | None = None,
        receive_count: int = 1,
    ) -> DriveOutcome:
        """Drive the run a queue message names, until it ends or must wait.

        Returns normally when the message is done with (including a malformed body, a finished
        run, or a run another live worker holds). Raises when it should be delivered again; at
        ``receive_count >= max_receives`` the run is first marked failed with the reason and
        ``PoisonMessageError`` is raised, so the message ends in the dead-letter queue.
        """
        try:
            message = parse_message(body)
        except MalformedMessageError as exc:
            logger.error("dropping malformed message: %s", exc)
            return DriveOutcome(run_id=None, malformed=True)
        if isinstance(message, ScheduleTick):
            started = await self.schedules.fire(message)
            return DriveOutcome(run_id=None, noop=not started, started=started)
        if isinstance(message, BucketTick):
            woken = await self.wake_bucket(message, time_left=time_left)
            return DriveOutcome(run_id=None, noop=not woken, woken=woken)
        self.executor.stats = stats = DriveStats()
        self.executor.time_left = time_left
        try:
            with incoming_trace(message.trace):  # the sender's trace goes on (tracing only)
                run = await self.executor.drive(
                    message.run_id, only_if_due=True, timer_key=message.key
                )
        except Exception as exc:
            if receive_count < self.max_receives:
                raise
            reason = (
                f"gave up after {receive_count} deliveries of a wake-up message: "
                f"{type(exc).__name__}: {exc}"
            )
            await self.fail_run(message.run_id, reason)
            raise PoisonMessageError(f"run {message.run_id}: {reason}") from exc
        finally:
            self.executor.time_left = None
        if (
            run.status == RunStatus.FAILED
            and run.error_type == POISON_ERROR_TYPE
            and receive_count >= self.max_receives
        ):
            # Marked failed by an earlier delivery of this message: keep failing it so SQS
            # moves it to the dead-letter queue, where an operator can see it.
            raise PoisonMessageError(f"run {run.run_id}: {run.error}")
        held = run.lease_owner not in (None, self.executor.owner)
        noop = stats.events_replayed == 0 and (run.status.is_terminal or held)
        return DriveOutcome(run_id=run.run_id, status=run.status, noop=noop, stats=stats)

    async def sweep(self, *, limit: int = 100) -> list[str]:
        """Wake every run that is due but may have no timer (a worker that died between
        recording a wait and creating its timer), and fire every schedule that is due (a tick
        lost to an outage). Meant for a rate() schedule: one Query per index shard plus one
        of schedules, one SQS message per due run, no Scan."""
        due = await self.storage.list_due_runs(self.clock.now(), limit=limit)
        for run in due:
            await self.dispatcher.wake(run.run_id, reason="sweep")
        started = await self.schedules.fire_due()  # ticks lost to an outage are made up here
        return [run.run_id for run in due] + started

    async def wake_bucket(
        self, tick: BucketTick, *, time_left: Callable[[], float] | None = None
    ) -> int:
        """A due bucket's schedule fired: wake every run due before ``tick.until``, each with
        one message delayed to its own time (SendMessageBatch, 10 a request), page by page of
        the due index. Runs already due go at once. With less than ``BUCKET_MARGIN_SECONDS``
        left, the rest is handed to a continuation message. Writes nothing to the store.
        Returns how many wake-ups were sent."""
        after = tick.after
        sent = 0
        while True:
            page = await self.storage.list_due_runs(tick.until, limit=BUCKET_PAGE, after=after)
            if not page:
                return sent
            now = self.clock.now()
            wakes = [
                Wake(
                    run.run_id,
                    "timer" if run.wake_key else "sweep",
                    delay=rearm_delay(run.wake_at, now) if run.wake_at else 0,
                    key=run.wake_key,
                )
                for run in page
            ]
            await self.dispatcher.wake_many(wakes)
            sent += len(wakes)
            after = due_key(page[-1])
            if len(page) < BUCKET_PAGE:
                return sent
            if time_left is not None and time_left() < BUCKET_MARGIN_SECONDS:
                body = bucket_body(tick.due_bucket, tick.until, after)
                await self.dispatcher.queue.send_body(body)
                logger.info("bucket %s: %d woken, the rest continues", tick.due_bucket, sent)
                return sent

    async def fail_run(self, run_id: str, reason: str) -> WorkflowRun | None:
        """Mark ``run_id`` failed with ``reason``: a compare-and-set of the record to FAILED and
        a ``workflow.failed`` event at the next sequence, in one write. Its parent is told and
        its pending schedule dropped, as for any other ending. None if the run does not exist;
        the run as found if it had already ended."""
        for _ in range(MAX_RESTARTS):
            run = await self.storage.get_run(run_id)
            if run is None or run.status.is_terminal:
                return run
            history = await self.storage.get_events(run_id)
            now = self.clock.now()
            event = Event(
                event_id=new_id("evt"),
                run_id=run_id,
                type=EventType.WORKFLOW_FAILED,
                timestamp=now,
                sequence=(history[-1].sequence + 1) if history else 1,
                data={"error": reason, "error_type": POISON_ERROR_TYPE},
            )
            failed = run.model_copy(
                update={
                    "status": RunStatus.FAILED,
                    "error": reason,
                    "error_type": POISON_ERROR_TYPE,
                    "completed_at": now,
                    "updated_at": now,
                    "wake_at": None,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
            )
            try:
                stored = written_run(
                    await self.storage.append_events(
                        run_id, [event], run=failed, expected_version=run.version
                    ),
                    run_id,
                )
            except ConcurrencyError:
                continue
            logger.error("run %s failed: %s", run_id, reason)
            await self.dispatcher.forget(stored)
            if stored.parent_run_id:
                await self.executor.touch(stored.parent_run_id)
                await self.dispatcher.wake(stored.parent_run_id, reason="child-ended")
            return stored
        raise WorkflowError(f"Could not mark run {run_id} failed: too many conflicts")

    # --- Runtime (pyworkflow.runtime.protocol): the client's side -------------------------------
    # Nothing is driven here: runs are created unleased and every "move it along" is a wake-up
    # message, so the API and the AWS-direct client answer at once and the worker drives.
    async def create_run(
        self,
        defn: WorkflowDefinition,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        drive_here: bool = True,
        schedule_id: str | None = None,
    ) -> tuple[WorkflowRun, list[Event]]:
        """Always unleased: one leased to this process would wait out its lease."""
        return await self.executor.create(
            defn,
            args,
            kwargs,
            run_id=run_id,
            idempotency_key=idempotency_key,
            lease=False,
            schedule_id=schedule_id,
        )

    async def begin(self, run: WorkflowRun, history: list[Event]) -> WorkflowRun:
        await self.dispatcher.wake(run.run_id, reason="start")
        return run

    async def advance(self, run_id: str, *, reason: str, follow_chain: bool = True) -> None:
        await self.dispatcher.wake(run_id, reason=reason)

    async def wake(self, run_id: str, *, reason: str = "wake") -> None:
        await self.dispatcher.wake(run_id, reason=reason)

    def is_active(self, run_id: str) -> bool:
        """Executions here last one message; none is ever going on under an operation."""
        return False

    def interrupt(self, run_id: str) -> None:
        """Nothing to interrupt (see ``is_active``): the run's worker reads the flag."""

    def check_schedule_spec(self, spec: ScheduleSpec) -> None:
        from pyworkflow.runtime.aws_schedules import expressions

        expressions(spec)  # refuse what EventBridge cannot tick before anything is stored

    async def schedule_changed(self, schedule: Schedule) -> Schedule:
        return await self.schedules.sync(schedule)


def lease_for_visibility(visibility_timeout: float) -> float:
    """The run lease for a queue's visibility timeout: a little shorter, so that when a crashed
    worker's message reappears its lease has already expired (otherwise that redelivery would
    see a live-looking lease, do nothing, and be deleted). Assumes the function timeout is well
    under the visibility timeout, as AWS recommends (visibility = 6 x timeout)."""
    return max(1.0, visibility_timeout - max(5.0, visibility_timeout * 0.1))

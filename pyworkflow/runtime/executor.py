"""Drive one run: take its lease, read its history once, replay the workflow function, run new
steps inline (one conditional append each), and finish with one atomic write of the remaining
events plus the run record (completed, failed, cancelled, suspended or continued-as-new).

Only the lease holder writes a run's history. Outsiders (cancel, hook resume, child completion)
change the run *record* (compare-and-set on its version) and wake the run; the holder notices
when its next write of the record fails, re-reads it and replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pyworkflow.core import context as _ctx
from pyworkflow.core.clock import Clock, new_id
from pyworkflow.core.context import ExecutionContext, Limits
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.instrumentation import Instruments, OperationReporter
from pyworkflow.core.models import HookStatus, RunStatus, WorkflowRun
from pyworkflow.core.registry import WorkflowDefinition, get_workflow
from pyworkflow.core.retry import format_traceback
from pyworkflow.core.serde import describe, dumps, loads, to_jsonable
from pyworkflow.core.workflow import decode_arguments, encode_arguments, encode_result
from pyworkflow.exceptions import (
    CancellationError,
    ConcurrencyError,
    ConfigurationError,
    ContinueAsNewSignal,
    NonDeterminismError,
    RestartSignal,
    RunFailure,
    SerializationError,
    StoreUnavailable,
    SuspensionSignal,
    WorkflowError,
    WorkflowNotFoundError,
)
from pyworkflow.observability.plugins import active as active_instruments
from pyworkflow.runtime.instrumented import ExecutionReport, recorded_trace
from pyworkflow.runtime.journal import MAX_RESTARTS, RunJournal, request_cancel
from pyworkflow.runtime.payloads import fit_final
from pyworkflow.storage.base import StorageBackend
from pyworkflow.transport.protocol import Dispatcher

logger = logging.getLogger("pyworkflow")


# Lease owners of this process that are still open: a lease held by one of this process's
# owners that is no longer here (a closed runtime) is dead, like one of a dead process.
LIVE_OWNERS: set[str] = set()


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[2:]}"


def continued_run_id(run_id: str) -> str:
    """The id of the run that continues ``run_id``: derived, so a retried continue-as-new finds
    the run it already created instead of forking the chain."""
    return "run_" + hashlib.sha256(f"{run_id}/continue".encode()).hexdigest()[:16]


# Endings a history can hold while the run record does not show them yet (see
# ``_settle_recorded_ending``); continue-as-new is always written in one transaction.
_RECORDED_ENDINGS = {
    EventType.WORKFLOW_COMPLETED: RunStatus.COMPLETED,
    EventType.WORKFLOW_FAILED: RunStatus.FAILED,
    EventType.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
}


_CHILD_ENDINGS = frozenset(
    {
        EventType.CHILD_WORKFLOW_COMPLETED,
        EventType.CHILD_WORKFLOW_FAILED,
        EventType.CHILD_WORKFLOW_CANCELLED,
    }
)


# What a side task may end with that is about the execution, not the workflow: it outranks the
# workflow's own outcome (a stale history must be reloaded, an outage retried, a failure kept).
_EXECUTION_SIGNALS = (ConcurrencyError, RestartSignal, StoreUnavailable, RunFailure)


async def _run_function(
    ctx: ExecutionContext, defn: WorkflowDefinition, args: list[Any], kwargs: dict[str, Any]
) -> Any:
    """Call the workflow function; whatever way it ends, wait for the tasks it started that
    made durable calls (``asyncio.gather`` branches) before the execution writes its ending.

    ``gather`` hands back the first failure or suspension of a branch while its siblings still
    run. Ending the execution then would let a sibling append after the run's ending event, or
    leave its step half-done to be run again by the next execution. Waiting lets each sibling
    finish its current step (recorded) or reach its own wait."""
    ctx.main_task = asyncio.current_task()
    try:
        result = await defn.func(*args, **kwargs)
    except (asyncio.CancelledError, GeneratorExit):
        # Torn down (shutdown, loop closed, task collected): stop the siblings too; nothing
        # is recorded, the run is driven again from its history.
        ctx.engine_cancelled.update(ctx.side_tasks)
        for task in ctx.side_tasks:
            if task.done():
                _outcome_of(task)  # retrieved: no "exception was never retrieved" noise
            else:
                task.cancel()
        raise
    except BaseException:
        await _settle(ctx)
        ctx.closed = True
        raise
    await _settle(ctx)
    ctx.closed = True
    return result


async def _settle(ctx: ExecutionContext) -> None:
    """Wait until every side task is done; raise the first execution signal one ended with."""
    while pending := [t for t in ctx.side_tasks if not t.done()]:
        await asyncio.wait(pending)
    errors = [_outcome_of(task) for task in ctx.side_tasks]  # every one retrieved
    for error in errors:
        if isinstance(error, _EXECUTION_SIGNALS) or (
            error is not None
            and not isinstance(error, Exception | SuspensionSignal | ContinueAsNewSignal)
        ):
            raise error


def _outcome_of(task: asyncio.Task[Any]) -> BaseException | None:
    """A finished task's exception, now retrieved (asyncio logs one never looked at)."""
    return None if task.cancelled() else task.exception()


def written_run(stored: WorkflowRun | None, run_id: str) -> WorkflowRun:
    """The record ``append_events(..., run=...)`` returns: a store that wrote one must return
    it, so None is an error here, not something to carry on with."""
    if stored is None:
        raise WorkflowError(f"Run {run_id}: the store wrote the run record but returned none")
    return stored


def _not_defined(run: WorkflowRun) -> str:
    return (
        f"Workflow {run.workflow_name!r} (run {run.run_id}) is not defined in this "
        "process: import the module that defines it (pyworkflow --module / "
        "PYWORKFLOW_MODULE)."
    )


class Executor:
    def __init__(
        self,
        storage: StorageBackend,
        clock: Clock,
        dispatcher: Dispatcher,
        *,
        owner: str | None = None,
        lease_seconds: float = 60.0,
        inline_wait_max: float = 5.0,
        inline_sleep_max: float = 0.0,
        limits: Limits | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.dispatcher = dispatcher
        # Seconds left before this process must stop (Lambda's remaining time); None: no limit.
        self.time_left: Callable[[], float] | None = None
        self.yield_margin = 10.0
        self.refresh_seconds = 1.0  # how often a long execution re-reads its run record
        self.owner = owner or process_owner()
        LIVE_OWNERS.add(self.owner)
        self.lease = timedelta(seconds=lease_seconds)
        self.inline_wait_max = inline_wait_max
        self.inline_sleep_max = inline_sleep_max
        self.limits = limits or Limits()
        self.default_retries = 3
        # Called when an execution starts (drive, create, execute): a runtime whose settings
        # follow configure() takes the current ones here.
        self.before_execution: Callable[[], None] | None = None
        # A run waiting for a child is due again this long after it suspends (worker passes
        # only, no timer): if the child's process died between its ending and telling the
        # parent, a worker pass finds the parent and its replay sees the child ended. None
        # where a redelivery tells the parent instead (AWS: the child's message comes back).
        self.child_check: timedelta | None = None
        self.active: dict[str, ExecutionContext] = {}
        # Instrumentation plugins of this executor; None: configure()'s (usually none).
        self.instruments: Instruments | None = None
        # The exception a run failed with, for the caller that started it in this process.
        self.failures: dict[str, BaseException] = {}

    # --- entry points --------------------------------------------------------------------------
    async def drive(
        self,
        run_id: str,
        *,
        steal: bool | str = False,
        only_if_due: bool = False,
        timer_key: str | None = None,
    ) -> WorkflowRun:
        """Drive ``run_id`` until it ends or must wait. Returns the run record as left.

        ``only_if_due`` (queue workers): a waiting run whose time has not come is left alone, so
        a duplicate or stale wake-up costs one read instead of a replay and a second timer. A
        timer that fired early (``timer_key`` is the run's current wait) is armed again.

        ``steal``: the owner (a process known dead) whose lease to take, or True for whoever
        holds it at the first read. Only that owner's: if the run changes hands meanwhile, its
        new holder is alive and keeps it.
        """
        if self.before_execution is not None:
            self.before_execution()
        victim = steal if isinstance(steal, str) else None
        for attempt in range(MAX_RESTARTS):
            run = await self.storage.get_run(run_id)
            if run is None:
                raise WorkflowNotFoundError(run_id)
            if attempt == 0 and steal is True:
                victim = run.lease_owner
            if run.status.is_terminal:
                if run.parent_run_id and run.status != RunStatus.CONTINUED_AS_NEW:
                    await self._tell_parent_again(run)
                return run
            now = self.clock.now()
            if get_workflow(run.workflow_name) is None:
                # Refused before the lease is taken: the run keeps its status (never
                # "running" without anyone running it) for a worker that has the workflow.
                raise ConfigurationError(_not_defined(run))
            held = (
                run.lease_owner not in (None, self.owner)
                and run.lease_expires_at is not None
                and run.lease_expires_at > now
            )
            if held and not (victim is not None and run.lease_owner == victim):
                return run
            if (
                only_if_due
                and run.status == RunStatus.SUSPENDED
                and not run.cancel_requested
                and (run.wake_at is None or run.wake_at > now)
            ):
                if timer_key is not None and timer_key == run.wake_key and run.wake_at:
                    await self.rearm_timer(run_id, run.wake_at, timer_key)
                return run
            try:
                run = await self.storage.update_run(
                    run.model_copy(
                        update={
                            "status": RunStatus.RUNNING,
                            "lease_owner": self.owner,
                            "lease_expires_at": now + self.lease,
                            "updated_at": now,
                            "started_at": run.started_at or now,
                            "wake_at": None,
                            # Woken by its own timer: that timer is spent (a Scheduler
                            # schedule deletes itself after firing), so the run's ending
                            # need not delete it (no DeleteSchedule per sleeping run).
                            "wake_key": None if timer_key == run.wake_key else run.wake_key,
                        }
                    ),
                    expected_version=run.version,
                )
            except ConcurrencyError:
                continue
            history = await self.storage.get_events(run_id)
            if history and history[-1].type in _RECORDED_ENDINGS:
                try:
                    return await self._settle_recorded_ending(run, history)
                except ConcurrencyError:
                    continue
            try:
                return await self.execute(run, history)
            except (ConcurrencyError, RestartSignal):
                continue
        raise WorkflowError(f"Run {run_id}: gave up after {MAX_RESTARTS} conflicting writes")

    async def rearm_timer(self, run_id: str, when: datetime, key: str) -> None:
        """The timer of the run's current wait ``key`` woke it before ``when``: arm it again
        (and write nothing: the run stays as it is). The AWS executor re-arms on SQS."""
        await self.dispatcher.wake_at(run_id, when, key=key)

    async def create(
        self,
        defn: WorkflowDefinition,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        lease: bool = False,
        store: bool = True,
        trace_links: list[Any] | None = None,
        **fields: Any,
    ) -> tuple[WorkflowRun, list[Event]]:
        """Check the arguments and store a new run with its ``workflow.started`` event, in one
        write. With ``lease=True`` the run is created already held by this executor.
        ``trace_links``: the recorded trace contexts of the runs this one continues or was
        started by (instrumentation links them)."""
        if self.before_execution is not None:
            self.before_execution()
        enc_args, enc_kwargs = encode_arguments(defn, args, kwargs)
        now = self.clock.now()
        run_id = run_id or new_id("run")
        instruments = self.instruments or active_instruments()
        trace = (
            instruments.trace_context(run_id, defn.name, [t for t in trace_links or [] if t])
            if instruments is not None
            else None
        )
        deadline = None
        if defn.max_duration:
            from pyworkflow.core.duration import parse_duration

            deadline = now + timedelta(seconds=parse_duration(defn.max_duration))
        run = WorkflowRun(
            run_id=run_id,
            workflow_name=defn.name,
            status=RunStatus.RUNNING if lease else RunStatus.PENDING,
            created_at=now,
            updated_at=now,
            started_at=now if lease else None,
            input_args=dumps(enc_args),
            input_kwargs=dumps(enc_kwargs),
            idempotency_key=idempotency_key,
            max_duration=defn.max_duration,
            deadline_at=deadline,
            tags=list(defn.tags),
            metadata={"version": defn.version} if defn.version else {},
            lease_owner=self.owner if lease else None,
            lease_expires_at=now + self.lease if lease else None,
            **fields,
        )
        started = Event(
            event_id=new_id("evt"),
            run_id=run_id,
            type=EventType.WORKFLOW_STARTED,
            timestamp=now,
            sequence=1,
            data={
                "workflow_name": defn.name,
                "args": enc_args,
                "kwargs": enc_kwargs,
                "idempotency_key": idempotency_key,
                **({"version": defn.version} if defn.version else {}),
                **(
                    {"continued_from_run_id": fields["continued_from_run_id"]}
                    if fields.get("continued_from_run_id")
                    else {}
                ),
                **(
                    {"parent_run_id": fields["parent_run_id"]}
                    if fields.get("parent_run_id")
                    else {}
                ),
                **({"trace_context": trace} if trace else {}),
            },
        )
        if not store:
            return run, [started]
        stored = await self.storage.create_run(run, [started])
        return stored, [started]

    async def renew_leases(self) -> None:
        """Renew the lease of every execution under way here that is due for it: what each
        execution's heartbeat does on its own every third of a lease. For a virtual clock,
        whose time moves without this process's time moving (simulations)."""
        for ctx in list(self.active.values()):
            journal = ctx.journal
            if isinstance(journal, RunJournal) and not await journal.renew_lease():
                ctx.interrupted = True

    # --- one execution ---------------------------------------------------------------------
    def on_execution_done(self, ctx: ExecutionContext) -> None:
        """Called once per execution, as the workflow function has returned, raised or been
        torn down and before its outcome is written; ``ctx.history`` holds what it recorded.
        Does nothing here; a subclass overrides it to observe executions (``AwsExecutor``
        counts the steps run, for metrics). Must not raise or await."""

    async def execute(self, run: WorkflowRun, history: list[Event]) -> WorkflowRun:
        if self.before_execution is not None:
            self.before_execution()
        instruments = self.instruments or active_instruments()
        if instruments is None:
            return await self._execute(run, history, None)
        report = ExecutionReport(instruments, run, history, self.clock)
        try:
            ended = await self._execute(run, history, instruments)
        except BaseException as exc:
            report.interrupted(exc)
            raise
        report.ended(ended)
        return ended

    async def _execute(
        self, run: WorkflowRun, history: list[Event], instruments: Instruments | None
    ) -> WorkflowRun:
        defn = get_workflow(run.workflow_name)
        if defn is None:
            await self._release(run)
            raise ConfigurationError(_not_defined(run))
        journal = RunJournal(self, run)
        durable = defn.durable is not False
        ctx = ExecutionContext(
            run,
            list(history),
            journal,
            durable=durable,
            inline_wait_max=self.inline_wait_max,
            inline_sleep_max=self.inline_sleep_max,
            limits=self.limits,
            default_retries=self.default_retries,
        )
        journal.ctx = ctx
        if instruments is not None:
            ctx.reporter = OperationReporter(instruments, ctx.run_id, ctx.workflow_name, ctx)
        if run.cancel_requested and ctx.cancel_seq is None:
            await ctx.record(
                EventType.CANCELLATION_REQUESTED, {"reason": run.cancel_reason}, defer=True
            )
        started = history[0].data if history else {}
        journal.start_heartbeat(self.lease.total_seconds() / 3)
        token = _ctx.activate(ctx)
        self.active[run.run_id] = ctx
        torn_down = False
        try:
            try:
                ctx.check_deadline()
                args, kwargs = decode_arguments(
                    defn,
                    started.get("args", loads(run.input_args)),
                    started.get("kwargs", loads(run.input_kwargs)),
                )
                result = await _run_function(ctx, defn, args, kwargs)
            except (asyncio.CancelledError, GeneratorExit):
                torn_down = True  # nothing may be awaited now (a closed coroutine cannot)
                raise
            finally:
                _ctx.deactivate(token)
                self.active.pop(run.run_id, None)
                self.on_execution_done(ctx)
                if torn_down:
                    journal.abort_heartbeat()
                else:
                    await journal.stop_heartbeat()
        except StoreUnavailable as unavailable:
            # No outcome: the lease lapses and the run is driven again (redelivery, worker).
            raise unavailable.error from unavailable.error.__cause__
        except SuspensionSignal as signal:
            return await self._suspend(journal, signal)
        except ContinueAsNewSignal as signal:
            return await self._continue_as_new(journal, defn, signal)
        except CancellationError as exc:
            if ctx.cancellation_requested:
                return await self._finish(journal, RunStatus.CANCELLED, error=exc)
            return await self._finish(journal, RunStatus.FAILED, error=exc)
        except RunFailure as failure:
            return await self._finish(journal, RunStatus.FAILED, error=failure.error)
        except (ConcurrencyError, RestartSignal):
            raise
        except asyncio.CancelledError:
            # Stopped from outside (shutdown, Ctrl-C): hand the run back now instead of making
            # the next worker wait out the lease. Its next drive replays from the history.
            await self._release(journal.run)
            raise
        except Exception as exc:  # noqa: BLE001 - the workflow's own failure is the run's outcome
            return await self._finish(journal, RunStatus.FAILED, error=exc)
        leftover = ctx.unconsumed_ops()
        if leftover:
            first = leftover[0]
            err = NonDeterminismError(
                f"Run {run.run_id}: the workflow returned, but the history has {len(leftover)} "
                f"more operation(s), starting with {first.kind} {first.name!r} (#{first.op})."
            )
            return await self._finish(journal, RunStatus.FAILED, error=err)
        try:
            encoded = encode_result(defn, result)  # checked against an Annotated return type
        except SerializationError as exc:
            return await self._finish(journal, RunStatus.FAILED, error=exc)
        return await self._finish(journal, RunStatus.COMPLETED, result=encoded)

    # --- endings -------------------------------------------------------------------------------
    async def _write_final(
        self,
        journal: RunJournal,
        events_data: list[tuple[EventType, dict[str, Any]]],
        update: dict[str, Any],
        *,
        retry_on_conflict: bool,
        successor: tuple[WorkflowRun, list[Event]] | None = None,
    ) -> WorkflowRun:
        ctx = journal.ctx
        if ctx is None:
            raise WorkflowError(
                f"Run {journal.run.run_id}: an ending written outside its execution"
            )
        for type_, data in events_data:
            await ctx.record(type_, data, defer=True, final=True)
        events = ctx.take_pending()
        # the step context on the run record too (pyworkflow-engine's run.context); the history
        # holds it already, so this is a view, written with the write that happens anyway
        if ctx.step_context is not None:
            update = {"context": to_jsonable(ctx.step_context.to_dict()), **update}
        for _ in range(MAX_RESTARTS):
            now = self.clock.now()
            new = journal.run.model_copy(
                update={
                    "updated_at": now,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    **update,
                }
            )
            # A result too large for the store ends the run as the failure it causes.
            writing, new, next_run = fit_final(journal.guard, events, new, successor)
            try:
                if next_run is not None:
                    return await self.storage.continue_run(
                        new,
                        writing,
                        expected_version=journal.run.version,
                        new_run=next_run[0],
                        new_events=next_run[1],
                    )
                stored = await self.storage.append_events(
                    journal.run.run_id, writing, run=new, expected_version=journal.run.version
                )
                return written_run(stored, journal.run.run_id)
            except ConcurrencyError:
                if not retry_on_conflict:
                    raise
                # Someone changed the record (cancel request, hook, child): our outcome stands,
                # only the version moved. If the history moved, this raises again: replay.
                latest = await self.storage.get_run(journal.run.run_id)
                if latest is None or latest.lease_owner != self.owner:
                    raise
                journal.run = latest
        raise ConcurrencyError(f"Run {journal.run.run_id}: gave up writing its outcome")

    async def _finish(
        self,
        journal: RunJournal,
        status: RunStatus,
        *,
        result: str | None = None,
        error: BaseException | None = None,
    ) -> WorkflowRun:
        now = self.clock.now()
        update: dict[str, Any] = {"status": status, "completed_at": now, "wake_at": None}
        if status == RunStatus.COMPLETED:
            events = [(EventType.WORKFLOW_COMPLETED, {"result": loads(result)})]
            update["result"] = result
        else:
            message = describe(error) if error is not None else status.value
            type_name = type(error).__name__ if error is not None else None
            kind = (
                EventType.WORKFLOW_CANCELLED
                if status == RunStatus.CANCELLED
                else EventType.WORKFLOW_FAILED
            )
            data: dict[str, Any] = {"error": message, "error_type": type_name}
            trace = format_traceback(error) if error is not None else None
            if trace:
                data["traceback"] = trace
            events = [(kind, data)]
            update.update(error=message, error_type=type_name, error_traceback=trace)
            if status == RunStatus.FAILED and error is not None:
                self.failures[journal.run.run_id] = error
                while len(self.failures) > 1000:  # only the latest matter to a waiting caller
                    self.failures.pop(next(iter(self.failures)))
        run = await self._write_final(journal, events, update, retry_on_conflict=True)
        logger.info("run %s %s", run.run_id, status.value)
        await self._after_terminal(run, journal.ctx.history if journal.ctx else [])
        return run

    async def _suspend(self, journal: RunJournal, signal: SuspensionSignal) -> WorkflowRun:
        if journal.outside_change:
            # Someone touched the run while this execution went on (the heartbeat or a
            # checkpoint took the new version in stride): what the run waits for may have
            # come meanwhile, after the code looked. Replay instead of waiting on it forever.
            raise RestartSignal()
        wake_at = signal.wake_at
        deadline = journal.run.deadline_at
        if deadline is not None and (wake_at is None or deadline < wake_at):
            wake_at = deadline
        key = f"{journal.run.run_id}-{journal.ctx.next_seq if journal.ctx else 0}"
        due = wake_at
        if self.child_check is not None and journal.ctx is not None and journal.ctx.awaits_child:
            check = self.clock.now() + self._child_check_interval(journal.ctx, self.child_check)
            due = check if due is None else min(due, check)
        run = await self._write_final(
            journal,
            [],
            {
                "status": RunStatus.SUSPENDED,
                "wake_at": due,
                "wake_key": key if wake_at is not None else None,
            },
            retry_on_conflict=False,
        )
        if wake_at is not None:
            await self.dispatcher.wake_at(run.run_id, wake_at, key=key)
        return run

    def _child_check_interval(self, ctx: ExecutionContext, child_check: timedelta) -> timedelta:
        """``child_check`` at first, then the time the run has waited so far (a child that ran
        an hour is looked at again an hour later), at most an hour: a long child costs a few
        dozen checks a day, not one a minute."""
        since = ctx.child_wait_since or self.clock.now()
        waited = self.clock.now() - since
        return min(max(child_check, waited), max(child_check, timedelta(hours=1)))

    async def _continue_as_new(
        self, journal: RunJournal, defn: WorkflowDefinition, signal: ContinueAsNewSignal
    ) -> WorkflowRun:
        old = journal.run
        new_id_ = continued_run_id(old.run_id)
        try:
            successor = await self.create(
                defn,
                signal.args_,
                signal.kwargs,
                run_id=new_id_,
                store=False,
                trace_links=[recorded_trace(journal.ctx.history if journal.ctx else [])],
                continued_from_run_id=old.run_id,
                parent_run_id=old.parent_run_id,
                parent_op=old.parent_op,
                parent_close_policy=old.parent_close_policy,
                nesting_depth=old.nesting_depth,
                schedule_id=old.schedule_id,
            )
        except WorkflowError as exc:  # bad arguments for the next run
            return await self._finish(journal, RunStatus.FAILED, error=exc)
        # One write ends this run and creates the next (one transaction where the backend
        # has them); the next run's id is derived from this one, so a retry never forks.
        run = await self._write_final(
            journal,
            [
                (
                    EventType.WORKFLOW_CONTINUED_AS_NEW,
                    {
                        "new_run_id": new_id_,
                        "args": to_jsonable(list(signal.args_)),
                        "kwargs": to_jsonable(signal.kwargs),
                    },
                )
            ],
            {
                "status": RunStatus.CONTINUED_AS_NEW,
                "continued_to_run_id": new_id_,
                "completed_at": self.clock.now(),
                "wake_at": None,
            },
            retry_on_conflict=True,
            successor=successor,
        )
        await self._after_terminal(
            run, journal.ctx.history if journal.ctx else [], notify_parent=False
        )
        return run

    async def _release(self, run: WorkflowRun) -> None:
        try:
            await self.storage.update_run(
                run.model_copy(update={"lease_owner": None, "lease_expires_at": None}),
                expected_version=run.version,
            )
        except ConcurrencyError:
            pass

    async def _settle_recorded_ending(self, run: WorkflowRun, history: list[Event]) -> WorkflowRun:
        """The history already ends the run but the record does not say so: a backend that
        writes the ending event before the record (DynamoDB, to skip a transaction) lost its
        worker in between. The history is the truth: copy its ending into the record."""
        last = history[-1]
        status = _RECORDED_ENDINGS[last.type]
        update: dict[str, Any] = {
            "status": status,
            "completed_at": last.timestamp,
            "updated_at": self.clock.now(),
            "wake_at": None,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if status == RunStatus.COMPLETED:
            update["result"] = dumps(last.data.get("result"))
        else:
            update.update(
                error=last.data.get("error"),
                error_type=last.data.get("error_type"),
                error_traceback=last.data.get("traceback"),
            )
        stored = await self.storage.update_run(
            run.model_copy(update=update), expected_version=run.version
        )
        logger.info("run %s %s (recorded ending settled)", run.run_id, status.value)
        await self._after_terminal(stored, history)
        return stored

    async def _after_terminal(
        self, run: WorkflowRun, history: list[Event], *, notify_parent: bool = True
    ) -> None:
        if run.wake_key:
            await self.dispatcher.forget(run)
        if run.status == RunStatus.CONTINUED_AS_NEW:
            await self.dispatcher.wake(run.continued_to_run_id or "", reason="continued")
        elif run.parent_run_id and notify_parent:
            await self.touch(run.parent_run_id)
            await self.dispatcher.wake(run.parent_run_id, reason="child-ended")
        if any(e.type == EventType.HOOK_CREATED for e in history):
            await self._dispose_hooks(run.run_id)
        if not any(e.type == EventType.CHILD_WORKFLOW_STARTED for e in history):
            return
        for event in history:
            if event.type != EventType.CHILD_WORKFLOW_STARTED:
                continue
            policy_cancel = event.data.get("parent_close_policy") == "cancel"
            awaited = event.data.get("wait", True)
            if policy_cancel or (awaited and run.status == RunStatus.CANCELLED):
                await request_cancel(
                    self.storage,
                    self.clock,
                    event.data["child_run_id"],
                    f"parent {run.run_id} {run.status.value}",
                )
                await self.dispatcher.wake(event.data["child_run_id"], reason="cancel")

    async def _tell_parent_again(self, run: WorkflowRun) -> None:
        """An ended child's wake-up came again: its first delivery may have died between the
        child's last write and waking the parent, which would then wait forever. Wake the
        parent if it is waiting and has not recorded this child's outcome. Redeliveries only:
        a read of the parent (and of its history when it is suspended)."""
        parent = await self.storage.get_run(run.parent_run_id or "")
        if parent is None or parent.status != RunStatus.SUSPENDED:
            return
        history = await self.storage.get_events(parent.run_id)
        if any(
            e.type in _CHILD_ENDINGS and e.data.get("child_run_id") == run.run_id for e in history
        ):
            return
        await self.touch(parent.run_id)
        await self.dispatcher.wake(parent.run_id, reason="child-ended")

    async def _dispose_hooks(self, run_id: str) -> None:
        """A finished run's pending hooks take no more payloads."""
        for hook in await self.storage.list_hooks(run_id=run_id, status=HookStatus.PENDING):
            try:
                await self.storage.update_hook(
                    hook.model_copy(update={"status": HookStatus.DISPOSED}),
                    expected_version=hook.version,
                )
            except ConcurrencyError:
                pass  # received or expired meanwhile: either way it is closed

    async def touch(self, run_id: str) -> None:
        """Bump a run's record so its holder re-checks, and make it due now."""
        for _ in range(MAX_RESTARTS):
            run = await self.storage.get_run(run_id)
            if run is None or run.status.is_terminal:
                return
            update: dict[str, Any] = {"updated_at": self.clock.now()}
            if run.status == RunStatus.SUSPENDED:
                update["wake_at"] = self.clock.now()
            try:
                await self.storage.update_run(
                    run.model_copy(update=update), expected_version=run.version
                )
                return
            except ConcurrencyError:
                continue

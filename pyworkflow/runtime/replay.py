"""Replay a recorded history against the code in this process, touching nothing.

This is what a worker does at the start of every execution, minus the world: a ``Journal`` that
refuses every write and every side effect. Recorded operations return their recorded outcomes,
so no step runs; the first operation the history does not have is where the history ends and
the replay stops. Used by ``pyworkflow replay`` so CI can replay stored histories (exported with
``pyworkflow runs logs -o json``) against a new version of the code before it is deployed.

Verdicts:

* ok — the code makes the recorded calls in the recorded order up to the end of the history
  (and, if the run ended, ends it the same way: same result, or same kind of failure);
* diverged — the first operation where the code and the history disagree, with what the history
  recorded and what the code does now. A run that ended (completed, failed, cancelled,
  continued) must not go on with new operations either: its history has no end to reach.
"""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from pyworkflow.core import context as _ctx
from pyworkflow.core.clock import Clock, ManualClock
from pyworkflow.core.context import ExecutionContext
from pyworkflow.core.events import TERMINAL_RUN_EVENTS, Event, EventType
from pyworkflow.core.models import Hook, HookStatus, RunStatus, WorkflowRun
from pyworkflow.core.registry import WorkflowDefinition, get_workflow
from pyworkflow.core.serde import dumps, loads
from pyworkflow.core.workflow import decode_arguments
from pyworkflow.exceptions import (
    CancellationError,
    ContinueAsNewSignal,
    NonDeterminismError,
    RestartSignal,
    RunFailure,
    SuspensionSignal,
    WorkflowError,
    WorkflowNotFoundError,
)


class HistoryEnd(BaseException):  # noqa: N818 - control flow, like the engine's signals
    """The code asked for something the history does not have: the replay stops here."""


class ReplayEnding(StrEnum):
    HISTORY_END = "history_end"  # the code went on past the last recorded operation
    WAITING = "waiting"  # the code waits where the history waits
    RETURNED = "returned"
    RAISED = "raised"
    CONTINUED_AS_NEW = "continued_as_new"
    CANCELLED = "cancelled"


class Divergence(BaseModel):
    op: str | None = None  # the op number, or its path inside a fan-out
    expected: str  # what the history recorded there
    found: str  # what the code does now
    message: str


class ReplayReport(BaseModel):
    run_id: str
    workflow_name: str
    ok: bool
    events: int
    operations: int  # recorded operations in the history
    ending: ReplayEnding
    detail: str = ""
    divergence: Divergence | None = None
    recorded_version: str | None = None
    code_version: str | None = None


class ReplayJournal:
    """A journal for replay only: reads answer "nothing there", writes end the replay."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.ctx: ExecutionContext | None = None

    async def write(self, events: list[Event]) -> None:
        raise HistoryEnd("a new event would be written")

    async def checkpoint(self) -> None:
        ctx = self.ctx
        if ctx is not None and ctx.cancellation_requested and ctx.shield_depth == 0:
            return  # the primitive raises CancellationError next, as the run did
        raise HistoryEnd("a new operation")

    async def create_hook(self, hook: Hook) -> None:
        raise HistoryEnd("a new hook")

    async def get_hook(self, run_id: str, hook_id: str) -> Hook | None:
        return None  # not received in the history: the run would wait there

    async def expire_hook(self, hook: Hook, status: HookStatus = HookStatus.EXPIRED) -> Hook:
        raise HistoryEnd("a hook expiry")

    async def start_child(
        self,
        workflow_name: str,
        child_run_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        op: int,
        parent_close_policy: str,
        wait: bool,
    ) -> None:
        raise HistoryEnd("a new child run")

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        return None  # a child whose ending is not in the history: the run would wait there

    async def cancel_run(self, run_id: str, reason: str | None) -> None:
        raise HistoryEnd("a cancel request")


def load_history(text: str) -> list[Event]:
    """Events from JSON: a list (``pyworkflow runs logs RUN_ID -o json``) or ``{"events": [...]}``
    (pydantic-validated; nothing is unpickled)."""
    data = json.loads(text)
    if isinstance(data, dict):
        data = data.get("events")
    if not isinstance(data, list):
        raise ValueError(
            "expected a JSON list of events (pyworkflow runs logs RUN_ID -o json) "
            'or an object with an "events" list'
        )
    events = sorted((Event.model_validate(e) for e in data), key=lambda e: e.sequence)
    if not events or events[0].type != EventType.WORKFLOW_STARTED:
        raise ValueError("the history must begin with its workflow.started event")
    return events


async def replay_history(
    history: list[Event],
    *,
    run: WorkflowRun | None = None,
    workflow: WorkflowDefinition | None = None,
) -> ReplayReport:
    """Replay ``history`` with the workflow as defined in this process; never writes."""
    started = history[0]
    name = started.data.get("workflow_name") or (run.workflow_name if run else "")
    defn = workflow or get_workflow(name)
    if defn is None:
        raise WorkflowNotFoundError(f"{name} (workflow not defined in this process)")
    if run is None:
        run = WorkflowRun(
            run_id=started.run_id,
            workflow_name=name,
            created_at=started.timestamp,
            updated_at=started.timestamp,
            status=RunStatus.RUNNING,
        )
    # Time stands at the run's start: every recorded wake-up (sleep, retry backoff, hook
    # timeout) is then still ahead, so the replay stops at it instead of running anything.
    clock = ManualClock(started.timestamp)
    journal = ReplayJournal(clock)
    ctx = ExecutionContext(
        run.model_copy(update={"deadline_at": None}), list(history), journal, durable=True
    )
    journal.ctx = ctx
    terminal = history[-1] if history[-1].type in TERMINAL_RUN_EVENTS else None
    report = ReplayReport(
        run_id=run.run_id,
        workflow_name=defn.name,
        ok=True,
        events=len(history),
        operations=ctx.recorded_ops(),
        ending=ReplayEnding.RETURNED,
        recorded_version=run.metadata.get("version"),
        code_version=defn.version,
    )
    token = _ctx.activate(ctx)
    ctx.main_task = asyncio.current_task()
    try:
        args, kwargs = decode_arguments(
            defn, started.data.get("args", []), started.data.get("kwargs", {})
        )
        result = await defn.func(*args, **kwargs)
    except RunFailure as failure:
        return _failed_run(report, failure.error, ctx)
    except HistoryEnd as end:
        report.ending = ReplayEnding.HISTORY_END
        report.detail = f"the history ends here; the code goes on with {end}"
        return _past_the_end(report, terminal, f"{end} (#{_last_position(ctx)})")
    except SuspensionSignal as signal:
        report.ending = ReplayEnding.WAITING
        report.detail = f"the code waits ({signal.reason}) where the history ends"
        return _past_the_end(report, terminal, f"a wait ({signal.reason})")
    except ContinueAsNewSignal:
        report.ending = ReplayEnding.CONTINUED_AS_NEW
        return _compare_ending(report, ctx, terminal, EventType.WORKFLOW_CONTINUED_AS_NEW, None)
    except CancellationError as exc:
        if not ctx.cancellation_requested:  # raised by the code itself: a failure, as in a run
            report.ending = ReplayEnding.RAISED
            return _compare_ending(report, ctx, terminal, EventType.WORKFLOW_FAILED, exc)
        report.ending = ReplayEnding.CANCELLED
        return _compare_ending(report, ctx, terminal, EventType.WORKFLOW_CANCELLED, None)
    except RestartSignal:  # pragma: no cover - the replay journal never asks for a reload
        raise
    except Exception as exc:  # noqa: BLE001 - the workflow's own failure is an outcome
        report.ending = ReplayEnding.RAISED
        report.detail = f"{type(exc).__name__}: {exc}"
        return _compare_ending(report, ctx, terminal, EventType.WORKFLOW_FAILED, exc)
    finally:
        _ctx.deactivate(token)
    report.ending = ReplayEnding.RETURNED
    report = _compare_ending(report, ctx, terminal, EventType.WORKFLOW_COMPLETED, None)
    if report.ok and terminal is not None and terminal.type == EventType.WORKFLOW_COMPLETED:
        now = loads(dumps(result))
        if now != terminal.data.get("result"):
            return _diverged(
                report,
                None,
                f"result {terminal.data.get('result')!r}",
                f"result {now!r}",
                "the workflow now returns a different result",
            )
    return report


def _diverged(
    report: ReplayReport, op: Any, expected: str, found: str, message: str
) -> ReplayReport:
    report.ok = False
    report.divergence = Divergence(
        op=None if op is None else str(op), expected=expected, found=found, message=message
    )
    return report


def _failed_run(report: ReplayReport, error: WorkflowError, ctx: ExecutionContext) -> ReplayReport:
    report.ending = ReplayEnding.RAISED
    report.detail = str(error)
    mismatch = error.mismatch if isinstance(error, NonDeterminismError) else None
    if mismatch is not None:
        return _diverged(report, mismatch.op, mismatch.expected, mismatch.found, str(error))
    return _diverged(
        report, _last_position(ctx), "the recorded history", f"{type(error).__name__}", str(error)
    )


def _past_the_end(report: ReplayReport, terminal: Event | None, found: str) -> ReplayReport:
    if terminal is None:
        return report  # an open run's history ends here: what follows is new, as it should be
    return _diverged(
        report,
        None,
        f"{terminal.type.value} (the run ended)",
        found,
        f"the recorded run ended ({terminal.type.value}) but the code goes on with {found}",
    )


def _compare_ending(
    report: ReplayReport,
    ctx: ExecutionContext,
    terminal: Event | None,
    now: EventType,
    exc: BaseException | None,
) -> ReplayReport:
    leftover = ctx.unconsumed_ops()
    if leftover:
        first = leftover[0]
        return _diverged(
            report,
            first.op,
            f"{first.kind} {first.name!r}",
            now.value,
            f"the code ends the run ({now.value}) but the history goes on with "
            f"{len(leftover)} more operation(s), starting with {first.kind} "
            f"{first.name!r} (#{first.op})",
        )
    if terminal is None:
        return report  # the history stops before its ending was recorded: nothing to compare
    same = terminal.type == now and (
        exc is None or terminal.data.get("error_type") in (None, type(exc).__name__)
    )
    if same:
        return report
    recorded = terminal.type.value
    if terminal.data.get("error_type"):
        recorded += f" ({terminal.data['error_type']})"
    found = now.value + (f" ({type(exc).__name__}: {exc})" if exc is not None else "")
    return _diverged(
        report,
        None,
        recorded,
        found,
        f"the recorded run ended with {recorded}, the code now ends with {found}",
    )


def _last_position(ctx: ExecutionContext) -> str:
    """The position the code took last (``position()`` names the next one)."""
    head, dot, tail = ctx.position().rpartition(".")
    return f"{head}{dot}{max(0, int(tail) - 1)}"


__all__ = [
    "replay_history",
    "load_history",
    "ReplayReport",
    "Divergence",
    "ReplayEnding",
    "HistoryEnd",
    "ReplayJournal",
]

"""What the operations need from a runtime: the one interface the embedded runtime
(``LocalRuntime``: runs are driven in this process) and the AWS runtime (``AwsRuntime``: a worker
Lambda drives them, woken through SQS) both implement.

``pyworkflow.service`` is written against this protocol only, so each operation (start, cancel,
resume a hook, trigger a schedule...) exists once and behaves the same on both. The difference
between the runtimes is confined to three verbs: ``create_run`` (leased to this process, or not),
``advance`` (drive now, here, or send the run its wake-up) and ``wake`` (soon, in the background).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pyworkflow.core.clock import Clock
    from pyworkflow.core.events import Event
    from pyworkflow.core.models import Schedule, ScheduleSpec, WorkflowRun
    from pyworkflow.core.registry import WorkflowDefinition
    from pyworkflow.runtime.executor import Executor
    from pyworkflow.storage.base import StorageBackend


@runtime_checkable
class Runtime(Protocol):
    """Where runs are stored, what time it is, and how a run is moved along."""

    # Read-only (properties), so an implementation may hold a subclass (AwsExecutor).
    @property
    def storage(self) -> StorageBackend: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def executor(self) -> Executor: ...

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
        """Check the arguments and store a new run with its started event (one write).
        ``drive_here``: the caller passes the run to ``begin`` next, so a runtime that drives
        in-process may create it already leased to itself (saving a read); ``ConcurrencyError``
        when ``run_id`` or ``idempotency_key`` is taken."""
        ...

    async def begin(self, run: WorkflowRun, history: list[Event]) -> WorkflowRun:
        """Set a run ``create_run`` just made going; the run as it was left (embedded: driven
        until it ended or waits; AWS: as created, its wake-up sent)."""
        ...

    async def advance(self, run_id: str, *, reason: str, follow_chain: bool = True) -> None:
        """Move ``run_id`` along now: drive it here until it ends or waits (embedded), or send
        its wake-up (AWS). For a run nobody is executing."""
        ...

    async def wake(self, run_id: str, *, reason: str = "wake") -> None:
        """Have ``run_id`` driven soon, without waiting for it."""
        ...

    def is_active(self, run_id: str) -> bool:
        """Whether an execution of ``run_id`` is going on in this process right now."""
        ...

    def interrupt(self, run_id: str) -> None:
        """Make this process's execution of ``run_id`` reload before its next operation."""
        ...

    def check_schedule_spec(self, spec: ScheduleSpec) -> None:
        """Refuse a spec this runtime cannot tick (``ScheduleError``), before it is stored."""
        ...

    async def schedule_changed(self, schedule: Schedule) -> Schedule:
        """A schedule record was created or changed: bring whatever ticks it in line (AWS: its
        EventBridge schedules). Returns the record."""
        ...

    async def close(self) -> None: ...

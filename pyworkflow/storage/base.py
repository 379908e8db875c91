"""The storage contract. Backends only append, read and compare-and-set; they make no decisions.

Every write that records progress is conditional:
- ``append_events`` writes events whose ``sequence`` must not exist yet (the next free numbers);
  if any does, nothing is written and ``ConcurrencyError`` is raised. Two writers can therefore
  never fork a history.
- ``update_run`` (and the ``run=`` of ``append_events``/``create_run``) succeeds only if the stored
  ``version`` equals ``expected_version``; the stored record then carries ``expected_version + 1``.
- ``append_events(..., run=...)`` writes the events and the run record in one atomic step.

Timestamps are given by the caller; backends never read the clock.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime

from pyworkflow.core.events import Event
from pyworkflow.core.models import (
    Hook,
    HookStatus,
    Page,
    RunStatus,
    Schedule,
    WorkflowRun,
)
from pyworkflow.exceptions import ConcurrencyError
from pyworkflow.storage.compat import EngineReadAPI
from pyworkflow.storage.shared import written


@dataclass(frozen=True)
class PayloadLimits:
    """How much payload (JSON bytes) a backend can take, for the executor to check before it
    writes: it records what does not fit as the failure it causes (``runtime/payloads.py``).
    A backend with limits also refuses, with ``PayloadTooLargeError``, a write over them."""

    #: one payload field (a step result, an argument list): what a blob store takes
    per_field: int | None = None
    per_field_setting: str = ""
    #: all payload fields of one record together: an item limit (DynamoDB without blobs)
    per_record: int | None = None
    per_record_setting: str = ""


class StorageBackend(EngineReadAPI):
    """Abstract storage. Subclasses implement every abstract method; see ``tests/storage``.

    pyworkflow-engine 0.1.9's read API (``list_runs``, ``get_events``, ``get_children``,
    ``list_hooks``, ``get_hook``, the cancellation flag, ``list_steps``...) comes from
    ``EngineReadAPI`` (``storage/compat.py``), written once over the primitives below.
    """

    #: counters of round trips, read by bench/ (a write is one atomic operation)
    writes: int = 0
    reads: int = 0

    def payload_limits(self) -> PayloadLimits | None:
        """None: any payload fits (SQLite, memory, files)."""
        return None

    # --- runs --------------------------------------------------------------------------------
    @abstractmethod
    async def create_run(self, run: WorkflowRun, events: list[Event]) -> WorkflowRun:
        """Atomically store a new run (version 1), its first events and its idempotency key.

        Raises ``ConcurrencyError`` if the run id exists or the idempotency key is taken.
        Returns the stored run.
        """

    @abstractmethod
    async def get_run(self, run_id: str) -> WorkflowRun | None: ...

    @abstractmethod
    async def get_run_by_idempotency_key(self, key: str) -> WorkflowRun | None: ...

    @abstractmethod
    async def update_run(self, run: WorkflowRun, *, expected_version: int) -> WorkflowRun:
        """Replace the run if its stored version is ``expected_version``; returns the new record
        (version + 1). Raises ``ConcurrencyError`` otherwise, ``WorkflowNotFoundError`` if absent.
        """

    @abstractmethod
    async def list_runs_page(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Runs newest first (by ``created_at``, then ``run_id``); ``Page.items`` are runs. Our
        paged listing (an opaque cursor); ``list_runs`` is 0.1.9's, built on this one."""

    @abstractmethod
    async def list_due_runs(
        self, now: datetime, *, limit: int = 100, after: str | None = None
    ) -> list[WorkflowRun]:
        """Runs a worker should drive now: pending; suspended with ``wake_at <= now``; running
        with ``lease_expires_at <= now`` or no lease. Oldest obligation first, in ``due_key``
        order; ``after`` (the ``due_key`` of the last run of a page) gives the next page, so a
        worker can page past runs it cannot drive."""

    # --- events ------------------------------------------------------------------------------
    @abstractmethod
    async def append_events(
        self,
        run_id: str,
        events: list[Event],
        *,
        run: WorkflowRun | None = None,
        expected_version: int | None = None,
    ) -> WorkflowRun | None:
        """Append ``events`` (consecutive sequences) and, if ``run`` is given, replace the run
        record conditionally on ``expected_version`` — all or nothing. Returns the new run record
        when one was written. ``ConcurrencyError`` if a sequence exists or the version moved.
        """

    @abstractmethod
    async def read_events(self, run_id: str, *, after_sequence: int = 0) -> list[Event]:
        """Events with ``sequence > after_sequence``, in order ([] for an unknown run).
        Callers use ``get_events`` (0.1.9's, with ``event_types``), which reads through this."""

    # --- hooks -------------------------------------------------------------------------------
    @abstractmethod
    async def create_hook(self, hook: Hook) -> None:
        """Store a new hook (version 1). Replaces a hook with the same token hash."""

    @abstractmethod
    async def get_hook_by_hash(self, token_hash: str) -> Hook | None:
        """The hook stored under this token hash (``get_hook`` is 0.1.9's, by hook id)."""

    @abstractmethod
    async def find_hook(
        self, run_id: str, *, hook_id: str | None = None, name: str | None = None
    ) -> Hook | None:
        """The newest hook of a run with this id or name (for resume-by-name)."""

    @abstractmethod
    async def update_hook(self, hook: Hook, *, expected_version: int) -> Hook:
        """Compare-and-set on ``version``, as ``update_run``."""

    @abstractmethod
    async def read_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[Hook]:
        """Hooks newest first (``list_hooks`` is 0.1.9's, with ``offset``)."""

    # --- schedules ---------------------------------------------------------------------------
    @abstractmethod
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        """Store a new schedule (version 1); ``ConcurrencyError`` if the id exists."""

    @abstractmethod
    async def get_schedule(self, schedule_id: str) -> Schedule | None: ...

    @abstractmethod
    async def update_schedule(self, schedule: Schedule, *, expected_version: int) -> Schedule: ...

    @abstractmethod
    async def delete_schedule(self, schedule_id: str) -> bool: ...

    @abstractmethod
    async def list_schedules(
        self, *, workflow_name: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Schedule]: ...

    # --- lifecycle ---------------------------------------------------------------------------
    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Backends open lazily, so calling this is optional."""

    # --- conveniences built on the primitives (backends may override) --------------------------
    async def continue_run(
        self,
        run: WorkflowRun,
        events: list[Event],
        *,
        expected_version: int,
        new_run: WorkflowRun,
        new_events: list[Event],
    ) -> WorkflowRun:
        """Continue-as-new: append ``run``'s last ``events`` and replace its record (conditional
        on ``expected_version``) and create ``new_run`` with ``new_events``. Backends with
        transactions do it in one; this default creates the new run first — its id is derived
        from the old run's, so a retry after a crash finds it instead of forking the chain.
        Returns the old run's new record."""
        try:
            await self.create_run(new_run, new_events)
        except ConcurrencyError:
            if await self.get_run(new_run.run_id) is None:
                raise
        stored = await self.append_events(
            run.run_id, events, run=run, expected_version=expected_version
        )
        return written(stored)

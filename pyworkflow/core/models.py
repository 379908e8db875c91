"""Records the storage layer keeps besides events: runs, hooks and schedules."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    # Never set by this engine; kept because pyworkflow-engine exports RunStatus (with this
    # member) from its top-level package, so code written against it may name it.
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    CONTINUED_AS_NEW = "continued_as_new"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.CONTINUED_AS_NEW}
)


class WorkflowRun(BaseModel):
    """One execution of a workflow. ``version`` guards every update (compare-and-set).

    ``result`` and ``input_args``/``input_kwargs`` hold JSON text (``result`` is the JSON of the
    value itself, the same for every run); ``get_result()`` decodes it.
    """

    model_config = ConfigDict(validate_assignment=False)

    run_id: str
    workflow_name: str
    status: RunStatus = RunStatus.PENDING
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    input_args: str = "[]"
    input_kwargs: str = "{}"
    result: str | None = None
    error: str | None = None
    error_type: str | None = None
    idempotency_key: str | None = None
    max_duration: str | None = None
    deadline_at: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    parent_run_id: str | None = None
    parent_op: int | None = None
    parent_close_policy: str = "abandon"
    nesting_depth: int = 0
    continued_from_run_id: str | None = None
    continued_to_run_id: str | None = None
    recovery_attempts: int = 0
    # Engine bookkeeping
    version: int = 0
    wake_at: datetime | None = None
    wake_key: str | None = None  # names the pending timer (a Scheduler schedule on AWS)
    cancel_requested: bool = False
    cancel_reason: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    schedule_id: str | None = None

    def get_result(self) -> Any:
        """The decoded result (None while the run has none)."""
        import json

        return None if self.result is None else json.loads(self.result)


class HookStatus(StrEnum):
    PENDING = "pending"
    RECEIVED = "received"
    EXPIRED = "expired"
    DISPOSED = "disposed"


class Hook(BaseModel):
    """A pending wait for an outside payload. Stored under the token's SHA-256, never the token."""

    token_hash: str
    run_id: str
    hook_id: str
    op: int
    name: str
    status: HookStatus = HookStatus.PENDING
    created_at: datetime
    expires_at: datetime | None = None
    received_at: datetime | None = None
    payload_schema: dict[str, Any] | None = None
    payload: Any = None
    version: int = 0


class OverlapPolicy(StrEnum):
    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    BUFFER_ALL = "buffer_all"
    CANCEL_OTHER = "cancel_other"
    ALLOW_ALL = "allow_all"


class ScheduleStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


class CalendarSpec(BaseModel):
    second: int = 0
    minute: int = 0
    hour: int = 0
    day_of_month: int | None = None
    month: int | None = None
    day_of_week: int | None = None


class ScheduleSpec(BaseModel):
    cron: str | None = None
    interval: str | None = None
    calendar: list[CalendarSpec] | None = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: str | None = None


class Schedule(BaseModel):
    schedule_id: str
    workflow_name: str
    spec: ScheduleSpec
    status: ScheduleStatus = ScheduleStatus.ACTIVE
    args: str = "[]"
    kwargs: str = "{}"
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    created_at: datetime
    updated_at: datetime | None = None
    last_run_at: datetime | None = None
    next_run_time: datetime | None = None
    last_run_id: str | None = None
    running_run_ids: list[str] = Field(default_factory=list)
    buffered_count: int = 0
    total_runs: int = 0
    successful_runs: int = 0
    failed_runs: int = 0
    skipped_runs: int = 0
    version: int = 0


class Page(BaseModel):
    """A page of a listing; pass ``next_cursor`` back to get the next one."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    items: list[Any]
    next_cursor: str | None = None

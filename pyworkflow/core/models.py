"""Records the storage layer keeps besides events: runs, hooks and schedules.

pyworkflow-engine's records are dataclasses, so its code builds them positionally, leaves out
``created_at`` (now, in UTC) and calls ``to_dict()``/``from_dict()``. ``_Record`` gives ours
the same, on top of pydantic: the storage formats (``model_dump_json``) do not change.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator


def _now() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    """What a hook is stored under: the token's SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class _Factory:
    """Shown as the default of a field whose default is made per record (as dataclasses do)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


class _Record(BaseModel):
    """A record constructible as pyworkflow-engine's dataclass was."""

    #: the leading fields, in pyworkflow-engine's order, that may be given positionally
    _positional: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **data: Any) -> None:
        super().__init__(**self._named(args, data))

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.__signature__ = cls._engine_signature()

    @classmethod
    def _engine_signature(cls) -> inspect.Signature:
        """What ``inspect.signature`` shows: the ``_positional`` fields first, in
        pyworkflow-engine's order, then every other field as keyword-only."""
        fields = cls.model_fields

        def param(name: str, kind: inspect._ParameterKind) -> inspect.Parameter:
            field = fields.get(name)
            default: Any = inspect.Parameter.empty
            if field is not None and field.default_factory is not None:
                default = _FACTORY
            elif field is not None and not field.is_required():
                default = field.default
            return inspect.Parameter(name, kind, default=default)

        params = [param(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in cls._positional]
        params += [
            param(n, inspect.Parameter.KEYWORD_ONLY) for n in fields if n not in cls._positional
        ]
        return inspect.Signature(params)

    @classmethod
    def _named(cls, args: tuple[Any, ...], data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with the positional ``args`` put under their field names."""
        if len(args) > len(cls._positional):
            raise TypeError(
                f"{cls.__name__}() takes at most {len(cls._positional)} positional "
                f"arguments ({len(args)} given)"
            )
        for name, value in zip(cls._positional, args, strict=False):
            if name in data:
                raise TypeError(f"{cls.__name__}() got multiple values for {name!r}")
            data[name] = value
        return data

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: enums as their values, datetimes as ISO 8601 text."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The inverse of ``to_dict()``; also reads pyworkflow-engine's dictionaries (keys we
        do not have are ignored, missing ones take their defaults)."""
        return cls(**dict(data))


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


class WorkflowRun(_Record):
    """One execution of a workflow. ``version`` guards every update (compare-and-set).

    ``result`` and ``input_args``/``input_kwargs`` hold JSON text (``result`` is the JSON of the
    value itself, the same for every run); ``get_result()`` decodes it.
    """

    model_config = ConfigDict(validate_assignment=False)
    _positional = (
        "run_id",
        "workflow_name",
        "status",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "input_args",
        "input_kwargs",
        "result",
        "error",
        "idempotency_key",
        "max_duration",
        "context",
        "recovery_attempts",
        "max_recovery_attempts",
        "recover_on_worker_loss",
        "parent_run_id",
        "nesting_depth",
        "continued_from_run_id",
        "continued_to_run_id",
    )

    run_id: str
    workflow_name: str
    status: RunStatus = RunStatus.PENDING
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    input_args: str = "[]"
    input_kwargs: str = "{}"
    result: str | None = None
    error: str | None = None
    error_type: str | None = None
    # where a failed run's error was raised (user frames only; core/retry.format_traceback)
    error_traceback: str | None = None
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
    # pyworkflow-engine's fault-tolerance fields, recorded as given. A run whose worker dies is
    # always recovered here (its lease lapses, another worker replays it), never given up.
    max_recovery_attempts: int = 3
    recover_on_worker_loss: bool = True
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
        return None if self.result is None else json.loads(self.result)

    # A run keeps its arguments and result as JSON text; the API and ``--output json`` show
    # them as JSON values. These two are the conversion, both ways, written once.
    JSON_TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("input_args", "input_kwargs", "result")

    def as_json_values(self, *, exclude: set[str] | None = None) -> dict[str, Any]:
        """JSON-ready, with the arguments and the result as the values themselves."""
        data = self.model_dump(mode="json", exclude=exclude)
        for name in self.JSON_TEXT_FIELDS:
            if isinstance(data.get(name), str):
                data[name] = json.loads(data[name])
        return data

    @classmethod
    def from_json_values(cls, data: Mapping[str, Any]) -> WorkflowRun:
        """The inverse of ``as_json_values``: a result is JSON text once the run completed
        (a JSON ``null`` result then is ``"null"``), ``None`` before."""
        data = dict(data)
        for name in ("input_args", "input_kwargs"):
            if name in data:
                data[name] = json.dumps(data[name], separators=(",", ":"), ensure_ascii=False)
        completed = data.get("status") == RunStatus.COMPLETED.value
        result = data.get("result")
        data["result"] = (
            json.dumps(result, separators=(",", ":"), ensure_ascii=False) if completed else None
        )
        return cls.model_validate(data)


class HookStatus(StrEnum):
    PENDING = "pending"
    RECEIVED = "received"
    EXPIRED = "expired"
    DISPOSED = "disposed"
    FAILED = "failed"  # an outside party failed it (fail_hook): error_type, error_message


class Hook(_Record):
    """A pending wait for an outside payload. Stored under the token's SHA-256, never the token.

    ``Hook(hook_id, run_id, token)`` (pyworkflow-engine's way) hashes ``token``; the token stays
    readable as ``hook.token`` on that object only, and is in neither ``to_dict()`` nor storage.
    """

    _positional = (
        "hook_id",
        "run_id",
        "token",
        "url",
        "status",
        "created_at",
        "received_at",
        "expires_at",
        "payload",
        "name",
        "payload_schema",
        "metadata",
    )

    token_hash: str
    run_id: str
    hook_id: str
    op: int = 0  # the workflow's op that waits; 0 for a hook built outside a workflow
    name: str = ""
    status: HookStatus = HookStatus.PENDING
    created_at: datetime = Field(default_factory=_now)
    expires_at: datetime | None = None
    received_at: datetime | None = None
    payload_schema: dict[str, Any] | None = None
    payload: Any = None
    url: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    version: int = 0
    #: ``hook(..., heartbeat_timeout=)``: seconds allowed between heartbeats, and the current
    #: deadline (``heartbeat_hook`` moves it on).
    heartbeat_timeout: float | None = None
    heartbeat_deadline: datetime | None = None
    #: ``fail_hook``: what the sender said went wrong (status ``failed``).
    error_type: str | None = None
    error_message: str | None = None

    _token: str | None = PrivateAttr(default=None)

    def __init__(self, *args: Any, **data: Any) -> None:
        data = self._named(args, data)
        token = data.pop("token", None)
        if token is not None:
            data.setdefault("token_hash", hash_token(token))
        super().__init__(**data)
        self._token = token

    @classmethod
    def _engine_signature(cls) -> inspect.Signature:
        # token_hash is derived from token (or read back from storage): never required
        signature = super()._engine_signature()
        return signature.replace(
            parameters=[
                p.replace(default=None) if p.name == "token_hash" else p
                for p in signature.parameters.values()
            ]
        )

    @property
    def token(self) -> str | None:
        return self._token

    def __eq__(self, other: object) -> bool:
        # The record's fields only: a hook read back has no token, and is the same hook
        if not isinstance(other, Hook):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, as every pydantic model

    @field_validator("name", mode="before")
    @classmethod
    def _no_name(cls, value: Any) -> Any:
        return "" if value is None else value  # pyworkflow-engine's name was optional

    @field_validator("payload_schema", mode="before")
    @classmethod
    def _schema_text(cls, value: Any) -> Any:
        # pyworkflow-engine kept the JSON schema as text
        return json.loads(value) if isinstance(value, str) else value


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


class CalendarSpec(_Record):
    _positional = ("second", "minute", "hour", "day_of_month", "month", "day_of_week")

    second: int = 0
    minute: int = 0
    hour: int = 0
    day_of_month: int | None = None
    month: int | None = None
    day_of_week: int | None = None


class ScheduleSpec(_Record):
    _positional = ("cron", "interval", "calendar", "timezone", "start_at", "end_at", "jitter")

    cron: str | None = None
    interval: str | None = None
    calendar: list[CalendarSpec] | None = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: str | None = None


class Schedule(_Record):
    _positional = (
        "schedule_id",
        "workflow_name",
        "spec",
        "status",
        "args",
        "kwargs",
        "overlap_policy",
        "created_at",
        "updated_at",
        "last_run_at",
        "next_run_time",
        "last_run_id",
        "running_run_ids",
        "buffered_count",
        "total_runs",
        "successful_runs",
        "failed_runs",
        "skipped_runs",
    )

    schedule_id: str
    workflow_name: str
    spec: ScheduleSpec
    status: ScheduleStatus = ScheduleStatus.ACTIVE
    args: str = "[]"
    kwargs: str = "{}"
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    created_at: datetime = Field(default_factory=_now)
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


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"
    CANCELLED = "cancelled"


class StepExecution(_Record):
    """pyworkflow-engine's step record, for code that builds or reads one. Storage keeps no
    such record here: a step's attempts are events in its run's history."""

    _positional = (
        "step_id",
        "run_id",
        "step_name",
        "status",
        "attempt",
        "max_retries",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "input_args",
        "input_kwargs",
        "result",
        "error",
        "retry_after",
        "retry_delay",
    )

    step_id: str
    run_id: str
    step_name: str
    status: StepStatus
    attempt: int = 1
    max_retries: int = 3
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    input_args: str = "[]"
    input_kwargs: str = "{}"
    result: str | None = None
    error: str | None = None
    retry_after: datetime | None = None
    retry_delay: str | None = None


class Page(BaseModel):
    """A page of a listing; pass ``next_cursor`` back to get the next one."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    items: list[Any]
    next_cursor: str | None = None

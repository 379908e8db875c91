"""The API's wire shapes: request bodies, query parameters, direct-invoke params and answers.

The HTTP routes (``pyworkflow/handlers/api.py``) and the direct-invoke actions
(``pyworkflow/handlers/api_invoke.py``) validate with these same models, so a request means the same
thing whichever way it arrives. Request models forbid unknown fields: a misspelt ``kwarg`` is a 422
naming it, not an argument silently dropped. Runs, events and schedules go out as the core's own
records (a run without its lease and version bookkeeping), so a client can read them back into
``WorkflowRun`` & co.

Every request model also refuses text UTF-8 cannot encode (``refuse_unencodable_text``) before
its fields are validated: such text could never be stored, and an answer quoting it could not
be sent.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from pyworkflow.core.events import Event
from pyworkflow.core.models import (
    OverlapPolicy,
    RunStatus,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
    WorkflowRun,
)
from pyworkflow.core.serde import safe_text, to_jsonable
from pyworkflow.exceptions import SerializationError
from pyworkflow.service.workflows import WorkflowInfo

MAX_LIST_LIMIT = 1000
#: The largest integer a query may carry (sequence numbers, offsets): 2**53 - 1, which every
#: JSON reader holds exactly and every store takes (SQLite's integers stop at 2**63 - 1; a
#: bigger ``?after=`` was a 500, found by tests/security/test_fuzz_api.py).
MAX_QUERY_INT = 2**53 - 1
#: Fields of a run record that belong to the engine's concurrency control, not to callers.
INTERNAL_RUN_FIELDS = frozenset({"lease_owner", "lease_expires_at", "version"})

_NAME = Field(min_length=1, max_length=256)
_ID = Field(min_length=1, max_length=256)


# --- text UTF-8 cannot encode ------------------------------------------------------------------
def refuse_unencodable_text(value: Any, root: str = "", *, skip: Collection[str] = ()) -> None:
    """Raise ``SerializationError`` (a 422) for the first text in ``value``, in document order,
    string or object key, that UTF-8 cannot encode: a lone surrogate, which the JSON escape
    ``"\\ud800"`` without the other half of its pair decodes to. The message and ``.path`` name
    it as the request spells it (``args[0]['name']``, ``payload['note']``, ``spec['cron']``),
    from ``root`` (``"payload"`` for a body that is the payload itself).

    Iterative, so that it can run before the depth check on values of any depth. ``skip``:
    top-level fields not to look at (a hook token: a credential is never quoted back)."""
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():  # ASCII always encodes: most text costs one scan
                _refuse_if_unencodable(item, path)
        elif isinstance(item, dict):
            entries: list[tuple[str, Any]] = []
            for key, child in item.items():
                if item is value and key in skip:
                    continue
                where = _field(path, key)
                entries += [(where, key), (where, child)]  # the key is looked at first
            stack.extend(reversed(entries))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(f"{path}[{i}]", child) for i, child in enumerate(item)]))


def _field(path: str, key: Any) -> str:
    if not path and isinstance(key, str) and key.isidentifier():
        return key  # a top-level field, named as the API documents it: args, spec, reason
    return f"{path}[{safe_text(repr(key))}]"


def _refuse_if_unencodable(text: str, path: str) -> None:
    # The engine's own check, so that the API refuses exactly what the store would, saying why.
    try:
        to_jsonable(text, what=path or "The request body")
    except SerializationError as error:
        error.path = path
        raise


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: Top-level fields ``refuse_unencodable_text`` leaves alone (see ``ResumeHookParams``).
    _unchecked_text: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _encodable_text(cls, data: Any) -> Any:
        # Before the fields are validated: every field is named the same way, typed or not.
        # SerializationError is no ValueError, so pydantic lets it through as it is, and both
        # the HTTP routes and the invoke actions answer it as the 422 it maps to.
        refuse_unencodable_text(data, skip=cls._unchecked_text)
        return data


# --- errors ----------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    type: str = Field(description="The error's name, e.g. HookExpiredError")
    message: str

    @field_validator("message", mode="before")
    @classmethod
    def _encodable(cls, message: Any) -> Any:
        # A message may quote bad input (a path, a timezone name); the answer must still be
        # sendable, by the Lambda runtime (UTF-8, ensure_ascii=False) as by any JSON reader.
        return safe_text(message) if isinstance(message, str) else message


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"type", "message"}}``."""

    error: ErrorDetail


# --- runs ------------------------------------------------------------------------------------
class StartRunRequest(_Request):
    """``POST /runs``: start ``workflow(*args, **kwargs)``. A repeated ``idempotency_key``
    returns the run it started the first time instead of starting another."""

    workflow: str = _NAME
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)


class StartRunResponse(BaseModel):
    run_id: str
    status: RunStatus


# The public view of a run: every field of ``WorkflowRun`` except the internal ones, derived
# from the model so that a field added to runs shows up here without a second list to keep.
RunView: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "RunView",
    __doc__=(
        "A workflow run. ``result``, ``input_args`` and ``input_kwargs`` are JSON values "
        "(``result`` is null until the run completes)."
    ),
    **{
        name: ((Any, None) if name in WorkflowRun.JSON_TEXT_FIELDS else (info.annotation, info))
        for name, info in WorkflowRun.model_fields.items()
        if name not in INTERNAL_RUN_FIELDS
    },
)


def run_view(run: WorkflowRun) -> BaseModel:
    return RunView.model_validate(run.as_json_values(exclude=set(INTERNAL_RUN_FIELDS)))


class ListRunsQuery(_Request):
    """``GET /runs`` filters; pass ``next_cursor`` back as ``cursor`` for the next page."""

    status: RunStatus | None = None
    workflow: str | None = Field(default=None, min_length=1, max_length=256)
    limit: int = Field(default=100, ge=1, le=MAX_LIST_LIMIT)
    cursor: str | None = Field(default=None, min_length=1, max_length=2048)


class RunPage(BaseModel):
    items: list[RunView]  # type: ignore[valid-type]
    next_cursor: str | None = None


class RunChain(BaseModel):
    """The runs of a continue-as-new chain, oldest first."""

    items: list[RunView]  # type: ignore[valid-type]


class RunRef(_Request):
    run_id: str = _ID


class EventsQuery(_Request):
    after: int = Field(
        default=0, ge=0, le=MAX_QUERY_INT, description="only events with a greater sequence"
    )


class GetEventsParams(RunRef, EventsQuery):
    pass


class EventPage(BaseModel):
    items: list[Event]


class CancelRequest(_Request):
    reason: str | None = Field(default=None, max_length=1000)


class CancelParams(RunRef, CancelRequest):
    pass


class CancelResponse(BaseModel):
    run_id: str
    cancelled: bool


# --- hooks -----------------------------------------------------------------------------------
class HookPayloadRequest(_Request):
    """Direct invoke ``resume_hook_by_name``'s payload (over HTTP, the body is the payload)."""

    payload: Any = None


class ResumeHookParams(_Request):
    """Direct invoke ``resume_hook``: the token is the credential, as in ``POST /hooks/{token}``."""

    token: str  # its length is checked where an invalid token is a 404, like an unknown one
    payload: Any = None

    # A credential is never quoted back, even a broken one: ops.resume_hook answers a token
    # UTF-8 cannot encode as any invalid token.
    _unchecked_text: ClassVar[frozenset[str]] = frozenset({"token"})


class ResumeHookByNameParams(RunRef, HookPayloadRequest):
    name: str = _NAME


class HookFailRequest(_Request):
    """The body of ``POST /hooks/{token}/fail``: what went wrong, as the run will see it
    (``HookFailedError.error_type`` and ``.error_message``)."""

    error_type: str = Field(min_length=1, max_length=256, description="e.g. PaymentDeclined")
    message: str = Field(default="", max_length=32_768)


class FailHookParams(HookFailRequest):
    """Direct invoke ``fail_hook``."""

    token: str
    _unchecked_text: ClassVar[frozenset[str]] = frozenset({"token"})


class FailHookByNameParams(RunRef, HookFailRequest):
    name: str = _NAME


class HeartbeatHookParams(_Request):
    """Direct invoke ``heartbeat_hook``."""

    token: str
    _unchecked_text: ClassVar[frozenset[str]] = frozenset({"token"})


class HookResumeResponse(BaseModel):
    run_id: str
    hook_id: str
    status: str = "resumed"


# --- workflows -------------------------------------------------------------------------------
class WorkflowList(BaseModel):
    items: list[WorkflowInfo]


# --- schedules -------------------------------------------------------------------------------
class ScheduleSpecIn(ScheduleSpec):
    """``ScheduleSpec`` as a request field: unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class CreateScheduleRequest(_Request):
    workflow: str = _NAME
    spec: ScheduleSpecIn
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    schedule_id: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.:-]+$"
    )


class UpdateScheduleRequest(_Request):
    """``PATCH /schedules/{id}``: only the fields given change."""

    spec: ScheduleSpecIn | None = None
    overlap_policy: OverlapPolicy | None = None


class ScheduleRef(_Request):
    schedule_id: str = _ID


class UpdateScheduleParams(ScheduleRef, UpdateScheduleRequest):
    pass


class ListSchedulesQuery(_Request):
    workflow: str | None = Field(default=None, min_length=1, max_length=256)
    status: ScheduleStatus | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIST_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_QUERY_INT)


class SchedulePage(BaseModel):
    items: list[Schedule]


class TriggerResponse(BaseModel):
    schedule_id: str
    run_id: str


# --- misc ------------------------------------------------------------------------------------
class NoParams(_Request):
    pass


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"

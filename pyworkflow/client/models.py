"""What the client's transports exchange besides the core records.

Runs, events, schedules and pages are the core's own models (``WorkflowRun``, ``Event``,
``Schedule``, ``Page``): a run read over HTTP is the same object as one read from SQLite. The
models here are the few shapes that exist only at the API boundary: request bodies and the small
answers of start, cancel and hook resumes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pyworkflow.core.models import OverlapPolicy, ScheduleSpec
from pyworkflow.service.workflows import WorkflowInfo as _WorkflowInfo

# One registered workflow (``GET /workflows``): the service's model, the same on both sides.
WorkflowInfo = _WorkflowInfo


class Started(BaseModel):
    """``POST /runs`` → 202."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    status: str | None = None


class Cancelled(BaseModel):
    """``POST /runs/{run_id}/cancel`` → 202. ``cancelled`` is False when the run had ended."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    cancelled: bool


class HookResumed(BaseModel):
    """A payload was stored on the hook and its run woken (``status`` "resumed"), a failure
    ("failed"), or a heartbeat taken ("alive")."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    status: str = "resumed"
    hook_id: str | None = None


class StartRequest(BaseModel):
    """Body of ``POST /runs`` (and the params of the ``start_run`` action)."""

    workflow: str
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None


class ScheduleCreateRequest(BaseModel):
    """Body of ``POST /schedules`` (and the params of ``create_schedule``)."""

    workflow: str
    spec: ScheduleSpec
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    schedule_id: str | None = None


class ScheduleUpdateRequest(BaseModel):
    """Body of ``PATCH /schedules/{id}``: only the fields given change."""

    spec: ScheduleSpec | None = None
    overlap_policy: OverlapPolicy | None = None


class ApiErrorBody(BaseModel):
    """``{"error": {"type", "message"}}``: every error answer of the API."""

    model_config = ConfigDict(extra="ignore")

    type: str
    message: str = ""

"""The messages on the work queue: what the transport sends and the worker parses.

A run's wake-up is ``{"run_id", "reason", "key"?, "trace"?}`` (``WakeMessage``): from
``SqsQueue``, or as the Input of a wait's one-time Scheduler schedule. ``trace`` is the W3C trace
context of the execution that sent it, when tracing is on (docs/observability.md): in the body,
not in SQS message attributes, so a Scheduler timer (whose target takes only an Input) carries it
the same way. A pyworkflow schedule's tick is
``{"schedule_id", "fire_time", "reason"}`` (``ScheduleTick``), the Input of its recurring
EventBridge schedule, which puts the tick's scheduled time in ``fire_time``. A due bucket's tick
is ``{"due_bucket", "until", "after"?}`` (``BucketTick``, ``bucket`` timers): wake the runs due
before ``until``, from the due position ``after`` on (a sweep that ran out of time continues).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pyworkflow.exceptions import WorkflowError
from pyworkflow.observability.plugins import outgoing_trace

#: Scheduler puts the tick's scheduled time into the target's Input here
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


class WakeMessage(BaseModel):
    """The body of every message on the work queue (and every Scheduler target's Input)."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    reason: str = "wake"
    # A timer's wait (run and sequence): tells a timer that fired early from a stale one.
    key: str | None = None
    # The sender's trace context ({"traceparent": ...}), when tracing is on.
    trace: dict[str, str] | None = None

    @field_validator("trace", mode="before")
    @classmethod
    def _drop_bad_trace(cls, value: Any) -> Any:
        # Tracing is advisory: a malformed context is dropped, the wake-up is still delivered
        good = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
        return value if good else None


class ScheduleTick(BaseModel):
    """The Input of a pyworkflow schedule's EventBridge schedule."""

    model_config = ConfigDict(extra="ignore")

    schedule_id: str
    fire_time: str | None = None
    reason: str = "schedule"


class BucketTick(BaseModel):
    """The Input of a due bucket's schedule, or a sweep's continuation."""

    model_config = ConfigDict(extra="ignore")

    due_bucket: datetime
    until: datetime
    after: str | None = None
    reason: str = "due-bucket"


class MalformedMessageError(WorkflowError):
    """A queue message that is not a ``WakeMessage``: retrying it can never help."""


def wake_body(run_id: str, reason: str, key: str | None = None) -> str:
    """The JSON body of ``run_id``'s wake-up (with the current trace context, if tracing)."""
    message = WakeMessage(run_id=run_id, reason=reason, key=key, trace=outgoing_trace())
    return message.model_dump_json(exclude_none=True)


def bucket_body(start: datetime, until: datetime, after: str | None = None) -> str:
    """The JSON body of due bucket ``start``'s tick, which wakes the runs due before ``until``
    (``after``: where its sweep goes on)."""
    tick = BucketTick(due_bucket=start, until=until, after=after)
    return tick.model_dump_json(exclude_none=True)


def parse_tick(body: dict[str, Any]) -> ScheduleTick | None:
    """A tick if ``body`` is one (it names a schedule, not a run), else None."""
    if "schedule_id" not in body or "run_id" in body:
        return None
    try:
        return ScheduleTick.model_validate(body)
    except ValidationError:
        return None


def tick_input(schedule_id: str) -> str:
    # Built by hand: the placeholder must reach Scheduler verbatim, inside a JSON string
    return ScheduleTick(schedule_id=schedule_id, fire_time=SCHEDULED_TIME).model_dump_json()


def parse_message(
    body: str | bytes | dict[str, Any],
) -> WakeMessage | ScheduleTick | BucketTick:
    """Validate a message body: a run's wake-up, a schedule's tick (from its EventBridge
    schedule) or a due bucket's; ``MalformedMessageError`` says why it is none of them."""
    try:
        data = body if isinstance(body, dict) else json.loads(body)
    except ValueError as exc:
        raise MalformedMessageError(f"not a pyworkflow wake-up message: {exc}") from None
    if isinstance(data, dict):
        tick = parse_tick(data)
        if tick is not None:
            return tick
        if "due_bucket" in data and "run_id" not in data:
            try:
                return BucketTick.model_validate(data)
            except ValidationError as exc:
                raise MalformedMessageError(f"not a due bucket's tick: {exc}") from None
    try:
        return WakeMessage.model_validate(data)
    except ValidationError as exc:
        raise MalformedMessageError(f"not a pyworkflow wake-up message: {exc}") from None

"""Event types and the immutable event record. A run's history is a gap-free list of these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventType(StrEnum):
    """String values match pyworkflow-engine's, so stored histories read the same.

    Only types this engine records are members: an event type is never dropped once written (a
    stored history must keep parsing), so a new member is a deliberate, permanent addition.
    """

    WORKFLOW_STARTED = "workflow.started"
    WORKFLOW_COMPLETED = "workflow.completed"
    WORKFLOW_FAILED = "workflow.failed"
    WORKFLOW_CANCELLED = "workflow.cancelled"
    WORKFLOW_CONTINUED_AS_NEW = "workflow.continued_as_new"

    STEP_STARTED = "step.started"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    STEP_RETRYING = "step.retrying"
    STEP_CANCELLED = "step.cancelled"

    SLEEP_STARTED = "sleep.started"
    SLEEP_COMPLETED = "sleep.completed"

    HOOK_CREATED = "hook.created"
    HOOK_RECEIVED = "hook.received"
    HOOK_EXPIRED = "hook.expired"
    # An outside party failed the hook (fail_hook): the sender's error type and message.
    HOOK_FAILED = "hook.failed"

    CANCELLATION_REQUESTED = "cancellation.requested"

    CONTEXT_UPDATED = "context.updated"

    # A fan-out began: how many items it has (rides with the next write, costs no request).
    PARALLEL_STARTED = "parallel.started"
    # A fan-out stopped early (min_successful / tolerated_failures): which items finished.
    PARALLEL_COMPLETED = "parallel.completed"
    # patched("change-id") first returned True at this point of the run.
    PATCH_APPLIED = "patch.applied"

    CHILD_WORKFLOW_STARTED = "child_workflow.started"
    CHILD_WORKFLOW_COMPLETED = "child_workflow.completed"
    CHILD_WORKFLOW_FAILED = "child_workflow.failed"
    CHILD_WORKFLOW_CANCELLED = "child_workflow.cancelled"


# Events that end an operation. Each durable operation (step, sleep, hook, child, context) is
# identified by ``data["op"]``, its position in call order; its events share that number.
TERMINAL_OP_EVENTS = frozenset(
    {
        EventType.STEP_COMPLETED,
        EventType.STEP_FAILED,
        EventType.STEP_CANCELLED,
        EventType.SLEEP_COMPLETED,
        EventType.HOOK_RECEIVED,
        EventType.HOOK_EXPIRED,
        EventType.HOOK_FAILED,
        EventType.CHILD_WORKFLOW_COMPLETED,
        EventType.CHILD_WORKFLOW_FAILED,
        EventType.CHILD_WORKFLOW_CANCELLED,
        EventType.CONTEXT_UPDATED,
        EventType.PARALLEL_COMPLETED,
        EventType.PATCH_APPLIED,
    }
)

TERMINAL_RUN_EVENTS = frozenset(
    {
        EventType.WORKFLOW_COMPLETED,
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_CANCELLED,
        EventType.WORKFLOW_CONTINUED_AS_NEW,
    }
)


class Event(BaseModel):
    """One immutable entry of a run's history. ``sequence`` starts at 1 and has no gaps."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    run_id: str
    type: EventType
    timestamp: datetime
    data: dict[str, Any] = Field(default_factory=dict)
    sequence: int

    @property
    def op(self) -> int | None:
        """The operation this event belongs to, or None for run-level events."""
        op = self.data.get("op")
        return op if isinstance(op, int) else None

"""What a test looks at: step attempts read from a history, event filters, hook tokens."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from pyworkflow.core import hook as _hook
from pyworkflow.core.events import Event, EventType


class StepOutcome(StrEnum):
    COMPLETED = "completed"
    RETRYING = "retrying"  # this attempt failed and another was scheduled
    FAILED = "failed"  # the last attempt failed: the step raised in the workflow


_STEP_OUTCOMES = {
    EventType.STEP_COMPLETED: StepOutcome.COMPLETED,
    EventType.STEP_RETRYING: StepOutcome.RETRYING,
    EventType.STEP_FAILED: StepOutcome.FAILED,
}


class StepAttempt(BaseModel):
    """One recorded attempt of a step, in history order."""

    model_config = ConfigDict(frozen=True)

    name: str
    attempt: int
    outcome: StepOutcome
    at: datetime  # virtual time the attempt was recorded
    op: int | None = None
    result: Any = None  # completed attempts
    error: str | None = None  # failed ones: message and type name
    error_type: str | None = None
    retry_at: datetime | None = None  # retrying ones: when the next attempt was due


def step_attempts(events: Iterable[Event]) -> list[StepAttempt]:
    attempts = []
    for event in events:
        outcome = _STEP_OUTCOMES.get(event.type)
        if outcome is None:
            continue
        data = event.data
        retry_at = data.get("retry_at")
        attempts.append(
            StepAttempt(
                name=str(data.get("step_name") or data.get("name") or ""),
                attempt=int(data.get("attempt") or 1),
                outcome=outcome,
                at=event.timestamp,
                op=event.op,
                result=data.get("result"),
                error=data.get("error"),
                error_type=data.get("error_type"),
                retry_at=datetime.fromisoformat(retry_at) if retry_at else None,
            )
        )
    return attempts


def filter_events(
    events: Iterable[Event],
    type: EventType | str | Iterable[EventType | str] | None = None,
    name: str | None = None,
) -> list[Event]:
    """Events of one type (``"step.completed"``), of a family (``"step"``: every ``step.*``) or
    of several, and/or of the operation named ``name`` (a step, hook or child workflow)."""
    wanted: set[str] | None = None
    if type is not None:
        wanted = {str(type)} if isinstance(type, str) else {str(t) for t in type}
    found = []
    for event in events:
        if wanted is not None and not (
            event.type.value in wanted or event.type.value.split(".", 1)[0] in wanted
        ):
            continue
        if name is not None and name not in (event.data.get("step_name"), event.data.get("name")):
            continue
        found.append(event)
    return found


# --- hook tokens ------------------------------------------------------------------------------
# Storage keeps only a token's SHA-256, and the token reaches nobody but the workflow's own
# on_created. To hand tokens to tests, every token hook() issues while an environment is open is
# noted here by its hash (the code that sends a token in an e-mail stays the code under test).
_issue_token = _hook.new_token
_recorders: list[dict[str, str]] = []


def _recording_new_token() -> str:
    token = _issue_token()
    for recorder in _recorders:
        recorder[_hook.hash_token(token)] = token
    return token


@contextlib.contextmanager
def recording_tokens(tokens: dict[str, str]) -> Iterator[None]:
    """Note every hook token issued meanwhile into ``tokens`` (token hash -> token)."""
    _recorders.append(tokens)
    _hook.new_token = _recording_new_token  # type: ignore[attr-defined]
    try:
        yield
    finally:
        _recorders.remove(tokens)
        if not _recorders:
            _hook.new_token = _issue_token  # type: ignore[attr-defined]

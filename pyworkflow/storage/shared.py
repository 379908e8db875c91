"""Rules every backend applies the same way, written once: the order of listings and of due
runs, list cursors, the batch check of appended events, the version check of a compare-and-set
and the errors each failure raises.

A backend that pushes a rule into its query language (SQL, DynamoDB keys) mirrors the function
here and re-checks its rows with it where a mismatch could return a wrong row (``is_due``).
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel

from pyworkflow.core.events import Event
from pyworkflow.core.models import Hook, RunStatus, Schedule, WorkflowRun
from pyworkflow.exceptions import ConcurrencyError, WorkflowNotFoundError

M = TypeVar("M", bound=BaseModel)
#: field values a copy of a record may share with the original (exact types: a subclass may not
#: be immutable; enums are checked apart)
_IMMUTABLE = frozenset({str, int, float, bool, bytes, datetime, date, timedelta})


# --- times and orders --------------------------------------------------------------------------
def utc_iso(when: datetime) -> str:
    """Comparable text of a time: UTC, fixed width (offsets would otherwise sort wrongly).
    Naive values are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def run_sort_key(run: WorkflowRun) -> tuple[str, str]:
    """Listings show runs newest first by this key (``created_at``, then ``run_id``)."""
    return (utc_iso(run.created_at), run.run_id)


def hook_sort_key(hook: Hook) -> tuple[datetime, int]:
    """Listings and ``find_hook`` show hooks newest first by this key."""
    return (hook.created_at, hook.op)


def schedule_sort_key(schedule: Schedule) -> tuple[datetime, str]:
    """Listings show schedules newest first by this key."""
    return (schedule.created_at, schedule.schedule_id)


def due_key(run: WorkflowRun) -> str:
    """The order of due runs, the same in every backend: since when the run is due (a sleeper
    since its ``wake_at``; others since their creation, a lease being checked by a filter),
    then its id. Also the ``after`` of ``list_due_runs``' next page."""
    when = run.wake_at if run.status == RunStatus.SUSPENDED and run.wake_at else run.created_at
    return f"{utc_iso(when)}#{run.run_id}"


def is_due(run: WorkflowRun, now: datetime) -> bool:
    """Whether a worker should drive ``run`` at ``now`` (shared by every backend's filter)."""
    if run.status == RunStatus.PENDING:
        return run.lease_expires_at is None or run.lease_expires_at <= now
    if run.status == RunStatus.SUSPENDED:
        return run.wake_at is not None and run.wake_at <= now
    if run.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
        return run.lease_expires_at is None or run.lease_expires_at <= now
    return False


# --- cursors -----------------------------------------------------------------------------------
def encode_cursor(run: WorkflowRun) -> str:
    raw = json.dumps([utc_iso(run.created_at), run.run_id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The ``run_sort_key`` of the last run of the previous page."""
    try:
        created, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(created), str(run_id)
    except Exception as exc:
        raise ValueError(
            f"Invalid cursor {cursor!r}: pass back a next_cursor you were given"
        ) from exc


# --- checks ------------------------------------------------------------------------------------
def private_copy(record: M, update: dict[str, Any] | None = None) -> M:
    """A copy of ``record`` (with ``update`` applied) that shares nothing mutable with it: what
    ``model_copy(deep=True)`` gives, at a fraction of the cost. Most fields of a record hold
    immutable values (strings, numbers, datetimes, enums, None), which need no copy; only the
    others (dicts, lists, nested models) are deep-copied. Deep-copying every field was a third of
    the in-memory backend's time per step."""
    copied = record.model_copy(update=update)
    fields = copied.__dict__
    for name, value in fields.items():
        kind = type(value)
        if kind in _IMMUTABLE or value is None or isinstance(value, Enum):
            continue
        if kind is dict and all(
            type(k) in _IMMUTABLE and (type(v) in _IMMUTABLE or v is None) for k, v in value.items()
        ):
            fields[name] = dict(value)  # (the common case: empty, or flat JSON)
        elif kind is list and all(type(v) in _IMMUTABLE or v is None for v in value):
            fields[name] = list(value)
        else:
            fields[name] = copy.deepcopy(value)
    return copied


def stamped(record: M, version: int) -> M:
    """A deep copy of ``record`` carrying ``version`` (what a create or a CAS stores)."""
    return private_copy(record, {"version": version})


def check_batch(run_id: str, events: list[Event], *, first: int) -> None:
    """Reject a malformed batch before touching storage: events must belong to ``run_id`` and be
    consecutive from ``first`` (the gap-free rule; the stored maximum is checked by the caller).
    """
    for offset, event in enumerate(events):
        if event.run_id != run_id:
            raise ValueError(f"Event {event.event_id} belongs to run {event.run_id}")
        if event.sequence != first + offset:
            raise sequence_taken(run_id, event.sequence, first + offset)


def check_run_version(run_id: str, current: int | None, expected_version: int) -> None:
    """The compare-and-set rule of a run: absent is ``WorkflowNotFoundError``, another version
    is ``ConcurrencyError``."""
    if current is None:
        raise WorkflowNotFoundError(run_id)
    if current != expected_version:
        raise ConcurrencyError(f"Run {run_id} is at version {current}, expected {expected_version}")


def check_run_record(run_id: str, run: WorkflowRun) -> None:
    if run.run_id != run_id:
        raise ValueError(f"Run record {run.run_id} given for run {run_id}")


def require_version(run: WorkflowRun | None, expected_version: int | None) -> int | None:
    """``append_events(run=...)`` needs the version it compares against."""
    if run is not None and expected_version is None:
        raise ValueError("expected_version is required with run=")
    return expected_version


def required_version(expected_version: int | None) -> int:
    """The version a write with ``run=`` compares against (``append_events`` checks it is
    given before any I/O; this is the typed check where it is used)."""
    if expected_version is None:
        raise ValueError("expected_version is required with run=")
    return expected_version


def written(record: M | None) -> M:
    """The record a write with ``run=`` returned (never None there)."""
    if record is None:
        raise RuntimeError("the storage backend wrote no run record for run=")
    return record


# --- errors ------------------------------------------------------------------------------------
def sequence_taken(run_id: str, sequence: int, expected: int) -> ConcurrencyError:
    return ConcurrencyError(
        f"Run {run_id}: sequence {sequence} is taken or out of order (next free is {expected})"
    )


def run_exists(run_id: str) -> ConcurrencyError:
    return ConcurrencyError(f"Run {run_id} already exists")


def key_taken(key: str) -> ConcurrencyError:
    return ConcurrencyError(f"Idempotency key {key!r} already used")


def hook_moved(hook: Hook) -> ConcurrencyError:
    return ConcurrencyError(f"Hook {hook.hook_id} changed concurrently")


def schedule_exists(schedule_id: str) -> ConcurrencyError:
    return ConcurrencyError(f"Schedule {schedule_id} already exists")


def schedule_moved(schedule_id: str) -> ConcurrencyError:
    return ConcurrencyError(f"Schedule {schedule_id} changed concurrently")

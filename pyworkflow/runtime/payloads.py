"""Payloads too large to store: the executor's decision, made before it writes.

A backend says what it can hold (``StorageBackend.payload_limits()``: a blob store's
``PYWORKFLOW_MAX_PAYLOAD_BYTES`` per field, DynamoDB's item limit per record). Before a write the
executor measures the payload fields the way the storage will (JSON bytes of an event's
``data``; a run's text fields and ``context``) and records what does not fit as the failure it
causes: a step result becomes that step's ``step.failed`` (same sequence, so the history stays
gap-free) and the run fails; a workflow result fails the run; a continued run's arguments fail
the run instead of continuing it. Anything else is refused with the ``PayloadTooLargeError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic_core import to_json

from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.exceptions import PayloadTooLargeError, WorkflowError
from pyworkflow.settings import ENV_MAX_PAYLOAD_BYTES, get_settings
from pyworkflow.storage.base import PayloadLimits, StorageBackend
from pyworkflow.storage.offload import RUN_TEXT_FIELDS, describe_event, describe_run_field


@dataclass(frozen=True)
class _Field:
    what: str  # for the error message
    size: int


@dataclass(frozen=True)
class PayloadGuard:
    """The limits one execution writes under."""

    limits: PayloadLimits

    @classmethod
    def for_storage(cls, storage: StorageBackend) -> PayloadGuard | None:
        """None when ``storage`` takes any size (nothing to check). A blob store's limit is
        ``PYWORKFLOW_MAX_PAYLOAD_BYTES`` (or the store's own, if it was built lower)."""
        limits = storage.payload_limits()
        if limits is None:
            return None
        most = get_settings().max_payload_bytes
        if limits.per_field is not None and most < limits.per_field:
            limits = PayloadLimits(
                most, ENV_MAX_PAYLOAD_BYTES, limits.per_record, limits.per_record_setting
            )
        return cls(limits)

    def check(self, records: list[list[_Field]]) -> dict[int, PayloadTooLargeError]:
        """The records (by index) that do not fit, each with the error naming why."""
        errors: dict[int, PayloadTooLargeError] = {}
        per_field, per_record = self.limits.per_field, self.limits.per_record
        for index, fields in enumerate(records):
            if per_record is not None:
                total = sum(f.size for f in fields)
                if total > per_record:
                    largest = max(fields, key=lambda f: f.size)
                    errors[index] = PayloadTooLargeError(
                        largest.what, total, per_record, self.limits.per_record_setting
                    )
                    continue
            if per_field is not None:
                for field in sorted(fields, key=lambda f: -f.size):
                    if field.size > per_field:
                        errors[index] = PayloadTooLargeError(
                            field.what,
                            field.size,
                            per_field,
                            self.limits.per_field_setting or ENV_MAX_PAYLOAD_BYTES,
                        )
                        break
        return errors

    def oversized(
        self, events: list[Event], *runs: WorkflowRun | None
    ) -> dict[int, PayloadTooLargeError]:
        """Errors by position: ``events`` first, then each of ``runs`` (None: absent)."""
        records = [event_fields(e) for e in events]
        records += [run_fields(r) if r is not None else [] for r in runs]
        return self.check(records)


def event_fields(event: Event) -> list[_Field]:
    if event.data is None or event.data == {}:
        return []
    return [_Field(describe_event(event), len(to_json(event.data)))]


def run_fields(run: WorkflowRun) -> list[_Field]:
    fields = [
        _Field(describe_run_field(run, name), len(value.encode()))
        for name in RUN_TEXT_FIELDS
        if (value := getattr(run, name)) is not None
    ]
    if run.context:
        fields.append(_Field(describe_run_field(run, "context"), len(to_json(run.context))))
    return fields


def failed_event(event: Event, error: PayloadTooLargeError) -> Event:
    described = {"error": str(error), "error_type": type(error).__name__}
    if event.type == EventType.STEP_COMPLETED:
        kept = {
            k: event.data[k]
            for k in ("op", "name", "step_name", "attempt", "path")
            if k in event.data
        }
        return event.model_copy(
            update={"type": EventType.STEP_FAILED, "data": {**kept, **described}}
        )
    return event.model_copy(update={"type": EventType.WORKFLOW_FAILED, "data": described})


def failed_run(run: WorkflowRun, error: PayloadTooLargeError) -> WorkflowRun:
    return run.model_copy(
        update={
            "status": RunStatus.FAILED,
            "result": None,
            "error": str(error),
            "error_type": type(error).__name__,
            "continued_to_run_id": None,
        }
    )


def fail_oversized(
    events: list[Event],
    run: WorkflowRun | None,
    errors: dict[int, PayloadTooLargeError],
) -> tuple[list[Event], WorkflowRun | None, PayloadTooLargeError | None]:
    """What an oversized result causes, recorded instead of the result: a step result becomes
    that step's ``step.failed``, a workflow result the run's failure (``errors`` by position,
    the run at ``len(events)``). Returns the events and run to write, and the step failure that
    must end the execution, if any. Anything else cannot be recorded: the error is raised."""
    n = len(events)
    out = list(events)
    failure: PayloadTooLargeError | None = None
    run_error = errors.get(n)
    for i, event in enumerate(events):
        error = errors.get(i)
        if (
            event.type == EventType.WORKFLOW_COMPLETED
            and run is not None
            and (error is not None or run_error is not None)
        ):
            cause = error if error is not None else run_error
            if cause is None:  # (excluded by the condition above; a typed narrowing)
                continue
            out[i] = failed_event(event, cause)
            run, run_error = failed_run(run, cause), None
        elif error is not None and event.type == EventType.STEP_COMPLETED:
            out[i] = failed_event(event, error)
            failure = failure or error
        elif error is not None:
            raise error
    if run_error is not None:
        raise run_error
    return out, run, failure


def fit_final(
    guard: PayloadGuard | None,
    events: list[Event],
    run: WorkflowRun,
    successor: tuple[WorkflowRun, list[Event]] | None,
) -> tuple[list[Event], WorkflowRun, tuple[WorkflowRun, list[Event]] | None]:
    """A run's final write (its events, its record and, when it continues as new, the next
    run) as it can be stored: an oversized result recorded as the failure it causes. When the
    next run's arguments cannot be stored, this run fails instead of continuing."""
    if guard is None:
        return events, run, successor
    if successor is not None:
        records = [
            *map(event_fields, events),
            run_fields(run),
            run_fields(successor[0]),
            *map(event_fields, successor[1]),
        ]
        errors = guard.check(records)
        if not errors:
            return events, run, successor
        error = errors[min(errors)]
        events = [
            failed_event(e, error) if e.type == EventType.WORKFLOW_CONTINUED_AS_NEW else e
            for e in events
        ]
        run, successor = failed_run(run, error), None
    errors = guard.oversized(events, run)
    if errors:
        # A step failure among final events needs no stop: the run ends with this write.
        fitted, fitted_run, _ = fail_oversized(events, run, errors)
        if fitted_run is None:
            raise WorkflowError("A final write without its run record: nothing to fit")
        left = guard.oversized(fitted, fitted_run)
        if left:
            raise left[min(left)]
        events, run = fitted, fitted_run
    return events, run, successor


__all__ = [
    "PayloadGuard",
    "fail_oversized",
    "failed_event",
    "failed_run",
    "fit_final",
]

"""A plugin that records every call it gets, as tuples, for the tests to compare."""

from __future__ import annotations

from typing import Any

from pyworkflow.observability import Instrumentation


class Recording(Instrumentation):
    def __init__(self, name: str = "rec") -> None:
        self.name = name
        self.calls: list[tuple[Any, ...]] = []

    def run_started(self, run):
        self.calls.append(("run_started", run.workflow, run.first_execution))

    def run_ended(self, run, status, error, duration):
        self.calls.append(("run_ended", run.workflow, status, error.type if error else None))

    def operation_started(self, op):
        self.calls.append(("operation_started", op.kind, op.name, op.op_id, op.replayed))

    def operation_ended(self, op, outcome, duration):
        error = outcome.error.message if outcome.error else None
        self.calls.append(
            ("operation_ended", op.kind, op.name, op.op_id, outcome.status.value, op.attempt)
        )
        self.results = getattr(self, "results", []) + [(op.name, outcome.result, error)]

    def attempt_started(self, op):
        self.calls.append(("attempt_started", op.name, op.attempt))

    def attempt_ended(self, op, outcome, duration):
        self.calls.append(("attempt_ended", op.name, op.attempt, outcome.status.value))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == kind]


class Faulty(Instrumentation):
    """Raises from every call (after counting it)."""

    def __init__(self) -> None:
        self.count = 0

    def _boom(self, *args: Any) -> None:
        self.count += 1
        raise RuntimeError("plugin bug")

    run_started = run_ended = operation_started = operation_ended = _boom
    attempt_started = attempt_ended = trace_context = _boom

"""Registries of workflows, steps and hook schemas, filled by the decorators at import time."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pyworkflow.core.retry_policy import RetryPolicy
from pyworkflow.exceptions import ConfigurationError


@dataclass
class WorkflowDefinition:
    name: str
    func: Callable[..., Any]  # the user's function
    wrapper: Callable[..., Any]  # what @workflow returned
    durable: bool | None = None
    max_duration: str | None = None
    tags: list[str] = field(default_factory=list)
    context_class: type | None = None
    version: str | None = None
    signature: inspect.Signature | None = None
    hints: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepDefinition:
    name: str
    func: Callable[..., Any]
    max_retries: int | None  # None: the configured default_retries, read when the step runs
    retry_delay: str | int | float | list[int | float]
    timeout: float | None
    metadata: dict[str, Any]
    return_annotation: Any = None
    retry: RetryPolicy | None = None  # replaces max_retries/retry_delay when given
    constrained: bool = False  # the result is checked against an Annotated return type
    serdes: Any = None  # @step(serdes=): records the result (core.fan_out_policy.Serdes)


_workflows: dict[str, WorkflowDefinition] = {}
_steps: dict[str, StepDefinition] = {}
# Hook name -> the models registered under it (several workflows may each have an "approval").
_hook_schemas: dict[str, list[type]] = {}


def type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        # include_extras: ``Annotated[int, Field(gt=0)]`` keeps its constraints (pydantic
        # applies them to arguments and results); without it the hint is a bare ``int``.
        return get_type_hints(func, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable forward refs: fall back to plain JSON
        return {}


def register_workflow(defn: WorkflowDefinition) -> None:
    existing = _workflows.get(defn.name)
    if existing is not None and existing.func.__qualname__ != defn.func.__qualname__:
        raise ConfigurationError(
            f"Two different workflows are named {defn.name!r} ({existing.func.__module__}."
            f"{existing.func.__qualname__} and {defn.func.__module__}.{defn.func.__qualname__}). "
            "Pass name=... to @workflow to tell them apart."
        )
    _workflows[defn.name] = defn


def register_step(defn: StepDefinition) -> None:
    _steps[defn.name] = defn


def register_hook_schema(name: str, schema: type) -> None:
    models = _hook_schemas.setdefault(name, [])
    if schema not in models:
        models.append(schema)


def get_hook_schema(name: str, json_schema: dict[str, Any] | None = None) -> type | None:
    """The model registered for hook ``name``; with ``json_schema`` (what a hook record says
    its waiting code declared), only the model with exactly that JSON schema."""
    models = _hook_schemas.get(name, [])
    if json_schema is None:
        return models[-1] if models else None
    for model in reversed(models):
        dump = getattr(model, "model_json_schema", None)
        if dump is not None and dump() == json_schema:
            return model
    return None


def get_workflow(name: str) -> WorkflowDefinition | None:
    return _workflows.get(name)


def get_workflow_by_func(func: Callable[..., Any]) -> WorkflowDefinition | None:
    name = getattr(func, "__workflow_name__", None)
    if name is not None:
        return _workflows.get(name)
    for defn in _workflows.values():
        if defn.func is func or defn.wrapper is func:
            return defn
    return None


def not_registered_message(func: Callable[..., Any]) -> str:
    """pyworkflow-engine's words for a function that is not a workflow (code may match on
    them)."""
    name = getattr(func, "__name__", repr(func))
    return (
        f"Function {name} is not registered as a workflow. Did you forget the @workflow decorator?"
    )


def list_workflows() -> dict[str, WorkflowDefinition]:
    return dict(_workflows)


def get_step(name: str) -> StepDefinition | None:
    return _steps.get(name)


def list_steps() -> dict[str, StepDefinition]:
    return dict(_steps)

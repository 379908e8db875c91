"""Which workflows this process can run, and how one is described (``GET /workflows``, the
clients' ``list_workflows``)."""

from __future__ import annotations

import inspect

from pydantic import BaseModel, ConfigDict, Field

from pyworkflow.core.registry import WorkflowDefinition, get_workflow, list_workflows
from pyworkflow.exceptions import UnknownWorkflowError

__all__ = ["WorkflowInfo", "list_workflow_infos", "resolve_workflow", "workflow_info"]


class WorkflowInfo(BaseModel):
    """One registered workflow. Servers may add fields: a client keeps them as extras."""

    model_config = ConfigDict(extra="allow")

    name: str
    max_duration: str | None = None
    durable: bool | None = None
    tags: list[str] = Field(default_factory=list)
    version: str | None = None
    signature: str | None = Field(default=None, description="e.g. (order_id: str) -> dict")
    description: str | None = Field(default=None, description="the docstring's first line")


def resolve_workflow(name: str, *, import_error: str | None = None) -> WorkflowDefinition:
    """The registered workflow ``name``, or ``UnknownWorkflowError`` listing the ones that are,
    so a missing import is not mistaken for a missing run. ``import_error``: why the workflow
    module failed to import, when it did."""
    defn = get_workflow(name)
    if defn is not None:
        return defn
    known = ", ".join(sorted(list_workflows())) or "(none)"
    message = f"Workflow {name!r} is not registered. Available: {known}"
    message += (
        f". The workflow module failed to import: {import_error}"
        if import_error
        else ". Import the module that defines it (or set PYWORKFLOW_MODULE)"
    )
    raise UnknownWorkflowError(message)


def _signature(defn: WorkflowDefinition) -> str | None:
    """The signature with resolved annotations (``(n: int) -> str``, not ``(n: 'int')``)."""
    sig = defn.signature
    if sig is None:
        return None
    params = [
        p.replace(annotation=defn.hints.get(name, p.annotation))
        for name, p in sig.parameters.items()
    ]
    return str(
        sig.replace(
            parameters=params, return_annotation=defn.hints.get("return", sig.return_annotation)
        )
    )


def workflow_info(defn: WorkflowDefinition) -> WorkflowInfo:
    doc = inspect.getdoc(defn.func)
    return WorkflowInfo(
        name=defn.name,
        max_duration=defn.max_duration,
        durable=defn.durable,
        tags=list(defn.tags),
        version=defn.version,
        signature=_signature(defn),
        description=doc.strip().splitlines()[0] if doc and doc.strip() else None,
    )


def list_workflow_infos() -> list[WorkflowInfo]:
    """Every registered workflow, by name."""
    return [workflow_info(d) for _, d in sorted(list_workflows().items())]

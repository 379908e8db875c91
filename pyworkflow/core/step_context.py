"""Step context: small typed data a workflow sets and its steps read (pyworkflow-engine API).

``set_step_context`` is a durable operation (``context.updated``), so replay restores the same
value at the same point. Steps may read it but not change it.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from pyworkflow.core import context as _ctx
from pyworkflow.core.events import EventType
from pyworkflow.core.serde import to_jsonable


class StepContext(BaseModel):
    """Subclass with your fields and pass it as ``@workflow(context_class=...)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def with_updates(self, **kwargs: Any) -> Self:
        return self.model_copy(update=kwargs)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)


def _context_class(ctx: _ctx.WorkflowContext) -> type[StepContext] | None:
    from pyworkflow.core.registry import get_workflow

    defn = get_workflow(ctx.workflow_name)
    return defn.context_class if defn else None


def has_step_context() -> bool:
    ctx = _ctx.current()
    return ctx is not None and ctx.step_context is not None


def get_step_context() -> Any:
    """The current step context. Raises RuntimeError when none was set."""
    ctx = _ctx.current()
    if ctx is None:
        raise RuntimeError("get_step_context() can only be used inside a workflow or its steps")
    if ctx.step_context is None:
        cls = _context_class(ctx)
        if cls is None:
            raise RuntimeError(
                "No step context: declare @workflow(context_class=MyContext) and call "
                "await set_step_context(MyContext(...)) first"
            )
        try:
            ctx.step_context = cls()
        except Exception as exc:
            raise RuntimeError(
                f"No step context set yet and {cls.__name__}() needs arguments: call "
                "await set_step_context(...) first"
            ) from exc
    return ctx.step_context


async def set_step_context(value: StepContext) -> None:
    """Replace the step context (workflow code only; steps see it read-only)."""
    current = _ctx.current()
    if current is not None and current.in_step:
        raise RuntimeError("The step context is read-only inside steps; set it in the workflow")
    ctx = _ctx.require("set_step_context()")
    if not isinstance(value, StepContext):
        raise TypeError("set_step_context() takes a StepContext instance")
    cls = _context_class(ctx)
    if cls is not None and not isinstance(value, cls):
        raise TypeError(
            f"This workflow's context_class is {cls.__name__}, got {type(value).__name__}"
        )
    name = type(value).__name__
    op, rec = await ctx.begin("context", name)
    if rec is not None and rec.terminal is not None:
        ctx.step_context = type(value).model_validate(rec.terminal.data["context"])
        return
    recorded = to_jsonable(value.to_dict(), what=f"The step context {name}")
    await ctx.record(
        EventType.CONTEXT_UPDATED, {"op": op, "name": name, "context": recorded}, defer=True
    )
    # What replay will build from the history (keys as JSON has them...), not the object given
    ctx.step_context = type(value).model_validate(recorded)

"""Step context: small typed data a workflow sets and its steps read (pyworkflow-engine API).

``set_step_context`` is a durable operation (``context.updated``), so replay restores the same
value at the same point. Steps may read it but not change it.
"""

from __future__ import annotations

from contextvars import ContextVar
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


def _context_class(ctx: _ctx.ExecutionContext) -> type[StepContext] | None:
    from pyworkflow.core.registry import get_workflow

    defn = get_workflow(ctx.workflow_name)
    return defn.context_class if defn else None


# The step context set under a context the user installed (``set_context``: a MockContext),
# where no execution holds it. Per task, like the installed context itself.
_installed_step_context: ContextVar[StepContext | None] = ContextVar(
    "pyworkflow_installed_step_context", default=None
)


def has_step_context() -> bool:
    ctx = _ctx.current()
    if ctx is None and _ctx.override() is not None:
        return _installed_step_context.get() is not None
    return ctx is not None and ctx.step_context is not None


def get_step_context() -> Any:
    """The current step context. Raises RuntimeError when none was set."""
    ctx = _ctx.current()
    if ctx is None and _ctx.override() is not None:
        value = _installed_step_context.get()
        if value is None:
            raise RuntimeError("No step context available: call await set_step_context(...) first")
        return value
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


async def set_step_context(ctx: StepContext) -> None:
    """Replace the step context (workflow code only; steps see it read-only)."""
    # ``ctx``: pyworkflow-engine's parameter name (callers may pass it by keyword)
    value = ctx
    current = _ctx.current()
    if current is not None and current.in_step:
        raise RuntimeError("The step context is read-only inside steps; set it in the workflow")
    if current is None and _ctx.override() is not None:
        if not isinstance(value, StepContext):
            raise TypeError("set_step_context() takes a StepContext instance")
        _installed_step_context.set(value)  # nothing to record: no run of ours is executing
        return
    run_ctx = _ctx.require("set_step_context()")
    if not isinstance(value, StepContext):
        raise TypeError("set_step_context() takes a StepContext instance")
    cls = _context_class(run_ctx)
    if cls is not None and not isinstance(value, cls):
        raise TypeError(
            f"This workflow's context_class is {cls.__name__}, got {type(value).__name__}"
        )
    name = type(value).__name__
    op, rec = await run_ctx.begin("context", name)
    if rec is not None and rec.terminal is not None:
        run_ctx.step_context = type(value).model_validate(rec.terminal.data["context"])
        return
    recorded = to_jsonable(value.to_dict(), what=f"The step context {name}")
    await run_ctx.record(
        EventType.CONTEXT_UPDATED, {"op": op, "name": name, "context": recorded}, defer=True
    )
    # What replay will build from the history (keys as JSON has them...), not the object given
    run_ctx.step_context = type(value).model_validate(recorded)

"""``@workflow``: an async function whose progress is recorded and replayed.

Arguments are checked against the signature when a run starts (not when it first executes), are
stored as JSON, and reach the function decoded with its annotations, the same on every replay.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from pyworkflow.core.duration import parse_duration
from pyworkflow.core.registry import WorkflowDefinition, register_workflow, type_hints
from pyworkflow.core.serde import (
    check_result,
    dumps,
    from_jsonable,
    to_jsonable,
    type_label,
    validate,
)
from pyworkflow.exceptions import InvalidArgumentsError, SerializationError

F = TypeVar("F", bound=Callable[..., Any])
MAX_TAGS = 3


@overload
def workflow(name: F) -> F: ...
@overload
def workflow(
    name: str | None = None,
    durable: bool | None = None,
    max_duration: str | None = None,
    tags: list[str] | None = None,
    recover_on_worker_loss: bool | None = None,
    max_recovery_attempts: int | None = None,
    context_class: type | None = None,
    *,
    version: str | None = None,
) -> Callable[[F], F]: ...


def workflow(
    name: Any = None,
    durable: bool | None = None,
    max_duration: str | None = None,
    tags: list[str] | None = None,
    recover_on_worker_loss: bool | None = None,
    max_recovery_attempts: int | None = None,
    context_class: type | None = None,
    *,
    version: str | None = None,
) -> Any:
    """Mark an async function as a workflow. Usable as ``@workflow`` or ``@workflow(...)``.

    ``durable=False`` runs without recording (a transient run); ``max_duration`` ("1h") fails
    the run when exceeded; ``context_class`` enables ``get_step_context``/``set_step_context``.
    """
    if callable(name):
        return workflow()(name)
    if max_duration is not None:
        parse_duration(max_duration, name="@workflow max_duration")
    tag_list = [t.strip() for t in (tags or []) if t and t.strip()]
    if len(tag_list) > MAX_TAGS:
        raise ValueError(f"A workflow has at most {MAX_TAGS} tags, got {len(tag_list)}")
    if context_class is not None:
        from pyworkflow.core.step_context import StepContext

        if not (isinstance(context_class, type) and issubclass(context_class, StepContext)):
            raise TypeError("context_class must be a subclass of pyworkflow.StepContext")

    def decorate(func: F) -> F:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(
                f"@workflow needs an async function: make {func.__qualname__} 'async def'"
            )

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, **kwargs)

        defn = WorkflowDefinition(
            name=name or func.__name__,
            func=func,
            wrapper=wrapper,
            durable=durable,
            max_duration=max_duration,
            tags=tag_list,
            context_class=context_class,
            version=version,
            signature=inspect.signature(func),
            hints=type_hints(func),
        )
        register_workflow(defn)
        wrapper.__workflow__ = True  # type: ignore[attr-defined]
        wrapper.__workflow_name__ = defn.name  # type: ignore[attr-defined]
        wrapper.__workflow_durable__ = durable  # type: ignore[attr-defined]
        wrapper.__workflow_max_duration__ = max_duration  # type: ignore[attr-defined]
        wrapper.__workflow_tags__ = tag_list  # type: ignore[attr-defined]
        wrapper.__workflow_context_class__ = context_class  # type: ignore[attr-defined]
        wrapper.__workflow_definition__ = defn  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def encode_arguments(
    defn: WorkflowDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Check ``args``/``kwargs`` against the workflow and return them as JSON data.

    Raises ``InvalidArgumentsError`` naming the problem; nothing has been written yet then.
    """
    sig = defn.signature
    if sig is not None:
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentsError(
                f"Arguments do not fit workflow {defn.name!r}{sig}: {exc}"
            ) from None
        for pname, value in bound.arguments.items():
            annotation = defn.hints.get(pname)
            param = sig.parameters[pname]
            if annotation is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            encoded = _storable(value, f"Argument {pname!r} of workflow {defn.name!r}")
            try:
                validate(encoded, annotation)
            except Exception as exc:  # noqa: BLE001 - pydantic's message names the field
                raise InvalidArgumentsError(
                    f"Argument {pname!r} of workflow {defn.name!r} does not fit "
                    f"{type_label(annotation)}: {exc}"
                ) from None
    what = f"The arguments of workflow {defn.name!r}"
    return _storable(list(args), what), _storable(kwargs, what)


def _storable(value: Any, what: str) -> Any:
    """``value`` as JSON data, or ``InvalidArgumentsError`` saying why it cannot be stored."""
    try:
        return to_jsonable(value, what=what)
    except SerializationError as exc:
        raise InvalidArgumentsError(str(exc), path=exc.path) from None


def encode_result(defn: WorkflowDefinition, result: Any) -> str:
    """The workflow's result as JSON text, checked against a constrained return annotation
    (``InvalidResultError``; ``SerializationError`` if it cannot be stored at all)."""
    what = f"The result of workflow {defn.name!r}"
    text = dumps(result, what=what)
    if "return" in defn.hints:
        check_result(to_jsonable(result, what=what), defn.hints["return"], what=what)
    return text


def decode_arguments(
    defn: WorkflowDefinition, args: list[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Stored JSON arguments → values typed by the function's annotations."""
    sig = defn.signature
    if sig is None:
        return list(args), dict(kwargs)
    params = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    out_args = [
        from_jsonable(value, defn.hints.get(params[i].name)) if i < len(params) else value
        for i, value in enumerate(args)
    ]
    out_kwargs = {k: from_jsonable(v, defn.hints.get(k)) for k, v in kwargs.items()}
    return out_args, out_kwargs

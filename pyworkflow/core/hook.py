"""``hook``: wait for a payload from outside (an approval, a webhook, a callback).

The token handed to ``on_created`` is 192 random bits, unrelated to the run id. Storage keeps only
its SHA-256 and the history never contains it. ``resume_hook`` stores the payload on the hook
record and wakes the run; the run itself copies it into its history (``hook.received``) when it
reaches the hook, so only the run's own worker ever writes its history.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from pyworkflow.core import context as _ctx
from pyworkflow.core.clock import new_token
from pyworkflow.core.duration import parse_duration, resolve_wake_time
from pyworkflow.core.events import EventType
from pyworkflow.core.models import Hook, HookStatus
from pyworkflow.core.models import hash_token as hash_token  # its former home: still importable
from pyworkflow.core.registry import register_hook_schema
from pyworkflow.core.serde import from_jsonable
from pyworkflow.exceptions import HookExpiredError, SuspensionSignal

T = TypeVar("T", bound=BaseModel)


async def hook(
    name: str,
    *,
    timeout: str | int | float | None = None,
    on_created: Callable[[str], Awaitable[None] | None] | None = None,
    payload_schema: type[BaseModel] | None = None,
) -> Any:
    """Suspend until ``resume_hook(token, payload)``; return the payload (validated into
    ``payload_schema`` when given). ``timeout`` ("24h", seconds) raises ``HookExpiredError``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("hook() needs a non-empty name")
    if timeout is not None:
        parse_duration(timeout, name="hook() timeout")
    installed = _ctx.override()
    if _ctx.current() is None and installed is not None:
        return await _hook_of(installed, name, timeout, on_created, payload_schema)
    ctx = _ctx.require("hook()")
    if payload_schema is not None:
        register_hook_schema(name, payload_schema)
    # Only what this call declares: another workflow's hook of the same name may be typed
    schema = payload_schema

    op, rec = await ctx.begin("hook", name)
    ctx.check_cancellation(rec)
    if rec is not None and rec.terminal is not None:
        return _outcome(rec.terminal.type, rec.terminal.data, name, schema)

    hook_id = f"hook_{name}_{ctx.path_of(op)}"  # a path inside a fan-out
    if rec is None:
        expires_at = (
            resolve_wake_time(timeout, ctx.now(), name="hook() timeout")
            if timeout is not None
            else None
        )
        fresh = new_token()
        token: str | None = fresh  # None once another record turns out to be the hook
        created = ctx.now()
        stale = await ctx.journal.get_hook(ctx.run_id, hook_id)
        if stale is not None and stale.status == HookStatus.PENDING:
            # An earlier execution stored this hook and died before recording hook.created:
            # its on_created never ran, so nobody holds that token. It is set aside, and the
            # new record is strictly newer, so "the newest" (resume by name, the run's own
            # lookup) is this one even when the clock has not moved since.
            stale = await ctx.journal.expire_hook(stale, HookStatus.DISPOSED)
        if stale is not None and stale.status != HookStatus.DISPOSED:
            token = None  # resumed by name meanwhile (or expired): that record is the hook
        else:
            if stale is not None:
                created = max(created, stale.created_at + timedelta(microseconds=1))
            await ctx.journal.create_hook(
                Hook(
                    token_hash=hash_token(fresh),
                    run_id=ctx.run_id,
                    hook_id=hook_id,
                    op=op,
                    name=name,
                    created_at=created,
                    expires_at=expires_at,
                    payload_schema=schema.model_json_schema() if schema else None,
                )
            )
        await ctx.record(
            EventType.HOOK_CREATED,
            {
                "op": op,
                "name": name,
                "hook_id": hook_id,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        if on_created is not None and token is not None:
            # Runs once, when the hook is created, and is not replayed: a step called in it
            # would be an op missing on replay (shifting every later op), so it runs as a
            # plain call, as a step called from a step does.
            in_step = _ctx.enter_step(f"the on_created callback of hook {name!r}")
            try:
                result = on_created(token)
                if inspect.isawaitable(result):
                    await result
            finally:
                _ctx.leave_step(in_step)
    else:
        recorded = ctx.opening(rec, EventType.HOOK_CREATED)
        raw = recorded.data.get("expires_at")
        expires_at = datetime.fromisoformat(raw) if raw else None

    stored = await ctx.journal.get_hook(ctx.run_id, hook_id)
    if (
        stored is not None
        and stored.status == HookStatus.PENDING
        and expires_at is not None
        and ctx.now() >= expires_at
    ):
        stored = await ctx.journal.expire_hook(stored)
    if stored is not None and stored.status == HookStatus.RECEIVED:
        data = {"op": op, "name": name, "hook_id": hook_id, "payload": stored_payload(stored)}
        await ctx.record(EventType.HOOK_RECEIVED, data)
        return _outcome(EventType.HOOK_RECEIVED, data, name, schema)
    if stored is not None and stored.status == HookStatus.EXPIRED:
        data = {"op": op, "name": name, "hook_id": hook_id}
        await ctx.record(EventType.HOOK_EXPIRED, data)
        return _outcome(EventType.HOOK_EXPIRED, data, name, schema)
    raise await ctx.suspension(SuspensionSignal("hook", wake_at=expires_at, op=op, hook_id=hook_id))


async def _hook_of(
    installed: Any,
    name: str,
    timeout: str | int | float | None,
    on_created: Callable[[str], Awaitable[None] | None] | None,
    schema: type[BaseModel] | None,
) -> Any:
    """``hook()`` under a context the user installed (``set_context``): it answers (a
    ``MockContext`` with its mock payload); a typed hook still validates what it gets."""
    if installed.is_step_worker:
        raise RuntimeError(
            "hook() cannot be called from within a step. Hooks require workflow suspension "
            "which is not supported during step execution. Move the hook() call to "
            "workflow-level code instead."
        )
    seconds = None if timeout is None else int(parse_duration(timeout, name="hook() timeout"))

    async def created(token: str) -> None:
        if on_created is not None:
            result = on_created(token)
            if inspect.isawaitable(result):
                await result

    payload = await installed.hook(name, timeout=seconds, on_created=created, payload_schema=schema)
    if schema is not None and not isinstance(payload, schema):
        return from_jsonable(payload, schema)
    return payload


def stored_payload(hook: Hook) -> Any:
    return hook.payload


def _outcome(type_: EventType, data: dict[str, Any], name: str, schema: type | None) -> Any:
    if type_ == EventType.HOOK_EXPIRED:
        raise HookExpiredError(
            str(data.get("hook_id") or ""), detail=f"{name} (timed out waiting for its payload)"
        )
    return from_jsonable(data.get("payload"), schema)


class TypedHook(Generic[T]):
    """A named hook whose payload is validated against a pydantic model (``define_hook``)."""

    def __init__(self, name: str, schema: type[T]) -> None:
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise TypeError("define_hook() needs a pydantic BaseModel subclass as its schema")
        self.name = name
        self.schema = schema
        register_hook_schema(name, schema)

    async def __call__(
        self,
        *,
        timeout: str | int | float | None = None,
        on_created: Callable[[str], Awaitable[None] | None] | None = None,
    ) -> T:
        result: T = await hook(
            self.name, timeout=timeout, on_created=on_created, payload_schema=self.schema
        )
        return result

    def __repr__(self) -> str:
        return f"TypedHook({self.name!r}, {self.schema.__name__})"


def define_hook(name: str, schema: type[T]) -> TypedHook[T]:
    """A reusable typed hook: ``approval = define_hook("approval", Approval)``, then
    ``payload = await approval(timeout="24h")`` inside a workflow."""
    return TypedHook(name, schema)

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
from pyworkflow.core.registry import StepDefinition, register_hook_schema
from pyworkflow.core.retry import validate_retry_delay
from pyworkflow.core.serde import from_jsonable
from pyworkflow.core.step import execute_step
from pyworkflow.exceptions import (
    HookExpiredError,
    HookFailedError,
    HookHeartbeatTimeoutError,
    HookPayloadError,
    SuspensionSignal,
)

T = TypeVar("T", bound=BaseModel)


async def hook(
    name: str | None = None,
    *,
    timeout: str | int | float | None = None,
    on_created: Callable[[str], Awaitable[None] | None] | None = None,
    payload_schema: type[BaseModel] | None = None,
    heartbeat_timeout: str | int | float | None = None,
    submit: Callable[[str], Any] | None = None,
    submit_retries: int | None = None,
    submit_retry_delay: str | int | float | list[int | float] = "exponential",
) -> Any:
    """Suspend until ``resume_hook(token, payload)``; return the payload (validated into
    ``payload_schema`` when given).

    - ``timeout`` ("24h", seconds) raises ``HookExpiredError``.
    - ``fail_hook(token, error)`` raises ``HookFailedError`` (the sender's type and message).
    - ``heartbeat_timeout``: the outside party must call ``heartbeat_hook(token)`` at least
      that often, or ``HookHeartbeatTimeoutError`` is raised (distinct from ``timeout``).
    - ``submit(token)``: hands the token out (an email, a queue message) as a recorded step of
      its own, retried with ``submit_retries``/``submit_retry_delay`` (as ``@step``'s
      ``max_retries``/``retry_delay``; a ``@step`` function brings its own), and never run
      again once it succeeded. ``on_created`` is the older, unrecorded form.
    - ``name`` labels the hook (resume by name, timelines); a hook without one is allowed.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError("hook() name must be a non-empty string (or omitted)")
    label = name or ""
    if timeout is not None:
        parse_duration(timeout, name="hook() timeout")
    beat = _heartbeat_seconds(heartbeat_timeout)
    submitter = _submitter(label, submit, submit_retries, submit_retry_delay)
    once = bool(getattr(submit, "__step_at_most_once__", False))
    installed = _ctx.override()
    if _ctx.current() is None and installed is not None:
        return await _hook_of(
            installed, label, timeout, _with_submit(on_created, submit), payload_schema
        )
    ctx = _ctx.require("hook()")
    if payload_schema is not None and label:
        register_hook_schema(label, payload_schema)
    # Only what this call declares: another workflow's hook of the same name may be typed
    schema = payload_schema

    op, rec = await ctx.begin("hook", label)
    ctx.check_cancellation(rec)
    if rec is not None and rec.terminal is not None:
        if submitter is not None:
            await _submit(
                ctx, submitter, None, once
            )  # its op is the next one, whatever it recorded
        return _outcome(rec.terminal.type, rec.terminal.data, label, schema)

    hook_id = f"hook_{label}_{ctx.path_of(op)}"  # a path inside a fan-out
    token: str | None = None  # the live token, when this execution holds one
    if rec is None:
        expires_at = (
            resolve_wake_time(timeout, ctx.now(), name="hook() timeout")
            if timeout is not None
            else None
        )
        token = await _create(ctx, op, label, hook_id, expires_at, beat, schema)
        data: dict[str, Any] = {
            "op": op,
            "name": label,
            "hook_id": hook_id,
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
        if beat is not None:
            data["heartbeat_timeout"] = beat
        await ctx.record(EventType.HOOK_CREATED, data)
        if on_created is not None and token is not None:
            # Runs once, when the hook is created, and is not replayed: a step called in it
            # would be an op missing on replay (shifting every later op), so it runs as a
            # plain call, as a step called from a step does.
            in_step = _ctx.enter_step(f"the on_created callback of hook {label!r}")
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
        if submitter is not None and not _recorded_outcome(ctx.peek(), submitter):
            # The submitter has not succeeded yet (a crash, or a retry that waited out of
            # process): only the token's hash was kept, so the hook gets a new token (the
            # old one stops working) and the submitter is given that one.
            token = await _new_token(ctx, hook_id)
    if submitter is not None:
        try:
            await _submit(ctx, submitter, token, once)
        except Exception:
            stale = await ctx.journal.get_hook(ctx.run_id, hook_id)
            if stale is not None and stale.status == HookStatus.PENDING:
                await ctx.journal.expire_hook(stale, HookStatus.DISPOSED)  # nobody holds it
            raise
    return await _settle(ctx, op, label, hook_id, expires_at, schema)


async def _create(
    ctx: _ctx.ExecutionContext,
    op: int,
    label: str,
    hook_id: str,
    expires_at: datetime | None,
    beat: float | None,
    schema: type[BaseModel] | None,
) -> str | None:
    """Store the hook record; its token, or None when an earlier record is the hook."""
    fresh = new_token()
    created = ctx.now()
    stale = await ctx.journal.get_hook(ctx.run_id, hook_id)
    if stale is not None and stale.status == HookStatus.PENDING:
        # An earlier execution stored this hook and died before recording hook.created: its
        # on_created never ran, so nobody holds that token. It is set aside, and the new
        # record is strictly newer, so "the newest" (resume by name, the run's own lookup) is
        # this one even when the clock has not moved since.
        stale = await ctx.journal.expire_hook(stale, HookStatus.DISPOSED)
    if stale is not None and stale.status != HookStatus.DISPOSED:
        return None  # resumed by name meanwhile (or expired): that record is the hook
    if stale is not None:
        created = max(created, stale.created_at + timedelta(microseconds=1))
    await ctx.journal.create_hook(
        Hook(
            token_hash=hash_token(fresh),
            run_id=ctx.run_id,
            hook_id=hook_id,
            op=op,
            name=label,
            created_at=created,
            expires_at=expires_at,
            payload_schema=schema.model_json_schema() if schema else None,
            heartbeat_timeout=beat,
            heartbeat_deadline=created + timedelta(seconds=beat) if beat is not None else None,
        )
    )
    return fresh


async def _new_token(ctx: _ctx.ExecutionContext, hook_id: str) -> str | None:
    """Replace a pending hook's token (see ``hook``); None if it is settled or missing."""
    stored = await ctx.journal.get_hook(ctx.run_id, hook_id)
    if stored is None or stored.status != HookStatus.PENDING:
        return None
    stored = await ctx.journal.expire_hook(stored, HookStatus.DISPOSED)
    if stored.status != HookStatus.DISPOSED:
        return None  # settled meanwhile: that record is the hook
    fresh = new_token()
    await ctx.journal.create_hook(
        stored.model_copy(
            update={
                "token_hash": hash_token(fresh),
                "status": HookStatus.PENDING,
                "created_at": max(ctx.now(), stored.created_at + timedelta(microseconds=1)),
                "version": 0,
            }
        )
    )
    return fresh


async def _settle(
    ctx: _ctx.ExecutionContext,
    op: int,
    label: str,
    hook_id: str,
    expires_at: datetime | None,
    schema: type[BaseModel] | None,
) -> Any:
    """What the stored hook says now: its payload, its failure, its expiry — or wait."""
    stored = await ctx.journal.get_hook(ctx.run_id, hook_id)
    if stored is not None and stored.status == HookStatus.PENDING:
        due = _due(stored, expires_at)
        if due is not None and ctx.now() >= due:
            stored = await ctx.journal.expire_hook(stored)  # (a heartbeat may have won)
    base: dict[str, Any] = {"op": op, "name": label, "hook_id": hook_id}
    if stored is not None and stored.status == HookStatus.RECEIVED:
        data = {**base, "payload": stored_payload(stored)}
        await ctx.record(EventType.HOOK_RECEIVED, data)
        return _outcome(EventType.HOOK_RECEIVED, data, label, schema)
    if stored is not None and stored.status == HookStatus.FAILED:
        data = {**base, "error_type": stored.error_type or "", "error": stored.error_message or ""}
        await ctx.record(EventType.HOOK_FAILED, data)
        return _outcome(EventType.HOOK_FAILED, data, label, schema)
    if stored is not None and stored.status == HookStatus.EXPIRED:
        data = {**base, "reason": "heartbeat" if _beat_first(stored, expires_at) else "timeout"}
        if stored.heartbeat_timeout is not None:
            data["heartbeat_timeout"] = stored.heartbeat_timeout
        await ctx.record(EventType.HOOK_EXPIRED, data)
        return _outcome(EventType.HOOK_EXPIRED, data, label, schema)
    wake_at = _due(stored, expires_at) if stored is not None else expires_at
    raise await ctx.suspension(SuspensionSignal("hook", wake_at=wake_at, op=op, hook_id=hook_id))


def _beat_first(hook: Hook, expires_at: datetime | None) -> bool:
    """Whether the heartbeat deadline comes before the overall expiry (so it ended the hook)."""
    beat = hook.heartbeat_deadline
    return beat is not None and (expires_at is None or beat < expires_at)


def _due(hook: Hook, expires_at: datetime | None) -> datetime | None:
    """When the pending ``hook`` ends unless something arrives: the earlier of its expiry and
    its heartbeat deadline."""
    return hook.heartbeat_deadline if _beat_first(hook, expires_at) else expires_at


def _heartbeat_seconds(value: str | int | float | None) -> float | None:
    if value is None:
        return None
    seconds = float(parse_duration(value, name="hook() heartbeat_timeout"))
    if seconds <= 0:
        raise ValueError(f"hook() heartbeat_timeout must be positive, got {value!r}")
    return seconds


def _submitter(
    label: str,
    submit: Callable[[str], Any] | None,
    retries: int | None,
    retry_delay: str | int | float | list[int | float],
) -> StepDefinition | None:
    """The step ``submit`` runs as: a ``@step`` function's own definition, else one named
    ``<hook>.submit`` with the given retry policy."""
    if submit is None:
        return None
    if not callable(submit):
        raise TypeError(f"hook() submit must be callable, got {submit!r}")
    defined = getattr(submit, "__step_definition__", None)
    if isinstance(defined, StepDefinition):
        return defined
    if retries is not None and (not isinstance(retries, int) or retries < 0):
        raise ValueError(f"submit_retries must be a non-negative integer, got {retries!r}")
    validate_retry_delay(retry_delay)
    return StepDefinition(
        name=f"{label or 'hook'}.submit",
        func=submit,
        max_retries=retries,
        retry_delay=retry_delay,
        timeout=None,
        metadata={},
    )


def _recorded_outcome(rec: _ctx.OpRecord | None, submitter: StepDefinition) -> bool:
    """Whether the submitter's op (the next one) has its outcome in the history."""
    return (
        rec is not None
        and rec.kind == "step"
        and rec.name == submitter.name
        and rec.terminal is not None
    )


async def _submit(
    ctx: _ctx.ExecutionContext, submitter: StepDefinition, token: str | None, once: bool
) -> None:
    """The submitter's op: run (or replayed) as a step when there is a token to hand out or an
    outcome to replay; else only its position is taken (the hook was settled first)."""
    if token is None and not _recorded_outcome(ctx.peek(), submitter):
        await ctx.begin("step", submitter.name)
        return
    await execute_step(submitter, (token or "",), {}, at_most_once=once)


def _with_submit(
    on_created: Callable[[str], Awaitable[None] | None] | None,
    submit: Callable[[str], Any] | None,
) -> Callable[[str], Awaitable[None] | None] | None:
    """Under a test double (``MockContext``) the submitter is one more creation callback."""
    if submit is None:
        return on_created

    async def both(token: str) -> None:
        for callback in (on_created, submit):
            if callback is not None:
                result = callback(token)
                if inspect.isawaitable(result):
                    await result

    return both


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


#: What ``fail_hook`` keeps of the sender's error (it goes into the run's history).
MAX_ERROR_TYPE = 256
MAX_ERROR_MESSAGE = 32_768


def hook_error(error: Any, message: str | None = None) -> tuple[str, str]:
    """``(error_type, message)`` of what a sender fails a hook with: an exception (its class
    name and text), a mapping (``{"error_type"|"type": ..., "message": ...}``) or a text (the
    message, of type ``"HookFailure"``); ``message`` overrides. The types are checked (an
    API body is any JSON)."""
    if isinstance(error, BaseException):
        error_type, text = type(error).__name__, str(error)
    elif isinstance(error, dict):
        error_type = error.get("error_type", error.get("type")) or "HookFailure"
        text = error.get("message", error.get("error_message")) or ""
    elif isinstance(error, str):
        error_type, text = error, ""
    else:
        raise HookPayloadError("fail_hook() needs an exception, an error type or a mapping")
    if message is not None:
        text = message
    if not isinstance(error_type, str) or not isinstance(text, str) or not error_type:
        raise HookPayloadError("fail_hook(): the error type and message must be text")
    if len(error_type) > MAX_ERROR_TYPE or len(text) > MAX_ERROR_MESSAGE:
        raise HookPayloadError(
            f"fail_hook(): error type over {MAX_ERROR_TYPE} or message over "
            f"{MAX_ERROR_MESSAGE} characters"
        )
    return error_type, text


def stored_payload(hook: Hook) -> Any:
    return hook.payload


def _outcome(type_: EventType, data: dict[str, Any], name: str, schema: type | None) -> Any:
    if type_ == EventType.HOOK_FAILED:
        raise HookFailedError(
            str(data.get("error_type") or ""),
            str(data.get("error") or ""),
            hook_id=str(data.get("hook_id") or ""),
        )
    if type_ == EventType.HOOK_EXPIRED and data.get("reason") == "heartbeat":
        raise HookHeartbeatTimeoutError(
            str(data.get("hook_id") or ""),
            detail=f"{name or 'hook'} (no heartbeat within {data.get('heartbeat_timeout')}s)",
        )
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
        heartbeat_timeout: str | int | float | None = None,
        submit: Callable[[str], Any] | None = None,
        submit_retries: int | None = None,
        submit_retry_delay: str | int | float | list[int | float] = "exponential",
    ) -> T:
        result: T = await hook(
            self.name,
            timeout=timeout,
            on_created=on_created,
            payload_schema=self.schema,
            heartbeat_timeout=heartbeat_timeout,
            submit=submit,
            submit_retries=submit_retries,
            submit_retry_delay=submit_retry_delay,
        )
        return result

    def __repr__(self) -> str:
        return f"TypedHook({self.name!r}, {self.schema.__name__})"


def define_hook(name: str, schema: type[T]) -> TypedHook[T]:
    """A reusable typed hook: ``approval = define_hook("approval", Approval)``, then
    ``payload = await approval(timeout="24h")`` inside a workflow."""
    return TypedHook(name, schema)

"""Hooks: deliver a payload to a waiting run, by token (the public webhook: the token is the
credential) or by name (operators, authenticated some other way) — once, for every entry point.
Or fail the hook (``fail_hook``: the run's ``await hook(...)`` raises ``HookFailedError``), or
keep it alive (``heartbeat_hook``, for hooks that ask for heartbeats).

The payload is checked against the model the waiting code declared, stored on the hook with a
compare-and-set (so two deliveries cannot both land), and the run is moved along: driven here
(embedded) or sent its wake-up (AWS).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pyworkflow.core.events import EventType
from pyworkflow.core.hook import hook_error
from pyworkflow.core.models import Hook, HookStatus, WorkflowRun, hash_token
from pyworkflow.core.registry import get_hook_schema
from pyworkflow.core.serde import to_jsonable, validate
from pyworkflow.exceptions import (
    ConcurrencyError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookHeartbeatTimeoutError,
    HookNotFoundError,
    HookPayloadError,
    InvalidTokenError,
    WorkflowNotFoundError,
)
from pyworkflow.runtime.protocol import Runtime
from pyworkflow.storage.base import StorageBackend

__all__ = [
    "MAX_TOKEN_LENGTH",
    "ResumeResult",
    "check_token",
    "deliver_hook",
    "fail_hook",
    "fail_hook_by_name",
    "heartbeat_hook",
    "hook_error",
    "hook_run",
    "pending_hooks",
    "resume_hook",
    "resume_hook_by_name",
]

MAX_TOKEN_LENGTH = 256
#: How often a delivery re-reads a hook whose record changed under it before giving up.
MAX_DELIVERY_ATTEMPTS = 20


@dataclass(frozen=True)
class ResumeResult:
    run_id: str
    hook_id: str
    status: str


def check_token(token: Any) -> None:
    """``InvalidTokenError`` for what cannot be a token (ours are short ASCII): nothing else is
    hashed or looked up."""
    if (
        not isinstance(token, str)
        or not token
        or len(token) > MAX_TOKEN_LENGTH
        or not token.isascii()
    ):
        raise InvalidTokenError("", detail="Invalid hook token: pass the token given to on_created")


async def _hook_of(storage: StorageBackend, token: str) -> Hook:
    check_token(token)
    hook = await storage.get_hook_by_hash(hash_token(token))
    # Storage looked the hash up; compare again in constant time so a partial-match lookup in
    # some backend can never leak through timing.
    if hook is None or not hmac.compare_digest(hook.token_hash, hash_token(token)):
        raise HookNotFoundError(token)  # kept as .token; never in the message
    return hook


async def resume_hook(rt: Runtime, token: str, payload: Any) -> ResumeResult:
    """Deliver ``payload`` to the hook ``token`` belongs to and move its run along.

    Raises ``InvalidTokenError``, ``HookNotFoundError``, ``HookExpiredError``,
    ``HookAlreadyReceivedError``, or ``HookPayloadError`` when the payload fails the hook's
    schema (the hook then stays pending). Error messages never repeat the token."""
    return await deliver_hook(rt, await _hook_of(rt.storage, token), payload)


async def resume_hook_by_name(rt: Runtime, run_id: str, name: str, payload: Any) -> ResumeResult:
    """Deliver ``payload`` to the newest hook named ``name`` of ``run_id``; the same checks as
    by token. ``WorkflowNotFoundError`` when the run does not exist, ``HookNotFoundError`` when
    it has no such hook."""
    return await deliver_hook(rt, await _named(rt.storage, run_id, name), payload)


async def _named(storage: StorageBackend, run_id: str, name: str) -> Hook:
    hook = await storage.find_hook(run_id, name=name)
    if hook is None:
        if await storage.get_run(run_id) is None:  # say which of the two is missing
            raise WorkflowNotFoundError(run_id)
        raise HookNotFoundError("", detail=f"No hook named {name!r} on run {run_id}")
    return hook


async def fail_hook(
    rt: Runtime, token: str, error: Any, message: str | None = None
) -> ResumeResult:
    """Fail the hook ``token`` belongs to: the run's ``await hook(...)`` raises
    ``HookFailedError(error_type, message)``. ``error``: see ``hook_error``. The same errors
    as ``resume_hook`` (a settled hook: ``HookAlreadyReceivedError``)."""
    failure = hook_error(error, message)
    return await _settle(rt, await _hook_of(rt.storage, token), failure=failure)


async def fail_hook_by_name(
    rt: Runtime, run_id: str, name: str, error: Any, message: str | None = None
) -> ResumeResult:
    """``fail_hook`` for the newest hook named ``name`` of ``run_id`` (operators)."""
    failure = hook_error(error, message)
    return await _settle(rt, await _named(rt.storage, run_id, name), failure=failure)


async def heartbeat_hook(rt: Runtime, token: str) -> ResumeResult:
    """Keep a pending hook alive: its heartbeat deadline moves to now + its
    ``heartbeat_timeout`` (a hook without one just answers). The run is not woken: it wakes
    at the deadline it knew, finds the new one and waits on. ``HookExpiredError`` once the
    deadline (or the timeout) has passed, ``HookAlreadyReceivedError`` once it is settled."""
    hook = await _hook_of(rt.storage, token)
    for _ in range(MAX_DELIVERY_ATTEMPTS):
        if _received(hook):
            raise HookAlreadyReceivedError(hook.hook_id, detail=hook.name)
        _check_open(rt, hook)
        if hook.heartbeat_timeout is None:
            break
        try:
            hook = await rt.storage.update_hook(
                hook.model_copy(
                    update={
                        "heartbeat_deadline": rt.clock.now()
                        + timedelta(seconds=hook.heartbeat_timeout)
                    }
                ),
                expected_version=hook.version,
            )
        except ConcurrencyError:
            hook = await _reread(rt.storage, hook)
            continue
        break
    return ResumeResult(run_id=hook.run_id, hook_id=hook.hook_id, status="alive")


def _check_open(rt: Runtime, hook: Hook) -> None:
    """``HookExpiredError`` for a hook that can take nothing any more: not pending, past its
    timeout, or past its heartbeat deadline (``HookHeartbeatTimeoutError``)."""
    now = rt.clock.now()
    if (
        hook.heartbeat_deadline is not None
        and now >= hook.heartbeat_deadline
        and (hook.expires_at is None or hook.heartbeat_deadline < hook.expires_at)
    ):
        raise HookHeartbeatTimeoutError(hook.hook_id, detail=hook.name)
    if hook.status != HookStatus.PENDING or (
        hook.expires_at is not None and now >= hook.expires_at
    ):
        raise HookExpiredError(hook.hook_id, detail=hook.name)


async def _reread(storage: StorageBackend, hook: Hook) -> Hook:
    latest = await storage.get_hook_by_hash(hook.token_hash)
    if latest is None:
        raise HookNotFoundError("", detail=hook.name)
    return latest


async def hook_run(storage: StorageBackend, token: str) -> WorkflowRun | None:
    """The run a hook token belongs to; None when the token names no hook."""
    try:
        hook = await _hook_of(storage, token)
    except (InvalidTokenError, HookNotFoundError):
        return None
    return await storage.get_run(hook.run_id)


async def pending_hooks(storage: StorageBackend, run_id: str) -> list[str]:
    """Names of the hooks ``run_id`` waits on."""
    pending = await storage.list_hooks(run_id=run_id, status=HookStatus.PENDING)
    return sorted({h.name for h in pending})


def _payload_for(hook: Hook, payload: Any) -> Any:
    """The payload as stored: checked against the model the waiting code declared (recorded on
    the hook, not any hook of that name)."""
    schema = (
        get_hook_schema(hook.name, hook.payload_schema) if hook.payload_schema is not None else None
    )
    if schema is None:
        return to_jsonable(payload, what=f"The payload of hook {hook.name!r}")
    try:
        return to_jsonable(validate(to_jsonable(payload), schema))
    except Exception as exc:  # noqa: BLE001 - pydantic names the bad fields
        raise HookPayloadError(
            f"Payload for hook {hook.name!r} does not match {schema.__name__}: {exc}"
        ) from None


def _received(hook: Hook) -> bool:
    """Settled by the outside: a payload, or a failure."""
    return hook.status in (HookStatus.RECEIVED, HookStatus.FAILED)


async def deliver_hook(rt: Runtime, hook: Hook, payload: Any) -> ResumeResult:
    """Store ``payload`` on ``hook`` (compare-and-set) and move its run along."""
    return await _settle(rt, hook, payload=payload)


async def _settle(
    rt: Runtime,
    hook: Hook,
    *,
    payload: Any = None,
    failure: tuple[str, str] | None = None,
) -> ResumeResult:
    """Store ``payload`` (or ``failure``) on ``hook`` (compare-and-set) and move its run
    along."""
    if _received(hook):
        await _wake_if_not_taken(rt, hook)
        raise HookAlreadyReceivedError(hook.hook_id, detail=hook.name)
    run = await rt.storage.get_run(hook.run_id)
    if run is None or run.status.is_terminal:
        raise HookExpiredError(
            hook.hook_id,
            detail=f"{hook.name} (its run {hook.run_id} already ended"
            + (f": {run.status.value})" if run else ")"),
        )
    for _ in range(MAX_DELIVERY_ATTEMPTS):
        if _received(hook):  # (re-read after a lost compare-and-set)
            await _wake_if_not_taken(rt, hook)
            raise HookAlreadyReceivedError(hook.hook_id, detail=hook.name)
        _check_open(rt, hook)
        update: dict[str, Any] = {"received_at": rt.clock.now()}
        if failure is None:
            update.update(status=HookStatus.RECEIVED, payload=_payload_for(hook, payload))
        else:
            update.update(status=HookStatus.FAILED, error_type=failure[0], error_message=failure[1])
        try:
            await rt.storage.update_hook(
                hook.model_copy(update=update), expected_version=hook.version
            )
        except ConcurrencyError:
            hook = await _reread(rt.storage, hook)
            continue
        break
    await rt.executor.touch(hook.run_id)
    # An execution going on here reads the hook when it gets there.
    if not rt.is_active(hook.run_id):
        await rt.advance(hook.run_id, reason="hook")
    return ResumeResult(
        run_id=hook.run_id, hook_id=hook.hook_id, status="resumed" if failure is None else "failed"
    )


async def _wake_if_not_taken(rt: Runtime, hook: Hook) -> None:
    """A caller that died between storing the payload and waking the run retries and lands
    here: wake the run again if it has not taken the payload yet, or it would wait forever.
    Costs one read of the history, on this error path only."""
    run = await rt.storage.get_run(hook.run_id)
    if run is None or run.status.is_terminal or rt.is_active(hook.run_id):
        return
    history = await rt.storage.get_events(hook.run_id)
    if any(
        e.data.get("hook_id") == hook.hook_id
        and e.type in (EventType.HOOK_RECEIVED, EventType.HOOK_FAILED)
        for e in history
    ):
        return
    await rt.executor.touch(hook.run_id)
    await rt.advance(hook.run_id, reason="hook")

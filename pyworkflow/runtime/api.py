"""The run-level public API: start, resume, cancel, inspect, resume hooks."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyworkflow.config import get_config, get_storage
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.hook import hash_token
from pyworkflow.core.models import Hook, HookStatus, RunStatus, WorkflowRun
from pyworkflow.core.registry import get_hook_schema, get_workflow_by_func
from pyworkflow.core.serde import to_jsonable, validate
from pyworkflow.exceptions import (
    ConcurrencyError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    HookPayloadError,
    InvalidTokenError,
    WorkflowAlreadyRunningError,
    WorkflowNotFoundError,
)
from pyworkflow.runtime.executor import request_cancel
from pyworkflow.runtime.local import LocalRuntime, get_runtime, get_transient_runtime
from pyworkflow.storage.base import StorageBackend

MAX_TOKEN_LENGTH = 256


async def start(
    workflow_func: Callable[..., Any],
    *args: Any,
    runtime: str | None = None,
    durable: bool | None = None,
    storage: StorageBackend | None = None,
    idempotency_key: str | None = None,
    **kwargs: Any,
) -> str:
    """Start a run of ``workflow_func`` and drive it here until it completes or waits.

    Returns the run id. With an ``idempotency_key`` already used, returns that run's id instead
    of starting another (``WorkflowAlreadyRunningError`` while that run is still running).
    """
    defn = get_workflow_by_func(workflow_func)
    if defn is None:
        raise ValueError(
            f"{getattr(workflow_func, '__name__', workflow_func)!r} is not a workflow: "
            "decorate it with @workflow"
        )
    if runtime not in (None, "local"):
        from pyworkflow.exceptions import ConfigurationError

        raise ConfigurationError(
            f"Runtime {runtime!r} is not available here: the embedded runtime is 'local'; "
            "on AWS, start runs through the API or pyworkflow.client"
        )
    config = get_config()
    effective_durable = (
        durable if durable is not None
        else defn.durable if defn.durable is not None
        else config.default_durable
    )
    rt = get_runtime(storage) if effective_durable else get_transient_runtime()
    if idempotency_key:
        existing = await rt.storage.get_run_by_idempotency_key(idempotency_key)
        if existing is not None:
            if existing.status == RunStatus.RUNNING and not rt.is_active(existing.run_id):
                raise WorkflowAlreadyRunningError(existing.run_id)
            return existing.run_id
    try:
        run, history = await rt.executor.create(
            defn, args, kwargs, idempotency_key=idempotency_key, lease=True
        )
    except ConcurrencyError:
        if idempotency_key:  # lost a race for the same key: the winner's run is the answer
            existing = await rt.storage.get_run_by_idempotency_key(idempotency_key)
            if existing is not None:
                return existing.run_id
        raise
    final = await rt.drive_created(run, history)
    if final.status == RunStatus.FAILED:
        # As in pyworkflow-engine: the caller that started the run sees its exception.
        error = rt.executor.failures.pop(final.run_id, None)
        if error is not None:
            error.add_note(f"pyworkflow run: {final.run_id} (status failed)")
            try:
                error.run_id = final.run_id  # type: ignore[attr-defined]
            except AttributeError:  # exceptions with __slots__
                pass
            raise error
    return run.run_id


async def resume(run_id: str, runtime: str | None = None,
                 storage: StorageBackend | None = None) -> Any:
    """Drive a run now (e.g. after a hook payload arrived). Returns its result if it completed,
    else None."""
    rt = get_runtime(storage)
    run = await rt.drive(run_id)
    return run.get_result() if run.status == RunStatus.COMPLETED else None


async def get_workflow_run(run_id: str, storage: StorageBackend | None = None
                           ) -> WorkflowRun | None:
    return await (storage or get_storage()).get_run(run_id)


async def get_workflow_events(run_id: str, storage: StorageBackend | None = None) -> list[Event]:
    return await (storage or get_storage()).get_events(run_id)


async def get_workflow_chain(run_id: str, storage: StorageBackend | None = None
                             ) -> list[WorkflowRun]:
    """Every run of the continue-as-new chain ``run_id`` belongs to, oldest first."""
    return await (storage or get_storage()).get_workflow_chain(run_id)


async def cancel_workflow(
    run_id: str,
    reason: str | None = None,
    wait: bool = False,
    timeout: float | None = None,
    storage: StorageBackend | None = None,
) -> bool:
    """Cancel a run. Returns False if it had already ended.

    A waiting (suspended) run is woken with ``CancellationError`` at its await, so its
    ``except``/``shield()`` cleanup runs before it is marked cancelled. A running run gets it at
    its next await. ``wait=True`` waits (up to ``timeout`` seconds) until the run has ended.
    """
    rt = get_runtime(storage)
    run = await request_cancel(rt.storage, rt.clock, run_id, reason)
    if run is None:
        return False
    if rt.is_active(run_id):
        rt.interrupt(run_id)
    elif run.status in (RunStatus.SUSPENDED, RunStatus.PENDING):
        await rt.drive(run_id, follow_chain=False)
    else:
        rt.spawn(run_id)
    if wait:
        await wait_for_run(run_id, timeout=timeout, storage=rt.storage)
    return True


async def wait_for_run(run_id: str, *, timeout: float | None = None,
                       storage: StorageBackend | None = None,
                       poll_interval: float = 0.05) -> WorkflowRun:
    """Poll until the run is terminal. ``TimeoutError`` after ``timeout`` seconds."""
    store = storage or get_storage()

    async def poll() -> WorkflowRun:
        while True:
            run = await store.get_run(run_id)
            if run is None:
                raise WorkflowNotFoundError(run_id)
            if run.status.is_terminal:
                return run
            await asyncio.sleep(poll_interval)

    return await asyncio.wait_for(poll(), timeout)


@dataclass
class ResumeResult:
    run_id: str
    hook_id: str
    status: str


async def resume_hook(token: str, payload: Any, *, storage: StorageBackend | None = None
                      ) -> ResumeResult:
    """Deliver ``payload`` to the hook ``token`` belongs to and wake its run.

    Raises ``InvalidTokenError``, ``HookNotFoundError``, ``HookExpiredError``,
    ``HookAlreadyReceivedError``, or ``HookPayloadError`` when the payload fails the hook's
    schema (the hook then stays pending).
    """
    check_token(token)
    rt = get_runtime(storage)
    hook = await rt.storage.get_hook(hash_token(token))
    # Storage looked the hash up; compare again in constant time so a partial-match lookup in
    # some backend can never leak through timing.
    if hook is None or not hmac.compare_digest(hook.token_hash, hash_token(token)):
        raise HookNotFoundError()
    return await deliver_hook(rt, hook, payload)


def check_token(token: Any) -> None:
    """``InvalidTokenError`` for what cannot be a token (ours are short ASCII): nothing else is
    hashed or looked up."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH \
            or not token.isascii():
        raise InvalidTokenError("Invalid hook token: pass the token given to on_created")


async def resume_hook_by_name(run_id: str, name: str, payload: Any, *,
                              storage: StorageBackend | None = None) -> ResumeResult:
    """Deliver ``payload`` to the newest hook named ``name`` of ``run_id`` (for operators, who
    never see tokens: the CLI and the IAM-authenticated API use this)."""
    rt = get_runtime(storage)
    hook = await rt.storage.find_hook(run_id, name=name)
    if hook is None:
        raise HookNotFoundError(f"{name!r} on run {run_id}")
    return await deliver_hook(rt, hook, payload)


async def deliver_hook(rt: LocalRuntime, hook: Hook, payload: Any) -> ResumeResult:
    if hook.status == HookStatus.RECEIVED:
        await _wake_if_not_taken(rt, hook)
        raise HookAlreadyReceivedError(hook.name)
    run = await rt.storage.get_run(hook.run_id)
    if run is None or run.status.is_terminal:
        raise HookExpiredError(
            f"{hook.name} (its run {hook.run_id} already ended"
            + (f": {run.status.value})" if run else ")")
        )
    for _ in range(20):
        if hook.status == HookStatus.RECEIVED:
            await _wake_if_not_taken(rt, hook)
            raise HookAlreadyReceivedError(hook.name)
        if hook.status != HookStatus.PENDING or (
            hook.expires_at is not None and rt.clock.now() >= hook.expires_at
        ):
            raise HookExpiredError(hook.name)
        # the model the waiting code declared (recorded on the hook), not any hook of that name
        schema = (get_hook_schema(hook.name, hook.payload_schema)
                  if hook.payload_schema is not None else None)
        data = payload
        if schema is not None:
            try:
                data = to_jsonable(validate(to_jsonable(payload), schema))
            except Exception as exc:  # noqa: BLE001 - pydantic names the bad fields
                raise HookPayloadError(
                    f"Payload for hook {hook.name!r} does not match {schema.__name__}: {exc}"
                ) from None
        else:
            data = to_jsonable(payload, what=f"The payload of hook {hook.name!r}")
        try:
            await rt.storage.update_hook(
                hook.model_copy(update={
                    "status": HookStatus.RECEIVED, "payload": data,
                    "received_at": rt.clock.now()}),
                expected_version=hook.version,
            )
        except ConcurrencyError:
            latest = await rt.storage.get_hook(hook.token_hash)
            if latest is None:
                raise HookNotFoundError(hook.name) from None
            hook = latest
            continue
        break
    await rt.executor.touch(hook.run_id)
    if rt.is_active(hook.run_id):
        pass  # the running execution reads the hook when it gets there
    else:
        await rt.drive(hook.run_id)
    return ResumeResult(run_id=hook.run_id, hook_id=hook.hook_id, status="resumed")


async def _wake_if_not_taken(rt: LocalRuntime, hook: Hook) -> None:
    """A caller that died between storing the payload and waking the run retries and lands
    here: wake the run again if it has not taken the payload yet, or it would wait forever.
    Costs one read of the history, on this error path only."""
    run = await rt.storage.get_run(hook.run_id)
    if run is None or run.status.is_terminal or rt.is_active(hook.run_id):
        return
    history = await rt.storage.get_events(hook.run_id)
    if any(e.data.get("hook_id") == hook.hook_id and e.type == EventType.HOOK_RECEIVED
           for e in history):
        return
    await rt.executor.touch(hook.run_id)
    await rt.drive(hook.run_id)

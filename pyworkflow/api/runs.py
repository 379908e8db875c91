"""The module-level run API (pyworkflow-engine's): ``start``, ``resume``, ``cancel_workflow``,
``resume_hook``... on the embedded runtime. Each is a thin caller of ``pyworkflow.service``;
what is particular to this entry point is choosing the runtime (``storage=``, ``durable``) and
re-raising a failed run's exception to the caller that started it, as pyworkflow-engine does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyworkflow.config import get_config, get_storage
from pyworkflow.core.events import Event
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.core.registry import get_workflow_by_func, not_registered_message
from pyworkflow.exceptions import ConfigurationError, WorkflowNotFoundError
from pyworkflow.runtime.local import get_runtime, get_transient_runtime
from pyworkflow.service import hooks, runs
from pyworkflow.service.hooks import ResumeResult
from pyworkflow.storage.base import StorageBackend

__all__ = [
    "ResumeResult",
    "cancel_workflow",
    "get_workflow_chain",
    "get_workflow_events",
    "get_workflow_run",
    "resume",
    "fail_hook",
    "fail_hook_by_name",
    "heartbeat_hook",
    "resume_hook",
    "resume_hook_by_name",
    "start",
    "wait_for_run",
]


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
    of starting another, whatever that run's state.
    A run that fails raises its exception here, with a note naming the run.
    """
    defn = get_workflow_by_func(workflow_func)
    if defn is None:
        raise ValueError(not_registered_message(workflow_func))
    if runtime not in (None, "local"):
        raise ConfigurationError(
            f"Runtime {runtime!r} is not available here: the embedded runtime is 'local'; "
            "on AWS, start runs through the API or pyworkflow.client"
        )
    effective_durable = (
        durable
        if durable is not None
        else defn.durable
        if defn.durable is not None
        else get_config().default_durable
    )
    rt = get_runtime(storage) if effective_durable else get_transient_runtime()
    started = await runs.start(rt, defn, args, kwargs, idempotency_key=idempotency_key)
    final = started.run
    if final.status == RunStatus.FAILED:
        # As in pyworkflow-engine: the caller that started the run sees its exception.
        error = rt.executor.failures.pop(final.run_id, None)
        if error is not None:
            error.add_note(f"pyworkflow run: {final.run_id} (status failed)")
            raise error
    return started.run_id


async def resume(
    run_id: str, runtime: str | None = None, storage: StorageBackend | None = None
) -> Any:
    """Drive a run now (e.g. after a hook payload arrived). Returns its result if it completed,
    else None."""
    rt = get_runtime(storage)
    run = await rt.drive(run_id)
    return run.get_result() if run.status == RunStatus.COMPLETED else None


async def get_workflow_run(
    run_id: str, storage: StorageBackend | None = None
) -> WorkflowRun | None:
    """The run, or None (pyworkflow-engine's contract; the service raises instead)."""
    try:
        return await runs.get_run(storage or get_storage(), run_id)
    except WorkflowNotFoundError:
        return None


async def get_workflow_events(run_id: str, storage: StorageBackend | None = None) -> list[Event]:
    """The run's history ([] for a run that does not exist, as in pyworkflow-engine)."""
    return await (storage or get_storage()).get_events(run_id)


async def get_workflow_chain(
    run_id: str, storage: StorageBackend | None = None
) -> list[WorkflowRun]:
    """Every run of the continue-as-new chain ``run_id`` belongs to, oldest first; ``[]`` for
    an unknown run, as pyworkflow-engine answers (the API and CLI say 404 / not found)."""
    try:
        return await runs.chain(storage or get_storage(), run_id)
    except WorkflowNotFoundError:
        return []


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
    if not await runs.cancel(rt, run_id, reason):
        return False
    if wait:
        await runs.wait_for_run(rt.storage, run_id, timeout=timeout)
    return True


async def wait_for_run(
    run_id: str,
    *,
    timeout: float | None = None,
    storage: StorageBackend | None = None,
    poll_interval: float = 0.05,
) -> WorkflowRun:
    """Poll until the run is terminal. ``TimeoutError`` after ``timeout`` seconds."""
    return await runs.wait_for_run(
        storage or get_storage(), run_id, timeout=timeout, poll_interval=poll_interval
    )


async def resume_hook(
    token: str, payload: Any, *, storage: StorageBackend | None = None
) -> ResumeResult:
    """Deliver ``payload`` to the hook ``token`` belongs to and drive its run.

    Raises ``InvalidTokenError``, ``HookNotFoundError``, ``HookExpiredError``,
    ``HookAlreadyReceivedError``, or ``HookPayloadError`` when the payload fails the hook's
    schema (the hook then stays pending).
    """
    return await hooks.resume_hook(get_runtime(storage), token, payload)


async def resume_hook_by_name(
    run_id: str, name: str, payload: Any, *, storage: StorageBackend | None = None
) -> ResumeResult:
    """Deliver ``payload`` to the newest hook named ``name`` of ``run_id`` (for operators, who
    never see tokens: the CLI and the IAM-authenticated API use this)."""
    return await hooks.resume_hook_by_name(get_runtime(storage), run_id, name, payload)


async def fail_hook(
    token: str,
    error: Any,
    message: str | None = None,
    *,
    storage: StorageBackend | None = None,
) -> ResumeResult:
    """Fail the hook ``token`` belongs to: the run's ``await hook(...)`` raises
    ``HookFailedError`` with the error's type and message. ``error``: an exception, an error
    type (``"PaymentDeclined"``, with ``message``) or ``{"error_type": ..., "message": ...}``.
    The same errors as ``resume_hook``."""
    return await hooks.fail_hook(get_runtime(storage), token, error, message)


async def fail_hook_by_name(
    run_id: str,
    name: str,
    error: Any,
    message: str | None = None,
    *,
    storage: StorageBackend | None = None,
) -> ResumeResult:
    """``fail_hook`` for the newest hook named ``name`` of ``run_id`` (for operators)."""
    return await hooks.fail_hook_by_name(get_runtime(storage), run_id, name, error, message)


async def heartbeat_hook(token: str, *, storage: StorageBackend | None = None) -> ResumeResult:
    """Keep a hook that asks for heartbeats (``hook(..., heartbeat_timeout=)``) alive: its
    deadline moves to now + that timeout. ``HookHeartbeatTimeoutError`` once it was missed."""
    return await hooks.heartbeat_hook(get_runtime(storage), token)

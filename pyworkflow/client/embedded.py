"""The embedded transport: this process runs the workflows, on local storage (SQLite by default).

Starting a run drives it here, inline, until it completes or must wait, exactly as
``pyworkflow.start`` does; waits (sleeps, retries, resumed hooks) continue in the background of
the event loop the client is used on, and ``pyworkflow worker`` picks up whatever is due after
this process stops. Unlike ``pyworkflow.start`` a failed run does not raise here: it is a run
like any other, whose ``status`` and ``error`` say what happened (as over the API).
"""

from __future__ import annotations

from typing import Any

from pyworkflow.client._stored import StoredTransport, hook_resumed, resolve_workflow
from pyworkflow.client.models import HookResumed
from pyworkflow.config import get_storage
from pyworkflow.exceptions import ConcurrencyError
from pyworkflow.runtime import api, schedules
from pyworkflow.runtime.local import LocalRuntime, get_runtime
from pyworkflow.storage.base import StorageBackend


class EmbeddedTransport(StoredTransport):
    """``storage=None`` uses the configured storage (``pyworkflow.configure`` or
    ``PYWORKFLOW_STORAGE``/``PYWORKFLOW_DB``), looked up on each call so a later
    ``configure()`` is honoured."""

    def __init__(self, storage: StorageBackend | None = None) -> None:
        self._storage = storage

    @property
    def storage(self) -> StorageBackend:
        return self._storage or get_storage()

    @property
    def runtime(self) -> LocalRuntime:
        return get_runtime(self.storage)

    async def start(self, workflow: str, args: list[Any], kwargs: dict[str, Any], *,
                    idempotency_key: str | None = None) -> str:
        defn = resolve_workflow(workflow)
        rt = self.runtime
        # Runs started through a client are always stored (a durable=False workflow would live
        # in a private memory store the client could never read back).
        if idempotency_key:
            existing = await rt.storage.get_run_by_idempotency_key(idempotency_key)
            if existing is not None:
                return existing.run_id
        try:
            run, history = await rt.executor.create(
                defn, tuple(args), dict(kwargs), idempotency_key=idempotency_key, lease=True)
        except ConcurrencyError:
            existing = (await rt.storage.get_run_by_idempotency_key(idempotency_key)
                        if idempotency_key else None)
            if existing is None:
                raise
            return existing.run_id  # lost a race for the same key: the winner's run
        final = await rt.drive_created(run, history)
        # The executor keeps a failed run's exception for pyworkflow.start() to raise; the
        # client reports failures through the run record instead.
        rt.executor.failures.pop(final.run_id, None)
        return run.run_id

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        return await api.cancel_workflow(run_id, reason, storage=self.storage)

    async def resume_hook(self, token: str, payload: Any) -> HookResumed:
        return hook_resumed(await api.resume_hook(token, payload, storage=self.storage))

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> HookResumed:
        return hook_resumed(
            await api.resume_hook_by_name(run_id, name, payload, storage=self.storage))

    async def trigger_schedule(self, schedule_id: str) -> str:
        return await schedules.trigger_schedule(schedule_id, storage=self.storage)

    async def close(self) -> None:
        """Nothing to release: the storage belongs to whoever made it (or to the config)."""

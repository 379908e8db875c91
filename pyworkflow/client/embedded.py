"""The embedded transport: this process runs the workflows, on local storage (SQLite by default).

Starting a run drives it here, inline, until it completes or must wait, exactly as
``pyworkflow.start`` does; waits (sleeps, retries, resumed hooks) continue in the background of
the event loop the client is used on, and ``pyworkflow worker`` picks up whatever is due after
this process stops. Unlike ``pyworkflow.start`` a failed run does not raise here: it is a run
like any other, whose ``status`` and ``error`` say what happened (as over the API).
"""

from __future__ import annotations

from pyworkflow.client._stored import ServiceTransport
from pyworkflow.config import get_storage
from pyworkflow.runtime.local import LocalRuntime, get_runtime
from pyworkflow.storage.base import StorageBackend


class EmbeddedTransport(ServiceTransport[LocalRuntime]):
    """``storage=None`` uses the configured storage (``pyworkflow.configure`` or
    ``PYWORKFLOW_STORAGE``/``PYWORKFLOW_DB``), looked up on each call so a later
    ``configure()`` is honoured. Runs started through a client are always stored (a
    ``durable=False`` workflow would live in a private memory store the client could never
    read back)."""

    def __init__(self, storage: StorageBackend | None = None) -> None:
        self._storage = storage

    @property
    def storage(self) -> StorageBackend:
        return self._storage or get_storage()

    @property
    def runtime(self) -> LocalRuntime:
        return get_runtime(self.storage)

    async def close(self) -> None:
        """Nothing to release: the storage belongs to whoever made it (or to the config)."""

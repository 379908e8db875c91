"""``LocalScheduler``: fire due schedules from an ordinary asyncio program (pyworkflow-engine API).

``pyworkflow worker`` does the same and also resumes due runs; use this when schedules should
fire inside your own process.
"""

from __future__ import annotations

import asyncio
import time

from pyworkflow.config import get_storage
from pyworkflow.storage.base import StorageBackend


class LocalScheduler:
    def __init__(self, storage: StorageBackend | None = None, poll_interval: float = 5.0) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._storage = storage
        self.poll_interval = poll_interval
        self._stop = asyncio.Event()
        self._running = False

    @property
    def storage(self) -> StorageBackend:
        return self._storage or get_storage()

    @property
    def is_running(self) -> bool:
        return self._running

    async def tick_once(self) -> int:
        """Fire every schedule that is due now; returns how many runs were started."""
        from pyworkflow.runtime.local import get_runtime
        from pyworkflow.runtime.schedules import fire_due_schedules

        return len(await fire_due_schedules(get_runtime(self.storage)))

    async def run(self, duration: float | None = None) -> None:
        """Poll until ``stop()`` (or for ``duration`` seconds)."""
        self._stop = asyncio.Event()
        self._running = True
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not self._stop.is_set():
                await self.tick_once()
                wait = self.poll_interval
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                try:
                    await asyncio.wait_for(self._stop.wait(), wait)
                except TimeoutError:
                    pass
        finally:
            self._running = False

    def stop(self) -> None:
        self._stop.set()


__all__ = ["LocalScheduler"]

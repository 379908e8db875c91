"""The embedded runtime with its timers taken out of the event loop.

``LocalRuntime`` is its own ``Dispatcher``: a wait arms ``loop.call_later`` for real seconds.
Here ``wake_at`` writes the wake-up into a timer table instead, and the environment decides when
virtual time reaches it (``WorkflowEnvironment``). Everything else — leases, replay, children run
inline, background drives for woken parents — is the production code path, unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyworkflow.core.clock import ManualClock
from pyworkflow.core.models import WorkflowRun
from pyworkflow.runtime.local import LocalRuntime
from pyworkflow.storage.base import StorageBackend

logger = logging.getLogger("pyworkflow")


@dataclass(frozen=True, order=True)
class Timer:
    """A pending wake-up: ``run_id`` is to be driven when virtual time reaches ``when``.
    Ordered by time, then by the order the timers were armed (equal times fire first-in)."""

    when: datetime
    seq: int
    run_id: str
    key: str


class TimeSkippingRuntime(LocalRuntime):
    """A ``LocalRuntime`` on a ``ManualClock`` whose timers wait in a table, one per run (a run
    waits for at most one time: its record's ``wake_at``)."""

    def __init__(self, storage: StorageBackend, clock: ManualClock) -> None:
        # Retry backoffs and sleeps always suspend, so every wait becomes a timer that fires
        # in order with the others, instead of a ManualClock.sleep inside one run's drive.
        super().__init__(storage, clock, inline_wait_max=0.0, inline_sleep_max=0.0)
        self.manual_clock = clock
        self.timers: dict[str, Timer] = {}
        self.errors: list[BaseException] = []
        self._background_tasks: set[asyncio.Task[Any]] = set()
        self._seq = itertools.count()

    # --- Dispatcher ----------------------------------------------------------------------------
    async def wake_at(self, run_id: str, when: datetime, *, key: str = "") -> None:
        self.timers[run_id] = Timer(when, next(self._seq), run_id, key)

    async def forget(self, run: WorkflowRun) -> None:
        self.timers.pop(run.run_id, None)

    def spawn(self, run_id: str) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._background(run_id))
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def _background(self, run_id: str) -> None:
        try:
            await self.drive(run_id, follow_chain=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - kept for the test, which raises it
            logger.debug("background drive of run %s failed", run_id, exc_info=True)
            self.errors.append(exc)

    # --- for the environment -------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a background drive (a woken parent, a spawned child...) is still going."""
        return bool(self._background_tasks)

    async def settle(self) -> None:
        """Wait until no background drive is left, including those the finished ones started."""
        while True:
            # call_soon callbacks (task wake-ups, done callbacks) get their turn first
            await asyncio.sleep(0)
            if not self._background_tasks:
                await asyncio.sleep(0)
                if not self._background_tasks:
                    return
            await asyncio.wait(set(self._background_tasks))

    def next_timer(self) -> Timer | None:
        return min(self.timers.values(), default=None)

    def pop_timer(self, timer: Timer) -> None:
        if self.timers.get(timer.run_id) == timer:
            del self.timers[timer.run_id]

    def take_errors(self) -> list[BaseException]:
        errors, self.errors = self.errors, []
        return errors

    async def close(self) -> None:
        for task in list(self._background_tasks):
            task.cancel()
        if self._background_tasks:
            await asyncio.gather(*self._background_tasks, return_exceptions=True)
        await super().close()

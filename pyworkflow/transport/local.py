"""Wake-up delivery on this process's event loop, for the embedded runtime.

A wake-up is a background task that calls ``drive(run_id)``, now (``spawn``) or after a delay
(``call_later``: ``loop.call_later``, so it happens only while this process's loop still runs;
``pyworkflow worker`` finds whatever is due after a restart). Without a running loop nothing is
delivered, for the same reason. The transport knows runs by id only: what driving one means is
the callback's business.

``LocalRuntime`` stays its own ``Dispatcher`` (its ``spawn`` and ``wake_at`` are what the
testing kit and the tests' runtimes override to take the timers elsewhere) and keeps its
in-process delivery here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

logger = logging.getLogger("pyworkflow")


class LoopDelivery:
    """Background drives on the running event loop, kept until they end (``drain``,
    ``close``)."""

    def __init__(self, drive: Callable[[str], Awaitable[object]]) -> None:
        self._drive = drive
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, run_id: str) -> None:
        """``drive(run_id)`` soon, in a task of the running loop (none: nothing)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: `pyworkflow worker` will find the run when it is due
        self._keep(loop.create_task(self._background(run_id)))

    def call_later(self, delay: float, callback: Callable[[str], object], run_id: str) -> None:
        """``callback(run_id)`` after ``delay`` seconds, if the running loop still runs then
        (no running loop: nothing)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(delay, callback, run_id)

    async def run_shielded(self, drive: Coroutine[Any, Any, object]) -> None:
        """Await ``drive`` in a task of its own, shielded: cancelling the caller (a parent
        stopped meanwhile) does not cut it off."""
        task = asyncio.get_running_loop().create_task(drive)
        self._keep(task)
        await asyncio.shield(task)

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _background(self, run_id: str) -> None:
        try:
            await self._drive(run_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a background drive must not kill the loop
            logger.exception("background drive of run %s failed", run_id)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for background drives started so far (tests and short scripts)."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)

    async def close(self) -> None:
        """Cancel the drives still going and wait for them to stop."""
        for task in list(self.tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.tasks, return_exceptions=True)

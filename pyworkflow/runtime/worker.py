"""``pyworkflow worker``: drive every run that is due — after a restart, a crash, or a
``kill -9`` — and fire due schedules. Polls storage; no broker needed."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.core.registry import get_workflow
from pyworkflow.exceptions import ConfigurationError, WorkflowError
from pyworkflow.runtime.local import LocalRuntime
from pyworkflow.storage.memory import due_key

logger = logging.getLogger("pyworkflow")

PAGE = 100
MAX_BATCHES = 1000  # pages of due runs per pass
CONCURRENCY = 8  # drives at once per worker


@dataclass
class WorkerStats:
    driven: int = 0
    completed: int = 0
    failed: int = 0
    suspended: int = 0
    schedules_fired: int = 0
    skipped: int = 0  # due runs of workflows not defined in this worker, left as they were
    errors: list[str] = field(default_factory=list)


def owner_is_dead(owner: str | None) -> bool:
    """Whether a lease owner is a process of this host that no longer exists. Its lease need not
    be waited out: nothing can still be writing under it."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        from pyworkflow.runtime.executor import LIVE_OWNERS

        return owner not in LIVE_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class DrivePool:
    """The drives of a worker, ``limit`` at a time, each in a task of its own: a run whose step
    never returns holds one slot, never the worker. A run already being driven here is not
    driven a second time. Outcomes are counted into ``stats`` as drives end."""

    def __init__(self, rt: LocalRuntime, stats: WorkerStats, limit: int = CONCURRENCY) -> None:
        self.rt = rt
        self.stats = stats
        self.slots = asyncio.Semaphore(limit)
        self.running: dict[str, asyncio.Task[None]] = {}
        # What ends the whole process rather than one drive (KeyboardInterrupt, SystemExit, an
        # injected crash): re-raised to the worker at its next submit or join.
        self.fatal: BaseException | None = None

    def busy(self, run_id: str) -> bool:
        return run_id in self.running or self.rt.is_active(run_id)

    async def submit(self, run: WorkflowRun, *, steal: bool | str) -> None:
        """Start driving ``run`` once a slot is free (runs of workflows not defined here are
        counted and left as they are)."""
        self._raise_fatal()
        if self.busy(run.run_id):
            return
        if get_workflow(run.workflow_name) is None:
            note = (
                f"due runs of workflow {run.workflow_name!r} are skipped: it is not defined "
                "in this worker (pyworkflow --module / PYWORKFLOW_MODULE)"
            )
            if note not in self.stats.errors:
                self.stats.errors.append(note)
            self.stats.skipped += 1
            return
        await self.slots.acquire()
        task = asyncio.get_running_loop().create_task(self._drive(run.run_id, steal))
        self.running[run.run_id] = task

    async def _drive(self, run_id: str, steal: bool | str) -> None:
        stats = self.stats
        try:
            result = await self.rt.drive(run_id, steal=steal, follow_chain=True)
        except ConfigurationError as exc:
            stats.errors.append(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - one run's trouble is not the pass's
            # A store failure or a bug while driving this run: its lease lapses and a later
            # pass tries again; every other due run is served meanwhile.
            logger.exception("drive of run %s failed", run_id)
            stats.errors.append(f"run {run_id}: {type(exc).__name__}: {exc}")
            return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.fatal = self.fatal or exc
            return
        finally:
            self.running.pop(run_id, None)
            self.slots.release()
        stats.driven += 1
        if result.status == RunStatus.COMPLETED:
            stats.completed += 1
        elif result.status == RunStatus.FAILED:
            stats.failed += 1
        elif result.status == RunStatus.SUSPENDED:
            stats.suspended += 1

    async def join(self) -> None:
        """Wait for every drive under way."""
        while self.running:
            await asyncio.wait(list(self.running.values()))
        self._raise_fatal()

    def _raise_fatal(self) -> None:
        if self.fatal is not None:
            fatal, self.fatal = self.fatal, None
            raise fatal

    async def cancel(self) -> None:
        """Stop every drive under way (each hands its run back: see ``Executor.execute``)."""
        tasks = list(self.running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_once(
    rt: LocalRuntime, stats: WorkerStats | None = None, *, pool: DrivePool | None = None
) -> WorkerStats:
    """One pass: fire due schedules, then drive every due run to its next wait or its end.

    Due runs come in pages, oldest obligation first, and are driven concurrently (``pool``:
    a worker's drives across passes; without one, the pass waits for its drives to end). A
    run this worker cannot drive (its workflow is not defined here) is left exactly as it is,
    and the pass pages past it: runs it can drive are never hidden behind runs it cannot, nor
    held up by a run whose step never returns."""
    stats = stats or WorkerStats()
    own = pool is None
    pool = pool or DrivePool(rt, stats)
    from pyworkflow.runtime.schedules import fire_due_schedules

    try:
        stats.schedules_fired += len(await fire_due_schedules(rt))
    except WorkflowError as exc:
        stats.errors.append(str(exc))
    now = rt.clock.now()
    after: str | None = None
    for _ in range(MAX_BATCHES):
        page = await rt.storage.list_due_runs(now, limit=PAGE, after=after)
        if not page:
            break
        after = due_key(page[-1])
        for run in page:
            await pool.submit(run, steal=False)
    # Runs whose lease looks live but whose process on this host is gone.
    cursor: str | None = None
    for _ in range(MAX_BATCHES):
        running = await rt.storage.list_runs_page(
            status=RunStatus.RUNNING, limit=PAGE, cursor=cursor
        )
        for run in running.items:
            if owner_is_dead(run.lease_owner):
                # that dead owner's lease only, not that of a live worker that won it since
                await pool.submit(run, steal=run.lease_owner or False)
        cursor = running.next_cursor
        if cursor is None:
            break
    if own:
        await pool.join()
    return stats


async def _stopped(stop: asyncio.Event | None, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; whether it was. (Not ``wait_for``: on 3.11 it
    can swallow a cancel that arrives as ``stop`` is set.)"""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    waiting = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting}, timeout=seconds)
    finally:
        waiting.cancel()
    return stop.is_set()


async def run_worker(
    rt: LocalRuntime,
    *,
    poll_interval: float = 1.0,
    once: bool = False,
    stop: asyncio.Event | None = None,
    on_pass: Callable[[WorkerStats], None] | None = None,
    concurrency: int = CONCURRENCY,
) -> WorkerStats:
    """Poll until ``stop`` is set (or one pass with ``once=True``). Drives run across passes,
    ``concurrency`` at a time: a pass never waits for the drives of the one before. When
    ``stop`` is set, the drives under way finish first; if this coroutine is cancelled, they
    are cancelled too (each hands its run back)."""
    stats = WorkerStats()
    pool = DrivePool(rt, stats, concurrency)
    try:
        while True:
            await run_once(rt, stats, pool=pool)
            if once:
                await pool.join()
            if on_pass is not None:
                on_pass(stats)
            if once or (stop is not None and stop.is_set()) or await _stopped(stop, poll_interval):
                await pool.join()
                return stats
    except asyncio.CancelledError:
        await pool.cancel()
        raise

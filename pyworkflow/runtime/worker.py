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


async def run_once(rt: LocalRuntime, stats: WorkerStats | None = None) -> WorkerStats:
    """One pass: fire due schedules, then drive every due run to its next wait or its end.

    Due runs come in pages, oldest obligation first. A run this worker cannot drive (its
    workflow is not defined here) is left exactly as it is, and the pass pages past it: runs
    it can drive are never hidden behind runs it cannot."""
    stats = stats or WorkerStats()
    from pyworkflow.runtime.schedules import fire_due_schedules

    try:
        stats.schedules_fired += len(await fire_due_schedules(rt))
    except WorkflowError as exc:
        stats.errors.append(str(exc))
    now = rt.clock.now()
    tried: set[str] = set()  # a run driven once per pass, even if it is due again at once
    after: str | None = None
    for _ in range(MAX_BATCHES):
        page = await rt.storage.list_due_runs(now, limit=PAGE, after=after)
        if not page:
            break
        after = due_key(page[-1])
        for run in page:
            await _drive(rt, run, tried, stats, steal=False)
    # Runs whose lease looks live but whose process on this host is gone.
    cursor: str | None = None
    for _ in range(MAX_BATCHES):
        running = await rt.storage.list_runs(status=RunStatus.RUNNING, limit=PAGE,
                                             cursor=cursor)
        for run in running.items:
            if owner_is_dead(run.lease_owner):
                await _drive(rt, run, tried, stats, steal=True)
        cursor = running.next_cursor
        if cursor is None:
            break
    return stats


async def _drive(rt: LocalRuntime, run: WorkflowRun, tried: set[str], stats: WorkerStats, *,
                 steal: bool) -> None:
    if run.run_id in tried or rt.is_active(run.run_id):
        return
    tried.add(run.run_id)
    if get_workflow(run.workflow_name) is None:
        note = (f"due runs of workflow {run.workflow_name!r} are skipped: it is not defined in "
                "this worker (pyworkflow --module / PYWORKFLOW_MODULE)")
        if note not in stats.errors:
            stats.errors.append(note)
        stats.skipped += 1
        return
    try:
        result = await rt.drive(run.run_id, steal=steal, follow_chain=True)
    except ConfigurationError as exc:
        stats.errors.append(str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - one run's trouble is not the pass's
        # A store failure or a bug while driving this run: its lease lapses and a later pass
        # tries again; every other due run is still served now.
        logger.exception("drive of run %s failed", run.run_id)
        stats.errors.append(f"run {run.run_id}: {type(exc).__name__}: {exc}")
        return
    stats.driven += 1
    if result.status == RunStatus.COMPLETED:
        stats.completed += 1
    elif result.status == RunStatus.FAILED:
        stats.failed += 1
    elif result.status == RunStatus.SUSPENDED:
        stats.suspended += 1


async def run_worker(
    rt: LocalRuntime,
    *,
    poll_interval: float = 1.0,
    once: bool = False,
    stop: asyncio.Event | None = None,
    on_pass: Callable[[WorkerStats], None] | None = None,
) -> WorkerStats:
    """Poll until ``stop`` is set (or one pass with ``once=True``)."""
    stats = WorkerStats()
    while True:
        await run_once(rt, stats)
        if on_pass is not None:
            on_pass(stats)
        if once or (stop is not None and stop.is_set()):
            return stats
        try:
            if stop is not None:
                await asyncio.wait_for(stop.wait(), poll_interval)
                return stats
            await asyncio.sleep(poll_interval)
        except TimeoutError:
            continue

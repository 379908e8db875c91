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
from pyworkflow.exceptions import ConfigurationError, WorkflowError
from pyworkflow.runtime.local import LocalRuntime

logger = logging.getLogger("pyworkflow")

MAX_BATCHES = 1000  # of 100 due runs each, per pass


@dataclass
class WorkerStats:
    driven: int = 0
    completed: int = 0
    failed: int = 0
    suspended: int = 0
    schedules_fired: int = 0
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


async def due_runs(rt: LocalRuntime, limit: int = 100) -> list[tuple[WorkflowRun, bool]]:
    """Runs to drive now, each with whether its (dead) holder's lease must be stolen."""
    now = rt.clock.now()
    found = {r.run_id: (r, False) for r in await rt.storage.list_due_runs(now, limit=limit)}
    page = await rt.storage.list_runs(status=RunStatus.RUNNING, limit=limit)
    for run in page.items:
        if run.run_id not in found and owner_is_dead(run.lease_owner):
            found[run.run_id] = (run, True)
    return list(found.values())


async def run_once(rt: LocalRuntime, stats: WorkerStats | None = None) -> WorkerStats:
    """One pass: fire due schedules, then drive every due run to its next wait or its end."""
    stats = stats or WorkerStats()
    from pyworkflow.runtime.schedules import fire_due_schedules

    try:
        stats.schedules_fired += len(await fire_due_schedules(rt))
    except WorkflowError as exc:
        stats.errors.append(str(exc))
    tried: set[str] = set()
    for _ in range(MAX_BATCHES):  # until nothing due is left that this pass has not tried
        batch = [(r, s) for r, s in await due_runs(rt) if r.run_id not in tried]
        if not batch:
            break
        for run, steal in batch:
            tried.add(run.run_id)
            if rt.is_active(run.run_id):
                continue
            try:
                result = await rt.drive(run.run_id, steal=steal, follow_chain=True)
            except ConfigurationError as exc:
                stats.errors.append(str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one run's trouble is not the pass's
                # A store failure or a bug while driving this run: its lease lapses and a
                # later pass tries again; every other due run is still served now.
                logger.exception("drive of run %s failed", run.run_id)
                stats.errors.append(f"run {run.run_id}: {type(exc).__name__}: {exc}")
                continue
            stats.driven += 1
            if result.status == RunStatus.COMPLETED:
                stats.completed += 1
            elif result.status == RunStatus.FAILED:
                stats.failed += 1
            elif result.status == RunStatus.SUSPENDED:
                stats.suspended += 1
    return stats


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

"""``pyworkflow worker``: drive due runs and fire due schedules until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import asdict, replace
from datetime import datetime

import click

from pyworkflow.cli.config import CliState, run_async, state
from pyworkflow.cli.output import console, info, print_json, warn
from pyworkflow.config import ENV_API_URL
from pyworkflow.runtime.worker import WorkerStats, run_worker


def _describe(delta: WorkerStats) -> str:
    parts = []
    if delta.driven:
        parts.append(
            f"drove {delta.driven} run(s): {delta.completed} completed, "
            f"{delta.suspended} waiting, {delta.failed} failed"
        )
    if delta.schedules_fired:
        parts.append(f"fired {delta.schedules_fired} schedule(s)")
    if delta.errors:
        parts.append(f"{len(delta.errors)} error(s)")
    return "; ".join(parts)


class _PassPrinter:
    """Prints one line per pass in which something happened (stats are cumulative)."""

    def __init__(self, st: CliState) -> None:
        self.st = st
        self.seen = WorkerStats()
        self.passes = 0

    def __call__(self, stats: WorkerStats) -> None:
        self.passes += 1
        delta = WorkerStats(
            driven=stats.driven - self.seen.driven,
            completed=stats.completed - self.seen.completed,
            failed=stats.failed - self.seen.failed,
            suspended=stats.suspended - self.seen.suspended,
            schedules_fired=stats.schedules_fired - self.seen.schedules_fired,
            errors=stats.errors[len(self.seen.errors) :],
        )
        self.seen = replace(stats, errors=list(stats.errors))
        text = _describe(delta)
        if not text or self.st.json:
            return
        out = console()
        out.print(f"{datetime.now().strftime('%H:%M:%S')} {text}")
        for error in delta.errors:
            out.print(f"  [red]error:[/] {error}", markup=True, highlight=False)


async def _serve(
    st: CliState, once: bool, poll_interval: float, printer: _PassPrinter
) -> WorkerStats:
    from pyworkflow.runtime.local import get_runtime

    rt = get_runtime()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []

    def request_stop(sig: signal.Signals) -> None:
        if not st.json:
            info(f"{sig.name}: finishing the current pass...")
        stop.set()
        # A second Ctrl-C interrupts at once.
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, request_stop, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signal support: Ctrl-C raises KeyboardInterrupt
    try:
        stats = await run_worker(
            rt, poll_interval=poll_interval, once=once, stop=stop, on_pass=printer
        )
        await rt.drain(timeout=poll_interval)
        return stats
    finally:
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


@click.command()
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Pause between passes.",
)
def worker(once: bool, poll_interval: float) -> None:
    """Drive every run that is due (sleeps, retries, restarts after a crash) and fire due
    schedules. Ctrl-C stops after the current pass."""
    st = state()
    st.local(
        "worker",
        "the stack's worker function drives the runs behind the API ('pyworkflow "
        f"dev' pumps it on this machine); drop --api-url (unset {ENV_API_URL}) to "
        "drive the runs of a local database",
    )
    st.load_modules()
    if not st.json:
        modules = ", ".join(st.imported) or "none"
        info(
            f"worker on {st.db_label()} (workflow modules: {modules})"
            + ("" if once else f", polling every {poll_interval:g}s; Ctrl-C to stop")
        )
        if not st.imported:
            warn("No --module given: runs of workflows not imported here cannot be driven.")
    printer = _PassPrinter(st)
    stats = None
    try:
        stats = run_async(_serve(st, once, poll_interval, printer))
    except KeyboardInterrupt:
        pass
    stats = stats or printer.seen
    if st.json:
        print_json({**asdict(stats), "passes": printer.passes})
        return
    if once and not _describe(stats):
        info("Nothing was due.")
    info(
        f"worker stopped after {printer.passes} pass(es): drove {stats.driven} run(s), "
        f"fired {stats.schedules_fired} schedule(s)"
    )

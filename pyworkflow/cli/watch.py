"""What a run is waiting for, and waiting for a run (chain) to end with a live status line,
read through the CLI's backend (local storage or a stack's API)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text

from pyworkflow.cli.output import console, fmt_time
from pyworkflow.core.duration import format_duration
from pyworkflow.core.events import TERMINAL_OP_EVENTS, Event, EventType
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.exceptions import WorkflowNotFoundError

if TYPE_CHECKING:
    from pyworkflow.cli.backend import Backend


class WaitTracker:
    """Follows a run's history incrementally: open waits and completed steps."""

    def __init__(self) -> None:
        self.open: dict[int, str] = {}
        self.hook_ids: dict[int, str] = {}
        self.steps = 0
        self.last_sequence = 0

    def feed(self, events: list[Event]) -> None:
        for event in events:
            self.last_sequence = max(self.last_sequence, event.sequence)
            op, data = event.op, event.data
            if event.type == EventType.STEP_COMPLETED:
                self.steps += 1
            if op is None:
                continue
            if event.type == EventType.SLEEP_STARTED:
                self.open[op] = f"sleep until {_when(data.get('resume_at'))}"
            elif event.type == EventType.HOOK_CREATED:
                self.open[op] = f"hook {data.get('name')!r}"
                self.hook_ids[op] = str(data.get("hook_id"))
            elif event.type == EventType.CHILD_WORKFLOW_STARTED and data.get("wait", True):
                self.open[op] = f"child {data.get('name')} ({data.get('child_run_id')})"
            elif event.type == EventType.STEP_RETRYING:
                self.open[op] = (
                    f"retry of step {data.get('step_name')} at {_when(data.get('retry_at'))}"
                )
            elif event.type in TERMINAL_OP_EVENTS:
                self.open.pop(op, None)

    def describe(self, skip_hook: str | None = None) -> str | None:
        """The open waits; ``skip_hook``: a hook id whose payload was just delivered (its run
        records it when the worker next replays it)."""
        return (
            "; ".join(
                text
                for op, text in self.open.items()
                if skip_hook is None or self.hook_ids.get(op) != skip_hook
            )
            or None
        )

    def hook_names(self) -> list[str]:
        return [text.split("'")[1] for text in self.open.values() if text.startswith("hook '")]


def _when(value: Any) -> str:
    if isinstance(value, str):
        try:
            return fmt_time(datetime.fromisoformat(value), short_today=True)
        except ValueError:
            return value
    return "-"


async def waiting_for(
    backend: Backend, run: WorkflowRun, skip_hook: str | None = None
) -> str | None:
    """What a non-terminal run waits for ("sleep until ...", "hook 'approve'"), if anything."""
    if run.status.is_terminal:
        return None
    tracker = WaitTracker()
    tracker.feed(await backend.events(run.run_id))
    return tracker.describe(skip_hook)


async def follow_chain(backend: Backend, run: WorkflowRun) -> WorkflowRun:
    """The latest run of ``run``'s continue-as-new chain."""
    seen = {run.run_id}
    while (
        run.status == RunStatus.CONTINUED_AS_NEW
        and run.continued_to_run_id
        and run.continued_to_run_id not in seen
    ):
        try:
            nxt = await backend.get_run(run.continued_to_run_id)
        except WorkflowNotFoundError:
            break
        seen.add(nxt.run_id)
        run = nxt
    return run


class Progress:
    """What ``wait_until_terminal`` shows while it waits, on stderr (stdout keeps the result):
    a live spinner line on a terminal, plain lines (one per change) elsewhere, nothing when
    ``show`` is off (``--output json``)."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.err = console(stderr=True)
        self.live = show and self.err.is_terminal
        self.last: str | None = None
        self.started = time.monotonic()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.live:
            from rich.progress import Progress as RichProgress
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.err,
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def update(self, run: WorkflowRun, tracker: WaitTracker) -> None:
        waiting = tracker.describe()
        line = f"{run.run_id} {run.status.value} · {tracker.steps} step(s) done" + (
            f" · waiting for {waiting}" if waiting else ""
        )
        if not self.show or line == self.last:
            return
        self.last = line
        if self._progress is not None:
            self._progress.update(
                self._task,
                description=(
                    f"{run.run_id} [bold]{run.status.value}[/] · {tracker.steps} step(s) done"
                    + (f" · waiting for {escape(waiting)}" if waiting else "")
                ),
            )
        else:
            elapsed = format_duration(time.monotonic() - self.started)
            self.err.print(Text(f"[{elapsed}] {line}", style="dim"))

    def note(self, message: str) -> None:
        """A one-off remark (the run continued as new)."""
        if self._progress is not None:
            self._progress.console.print(Text(message, style="dim"))
        elif self.show:
            self.err.print(Text(message, style="dim"))


async def wait_until_terminal(
    backend: Backend, run_id: str, *, patience: float | None, show: bool
) -> WorkflowRun:
    """Keep looking (and, locally, keep this event loop and so the run's timers alive) until
    the chain that ``run_id`` starts ends; a local backend drives it whenever it is due.
    Returns the latest run (maybe not terminal if ``patience`` seconds passed). ``show``: say
    where the run is meanwhile (see ``Progress``)."""
    deadline = None if patience is None else time.monotonic() + patience
    tracker, current = WaitTracker(), run_id
    announced: set[tuple[str, str]] = set()
    with Progress(show) as progress:
        while True:
            run = await backend.get_run(current)
            if run.status == RunStatus.CONTINUED_AS_NEW and run.continued_to_run_id:
                progress.note(f"{current} continued as new: {run.continued_to_run_id}")
                current, tracker = run.continued_to_run_id, WaitTracker()
                continue
            if run.status.is_terminal:
                return run
            tracker.feed(await backend.events(current, after=tracker.last_sequence))
            progress.update(run, tracker)
            for hook in tracker.hook_names():
                if (current, hook) not in announced:
                    # say at once what the run needs, not only when the patience runs out
                    announced.add((current, hook))
                    progress.note(
                        f"{current} waits for hook {hook!r}: pyworkflow hooks resume --run "
                        f"{current} --name {hook} --payload '<json>'"
                    )
            if deadline is not None and time.monotonic() >= deadline:
                return run
            if await backend.nudge(run):
                continue
            await asyncio.sleep(backend.poll_interval)

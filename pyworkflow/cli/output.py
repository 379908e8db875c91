"""Printing for the CLI: rich tables and key/value blocks, JSON, one-line errors, and short
summaries of runs and events. Everything resolves ``sys.stdout``/``sys.stderr`` when it prints,
so click's test runner (which swaps them) sees the output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pyworkflow.core.duration import format_duration
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import WorkflowRun

STATUS_STYLES = {
    "pending": "dim",
    "running": "blue",
    "suspended": "yellow",
    "completed": "green",
    "failed": "red",
    "interrupted": "yellow",
    "cancelled": "red",
    "continued_as_new": "cyan",
    "received": "green",
    "expired": "red",
    "disposed": "dim",
    "active": "green",
    "paused": "yellow",
    "deleted": "dim",
}


def console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr. Off a terminal: no colour, wide lines."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Console(file=stream, highlight=False, width=None if tty else 200, soft_wrap=not tty)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def one_line(text: str) -> str:
    """An exception message on one line (pydantic's messages span several)."""
    lines = [
        line.strip()
        for line in str(text).splitlines()
        if line.strip() and not line.strip().startswith("For further information visit")
    ]
    return "; ".join(lines) if lines else str(text).strip()


def print_error(message: str, hint: str | None = None) -> None:
    err = console(stderr=True)
    err.print(Text(f"Error: {one_line(message)}", style="bold red"))
    if hint:
        err.print(Text(f"Hint: {hint}", style="dim"))


def info(message: str, *, json_mode: bool = False) -> None:
    """A remark for people: on stderr in JSON mode, so stdout stays parseable."""
    console(stderr=json_mode).print(Text(message, style="dim"))


def success(message: str) -> None:
    console().print(Text(message, style="green"))


def warn(message: str, *, json_mode: bool = False) -> None:
    console(stderr=json_mode).print(Text(message, style="yellow"))


def status_text(status: Any) -> Text:
    value = getattr(status, "value", status)
    return Text(str(value), style=STATUS_STYLES.get(str(value), ""))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=None,
        pad_edge=False,
        show_edge=False,
    )
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row])
    out = console()
    with out.capture() as captured:  # drop the padding rich leaves at the end of each line
        out.print(table)
    out.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_key_values(title: str | None, pairs: Sequence[tuple[str, Any]]) -> None:
    out = console()
    if title:
        out.print(Text(title, style="bold"))
    width = max((len(k) for k, _ in pairs), default=0) + 1
    for key, value in pairs:
        line = Text()
        line.append(f"{key + ':':<{width}} ", style="bold")
        line.append(value if isinstance(value, Text) else Text(str(value)))
        out.print(line)


# --- formatting ---------------------------------------------------------------------------------
def fmt_time(dt: datetime | None, *, precise: bool = False, short_today: bool = False) -> str:
    """Local time; ``precise``: with milliseconds; ``short_today``: time of day only when
    ``dt`` is today. A day other than today always carries its date."""
    if dt is None:
        return "-"
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    local = dt.astimezone()
    today = local.date() == datetime.now().astimezone().date()
    if precise:
        return local.strftime("%H:%M:%S.%f" if today else "%Y-%m-%d %H:%M:%S.%f")[:-3]
    if short_today and today:
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def run_duration(run: WorkflowRun) -> str:
    if run.started_at is None:
        return "-"
    if run.completed_at is not None:
        return format_duration((run.completed_at - run.started_at).total_seconds())
    if run.status.is_terminal:
        return "-"
    return format_duration((datetime.now(UTC) - run.started_at).total_seconds()) + " (ongoing)"


def fmt_seconds(seconds: float | None) -> str:
    """A duration: ``250ms``, ``1.5s``, ``2m05s``, ``1h00m``; ``-`` for none."""
    if seconds is None:
        return "-"
    return ("-" if seconds < 0 else "") + format_duration(abs(seconds))


def fmt_offset(seconds: float | None) -> str:
    """A time since the run started: ``+0ms``, ``+1.5s``."""
    return "-" if seconds is None else "+" + fmt_seconds(seconds)


def short(value: Any, limit: int = 60) -> str:
    text = (
        value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_text(raw: str | None) -> Any:
    """Decode one of the run's JSON text fields (``result``, ``input_args``...)."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def pretty(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def call_args(args: Any, kwargs: Any) -> str:
    parts = [short(a, 30) for a in (args or [])]
    parts += [f"{k}={short(v, 30)}" for k, v in (kwargs or {}).items()]
    return ", ".join(parts)


def event_summary(event: Event) -> str:
    """A short description of an event's data for ``runs logs``."""
    d = event.data
    t = event.type
    if t == EventType.WORKFLOW_STARTED:
        return f"{d.get('workflow_name', '')}({call_args(d.get('args'), d.get('kwargs'))})"
    if t == EventType.WORKFLOW_COMPLETED:
        return f"result={short(d.get('result'))}"
    if t in (
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_CANCELLED,
        EventType.STEP_FAILED,
        EventType.CHILD_WORKFLOW_FAILED,
    ):
        name = d.get("step_name") or d.get("workflow_name") or d.get("name")
        err = d.get("error_type")
        text = f"{err}: {d.get('error')}" if err else str(d.get("error", ""))
        return f"{name + ' ' if name and not t.startswith('workflow') else ''}{short(text, 80)}"
    if t == EventType.WORKFLOW_CONTINUED_AS_NEW:
        return f"-> {d.get('new_run_id')} ({call_args(d.get('args'), d.get('kwargs'))})"
    if t == EventType.STEP_COMPLETED:
        extra = f" attempt {d['attempt']}" if d.get("attempt", 1) != 1 else ""
        return f"{d.get('step_name', d.get('name'))} -> {short(d.get('result'))}{extra}"
    if t == EventType.STEP_RETRYING:
        return (
            f"{d.get('step_name', d.get('name'))} attempt {d.get('attempt')}: "
            f"{short(d.get('error', ''), 50)}"
        )
    if t == EventType.SLEEP_STARTED:
        resume = d.get("resume_at")
        when = (
            fmt_time(datetime.fromisoformat(resume), precise=True)
            if isinstance(resume, str)
            else "-"
        )
        return f"{d.get('duration', '')} until {when}"
    if t == EventType.SLEEP_COMPLETED:
        return ""
    if t in (EventType.HOOK_CREATED, EventType.HOOK_EXPIRED):
        return f"{d.get('name')} ({d.get('hook_id')})"
    if t == EventType.HOOK_RECEIVED:
        return f"{d.get('name')} payload={short(d.get('payload'))}"
    if t.startswith("child_workflow"):
        rest = {k: v for k, v in d.items() if k not in ("op", "name")}
        return f"{d.get('name', '')} " + " ".join(f"{k}={short(v, 30)}" for k, v in rest.items())
    rest = {k: v for k, v in d.items() if k != "op"}
    return " ".join(f"{k}={short(v, 40)}" for k, v in rest.items())


def error_pairs(run: WorkflowRun) -> list[tuple[str, Any]]:
    """A failed run's "Error" line and, when recorded, where it was raised."""
    if not run.error:
        return []
    pairs: list[tuple[str, Any]] = [
        (
            "Error",
            Text(f"{run.error_type + ': ' if run.error_type else ''}{run.error}", style="red"),
        )
    ]
    if run.error_traceback:
        pairs.append(("Stack trace", Text(run.error_traceback, style="dim")))
    return pairs


def print_tracebacks(events: Iterable[Event]) -> None:
    """Where each recorded failure (a step attempt, the run) was raised, below the event table."""
    out = console()
    for event in events:
        trace = event.data.get("traceback")
        if not isinstance(trace, str):
            continue
        name = event.data.get("step_name") or event.data.get("name") or ""
        attempt = event.data.get("attempt")
        label = f"#{event.sequence} {event.type.value} {name}".rstrip()
        out.print(f"\n[bold]{label}[/bold]" + (f" (attempt {attempt})" if attempt else ""))
        out.print(Text(trace, style="dim"), highlight=False)


def dump_run(run: WorkflowRun) -> dict[str, Any]:
    """A run for ``--output json``: as the API answers it, the arguments and the result as
    JSON values (a run keeps them as JSON text)."""
    return run.as_json_values()

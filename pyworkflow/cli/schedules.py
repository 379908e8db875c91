"""``pyworkflow schedules list | show | create | pause | resume | delete | trigger | backfill``
on the 0.1.9-style functions of ``pyworkflow.runtime.schedules``, or on the API's schedule
routes with --api-url (no backfill route there)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from pyworkflow.cli.config import run_async, state
from pyworkflow.cli.errors import CliError
from pyworkflow.cli.output import (
    fmt_time,
    info,
    json_text,
    pretty,
    print_json,
    print_key_values,
    print_table,
    status_text,
    success,
    warn,
)
from pyworkflow.core.models import OverlapPolicy, Schedule, ScheduleSpec, ScheduleStatus
from pyworkflow.exceptions import WorkflowNotFoundError


def _spec_text(spec: ScheduleSpec) -> str:
    if spec.cron:
        return f"cron {spec.cron}" + (f" ({spec.timezone})" if spec.timezone != "UTC" else "")
    if spec.interval:
        return f"every {spec.interval}"
    if spec.calendar:
        return f"calendar ({len(spec.calendar)} entries)"
    return "-"


def _parse_time(value: str, option: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{option} {value!r} is not an ISO date/time",
            "e.g. 2024-01-01 or 2024-01-01T09:00:00+00:00 (no offset: the schedule's timezone)",
        ) from None
    return dt  # naive: read in the schedule's timezone


def _show(schedule: Schedule, title: str | None = None) -> None:
    if state().json:
        print_json(schedule.model_dump(mode="json"))
        return
    pairs: list[tuple[str, Any]] = [
        ("Schedule ID", schedule.schedule_id),
        ("Workflow", schedule.workflow_name),
        ("Spec", _spec_text(schedule.spec)),
        ("Status", status_text(schedule.status)),
        ("Overlap", schedule.overlap_policy.value),
        ("Next run", fmt_time(schedule.next_run_time)),
        ("Last run", fmt_time(schedule.last_run_at)),
        ("Last run ID", schedule.last_run_id or "-"),
        (
            "Runs",
            f"{schedule.total_runs} total, {schedule.successful_runs} ok, "
            f"{schedule.failed_runs} failed, {schedule.skipped_runs} skipped",
        ),
    ]
    args, kwargs = json_text(schedule.args), json_text(schedule.kwargs)
    if args:
        pairs.append(("Args", pretty(args)))
    if kwargs:
        pairs.append(("Kwargs", pretty(kwargs)))
    print_key_values(title or f"Schedule {schedule.schedule_id}", pairs)


@click.group()
def schedules() -> None:
    """Schedules: start workflows on a cron or an interval (fired by 'pyworkflow worker')."""


@schedules.command("list")
@click.option("--workflow", "workflow_name", metavar="NAME", help="Only this workflow's.")
@click.option(
    "--status", type=click.Choice([s.value for s in ScheduleStatus], case_sensitive=False)
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_cmd(workflow_name: str | None, status: str | None, limit: int) -> None:
    """List schedules."""
    st = state()
    found = run_async(
        st.backend.list_schedules(
            workflow=workflow_name,
            status=ScheduleStatus(status.lower()) if status else None,
            limit=limit,
        )
    )
    if st.json:
        print_json([s.model_dump(mode="json") for s in found])
        return
    if not found:
        info("No schedules found.")
        return
    print_table(
        None,
        ["Schedule ID", "Workflow", "Spec", "Status", "Next run", "Last run", "Runs"],
        [
            (
                s.schedule_id,
                s.workflow_name,
                _spec_text(s.spec),
                status_text(s.status),
                fmt_time(s.next_run_time),
                fmt_time(s.last_run_at),
                str(s.total_runs),
            )
            for s in found
        ],
    )


@schedules.command("show")
@click.argument("schedule_id")
def show_cmd(schedule_id: str) -> None:
    """Show one schedule."""
    _show(run_async(state().backend.get_schedule(schedule_id)))


@schedules.command("create")
@click.argument("workflow_name")
@click.option("--cron", metavar="EXPR", help="Cron expression, e.g. '0 9 * * *'.")
@click.option("--interval", metavar="DURATION", help="Interval, e.g. 30s, 5m, 1h.")
@click.option("--timezone", default="UTC", show_default=True, help="Time zone of --cron.")
@click.option(
    "--overlap",
    type=click.Choice([p.value for p in OverlapPolicy], case_sensitive=False),
    default=OverlapPolicy.SKIP.value,
    show_default=True,
    help="What to do when the previous run is still going.",
)
@click.option("--schedule-id", metavar="ID", help="Choose the id (default: generated).")
@click.option(
    "--arg",
    "arg",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keyword argument for each run (repeatable).",
)
@click.option(
    "--args-json",
    metavar="JSON",
    help="Arguments as JSON: an object (keyword) or a list (positional).",
)
def create_cmd(
    workflow_name: str,
    cron: str | None,
    interval: str | None,
    timezone: str,
    overlap: str,
    schedule_id: str | None,
    arg: tuple[str, ...],
    args_json: str | None,
) -> None:
    """Create a schedule for WORKFLOW_NAME (exactly one of --cron / --interval)."""
    from pyworkflow.cli.workflows import parse_arguments

    if bool(cron) == bool(interval):
        raise click.UsageError("Give exactly one of --cron or --interval.")
    backend = state().backend
    backend.require_workflow(workflow_name)
    args, kwargs = parse_arguments(arg, args_json)
    clash = sorted(backend.schedule_reserved & kwargs.keys())
    if clash:
        raise CliError(
            f"Argument name(s) {', '.join(clash)} cannot be passed by keyword",
            "pass the arguments positionally: --args-json '[...]'",
        )
    spec = ScheduleSpec(cron=cron, interval=interval, timezone=timezone)
    schedule = run_async(
        backend.create_schedule(
            workflow_name,
            spec,
            args,
            kwargs,
            overlap_policy=OverlapPolicy(overlap.lower()),
            schedule_id=schedule_id,
        )
    )
    _show(schedule, "Schedule created")


async def _change(schedule_id: str, func_name: str) -> Schedule:
    backend = state().backend
    await backend.get_schedule(schedule_id)  # not found: the same error either way
    changed: Schedule = await getattr(backend, func_name)(schedule_id)
    return changed


@schedules.command("pause")
@click.argument("schedule_id")
def pause_cmd(schedule_id: str) -> None:
    """Pause a schedule: no runs until it is resumed."""
    schedule = run_async(_change(schedule_id, "pause_schedule"))
    if state().json:
        print_json(schedule.model_dump(mode="json"))
    else:
        success(f"Schedule {schedule_id} paused.")


@schedules.command("resume")
@click.argument("schedule_id")
def resume_cmd(schedule_id: str) -> None:
    """Resume a paused schedule (the next run time is computed from now)."""
    schedule = run_async(_change(schedule_id, "resume_schedule"))
    if state().json:
        print_json(schedule.model_dump(mode="json"))
    else:
        success(f"Schedule {schedule_id} resumed; next run {fmt_time(schedule.next_run_time)}.")


@schedules.command("delete")
@click.argument("schedule_id")
def delete_cmd(schedule_id: str) -> None:
    """Delete a schedule (no further runs)."""

    backend = state().backend

    async def go() -> None:
        await backend.get_schedule(schedule_id)
        await backend.delete_schedule(schedule_id)

    run_async(go())
    if state().json:
        print_json({"schedule_id": schedule_id, "deleted": True})
    else:
        success(f"Schedule {schedule_id} deleted.")


@schedules.command("trigger")
@click.argument("schedule_id")
def trigger_cmd(schedule_id: str) -> None:
    """Start a run of the schedule's workflow now."""
    st = state()
    if not st.remote:
        st.load_modules()  # the run starts (and is driven) here
    backend = st.backend

    async def go() -> tuple[str, str | None]:
        await backend.get_schedule(schedule_id)
        run_id = await backend.trigger_schedule(schedule_id)
        try:
            return run_id, (await backend.get_run(run_id)).status.value
        except WorkflowNotFoundError:
            return run_id, None

    run_id, status = run_async(go())
    if st.json:
        print_json({"schedule_id": schedule_id, "run_id": run_id, "status": status})
    else:
        success(f"Schedule {schedule_id} triggered: run {run_id} ({status})")


_TZ = " (without an offset: in the schedule's timezone)"


@schedules.command("backfill")
@click.argument("schedule_id")
@click.option("--start", "start", required=True, metavar="TIME", help=f"ISO date/time{_TZ}.")
@click.option("--end", "end", required=True, metavar="TIME", help=f"ISO date/time{_TZ}.")
def backfill_cmd(schedule_id: str, start: str, end: str) -> None:
    """Start the runs the schedule would have started between --start and --end."""
    st = state()
    local = st.local("schedules backfill")
    start_time, end_time = _parse_time(start, "--start"), _parse_time(end, "--end")
    if (end_time.tzinfo is None) == (start_time.tzinfo is None) and end_time <= start_time:
        raise CliError("--end must be after --start")
    st.load_modules()

    async def go() -> list[str]:
        await local.get_schedule(schedule_id)
        return await local.backfill_schedule(schedule_id, start_time, end_time)

    run_ids = run_async(go())
    if st.json:
        print_json({"schedule_id": schedule_id, "run_ids": run_ids})
        return
    if not run_ids:
        warn("No scheduled times in that range.")
        return
    success(f"Backfilled {len(run_ids)} run(s) of schedule {schedule_id}:")
    for run_id in run_ids:
        info(f"  {run_id}")

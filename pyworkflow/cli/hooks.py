"""``pyworkflow hooks list | resume | fail | heartbeat``. Tokens are stored only as hashes, so
operators resume (or fail) a hook by run id and name; a token (handed to ``on_created``) works
too."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

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
)
from pyworkflow.core.models import Hook, HookStatus, RunStatus, WorkflowRun

if TYPE_CHECKING:
    from pyworkflow.cli.backend import Backend

PAYLOAD_HINT = (
    "--payload takes JSON: '{\"approved\": true}', '42', '\"text\"' (a string needs its quotes)"
)


def _status(hook: Hook, now: datetime) -> Text:
    if hook.status == HookStatus.PENDING and hook.expires_at and hook.expires_at <= now:
        return Text("pending (expired)", style="red")
    return status_text(hook.status)


def _hook_json(hook: Hook) -> dict[str, Any]:
    return hook.model_dump(mode="json", exclude={"token_hash"})


@click.group()
def hooks() -> None:
    """Hooks: runs waiting for a payload from outside."""


@hooks.command("list")
@click.option("--run", "--run-id", "run_id", metavar="RUN_ID", help="Only this run's hooks.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in HookStatus], case_sensitive=False),
    help="Only hooks in this status (e.g. pending).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_cmd(run_id: str | None, status: str | None, limit: int) -> None:
    """List hooks, newest first."""
    st = state()
    st.local(
        "hooks list",
        "'pyworkflow runs logs RUN_ID --filter hook' shows a run's hooks "
        "through the API; 'pyworkflow hooks resume --run RUN_ID --name NAME' "
        "resumes one",
    )

    async def go() -> list[Hook]:
        from pyworkflow.config import get_storage

        return await get_storage().list_hooks(
            run_id=run_id, status=HookStatus(status.lower()) if status else None, limit=limit
        )

    found = run_async(go())
    if st.json:
        print_json([_hook_json(h) for h in found])
        return
    if not found:
        info("No hooks found.")
        return
    now = datetime.now(UTC)
    print_table(
        None,
        ["Run ID", "Hook ID", "Name", "Status", "Created", "Expires"],
        [
            (
                h.run_id,
                h.hook_id,
                h.name,
                _status(h, now),
                fmt_time(h.created_at),
                fmt_time(h.expires_at),
            )
            for h in found
        ],
    )


def _hook_target(command: Callable[..., None]) -> Callable[..., None]:
    """A hook is named by its TOKEN, or by --run RUN_ID and --name NAME (resume and fail alike)."""
    for option in reversed(
        [
            click.argument("token", required=False),
            click.option(
                "--run",
                "--run-id",
                "run_id",
                metavar="RUN_ID",
                help="The run waiting on the hook (with --name; no token needed).",
            ),
            click.option(
                "--name",
                metavar="NAME",
                help="The hook's name (default: the run's only pending hook).",
            ),
        ]
    ):
        command = option(command)
    return command


@hooks.command("resume")
@_hook_target
@click.option(
    "--payload",
    "-p",
    default="null",
    show_default=True,
    metavar="JSON",
    help="The payload, as JSON.",
)
@click.option(
    "--payload-file",
    type=click.File("r"),
    metavar="FILE",
    help="Read the JSON payload from a file ('-' for stdin).",
)
def resume_cmd(
    token: str | None, run_id: str | None, name: str | None, payload: str, payload_file: Any
) -> None:
    """Deliver a payload to a hook and drive its run.

    \b
      pyworkflow -m app.flows hooks resume --run RUN_ID --name approve --payload '{"ok": true}'
      pyworkflow -m app.flows hooks resume TOKEN --payload '{"ok": true}'
    """
    st = state()
    _check_target(token, run_id, name)
    text = payload_file.read() if payload_file is not None else payload
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"The payload is not valid JSON: {exc}", PAYLOAD_HINT) from None
    if not st.remote:
        st.load_modules()
    _show(run_async(_resume(st.backend, token, run_id, name, data)), "Hook resumed")


def _check_target(token: str | None, run_id: str | None, name: str | None) -> None:
    if token and (run_id or name):
        raise click.UsageError("Give either a TOKEN or --run/--name, not both.")
    if not token and not run_id:
        raise click.UsageError("Give a TOKEN, or --run RUN_ID (and --name NAME).")
    if name and not run_id:
        raise click.UsageError("--name needs --run RUN_ID.")


@hooks.command("fail")
@_hook_target
@click.option(
    "--type",
    "error_type",
    required=True,
    metavar="TYPE",
    help="The error's type, as the workflow sees it (HookFailedError.error_type).",
)
@click.option("--message", "-m", default="", metavar="TEXT", help="What went wrong.")
def fail_cmd(
    token: str | None, run_id: str | None, name: str | None, error_type: str, message: str
) -> None:
    """Fail a hook: the run's ``await hook(...)`` raises HookFailedError(TYPE, MESSAGE).

    \b
      pyworkflow -m app.flows hooks fail --run RUN_ID --name payment --type Declined -m "card"
      pyworkflow -m app.flows hooks fail TOKEN --type Declined
    """
    st = state()
    _check_target(token, run_id, name)
    if not st.remote:
        st.load_modules()
    failure = (error_type, message)
    _show(run_async(_resume(st.backend, token, run_id, name, None, failure)), "Hook failed")


@hooks.command("heartbeat")
@click.argument("token")
def heartbeat_cmd(token: str) -> None:
    """Keep a hook with a heartbeat_timeout alive: its deadline moves on by that timeout."""
    st = state()
    result = run_async(st.backend.heartbeat_hook(token))
    if st.json:
        print_json(result.model_dump(mode="json"))
        return
    print_key_values("Heartbeat taken", [("Run ID", result.run_id), ("Hook", result.hook_id)])


def _show(outcome: dict[str, Any], title: str) -> None:
    st = state()
    if st.json:
        print_json(outcome)
        return
    pairs: list[tuple[str, Any]] = [
        ("Run ID", outcome["run_id"]),
        ("Hook", outcome["hook_id"]),
        ("Run status", status_text(outcome["run_status"])),
    ]
    if outcome["run_status"] == "completed":
        pairs.append(("Result", pretty(outcome["result"])))
    if outcome.get("waiting_for"):
        pairs.append(("Waiting for", outcome["waiting_for"]))
    print_key_values(title, pairs)
    if st.remote and not RunStatus(outcome["run_status"]).is_terminal:
        info(
            f"The run carries on {st.backend.carries_on}: 'pyworkflow runs status "
            f"{outcome['current_run_id']}'."
        )


def _hooks_of(run_id: str) -> str:
    """The command that lists a run's hooks (the API has no hook listing: its history)."""
    if state().remote:
        return f"pyworkflow runs logs {run_id} --filter hook"
    return f"pyworkflow hooks list --run {run_id}"


async def _check_open(backend: Backend, run: WorkflowRun) -> None:
    """A run that has ended takes no more payloads (its hooks may still read "pending")."""
    if run.status.is_terminal:
        raise CliError(
            f"Run {run.run_id} already ended ({run.status.value}); its hooks take no payload",
            f"'pyworkflow runs status {run.run_id}' shows how it ended",
        )
    backend.require_workflow(run.workflow_name, run_id=run.run_id)  # resuming drives it here


async def _resume(
    backend: Backend,
    token: str | None,
    run_id: str | None,
    name: str | None,
    payload: Any,
    failure: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Deliver ``payload`` (or fail the hook with ``failure``) and say where the run is."""
    from pyworkflow.cli.watch import follow_chain, waiting_for

    if token:
        found = await backend.hook_run(token)
        if found is not None:
            await _check_open(backend, found)
        result = (
            await backend.resume_hook(token, payload)
            if failure is None
            else await backend.fail_hook(token, *failure)
        )
    else:
        if run_id is None:  # resume_cmd asks for a TOKEN or --run
            raise CliError("Give a TOKEN, or --run RUN_ID (and --name NAME).")
        await _check_open(backend, await backend.get_run(run_id))
        if name is None:
            names = await backend.pending_hooks(run_id)
            if len(names) != 1:
                raise CliError(
                    f"Run {run_id} has {'no' if not names else len(names)} pending hooks"
                    + (f" ({', '.join(names)})" if names else ""),
                    "name the hook with --name"
                    if names
                    else f"'{_hooks_of(run_id)}' shows its hooks",
                )
            name = names[0]
        result = (
            await backend.resume_hook_by_name(run_id, name, payload)
            if failure is None
            else await backend.fail_hook_by_name(run_id, name, *failure)
        )
    await backend.settle()
    run = await follow_chain(backend, await backend.get_run(result.run_id))
    return {
        "run_id": result.run_id,
        "hook_id": result.hook_id,
        "status": result.status,
        "run_status": run.status.value,
        "current_run_id": run.run_id,
        "result": json_text(run.result),
        # Over the API the worker has not replayed the payload yet: that hook is answered.
        "waiting_for": await waiting_for(backend, run, skip_hook=result.hook_id),
    }

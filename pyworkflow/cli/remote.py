"""The CLI against a stack's HTTP API (``--api-url`` / ``PYWORKFLOW_API_URL``), through
``pyworkflow.client``: the same commands, the same printers, nothing imported or driven here.
The stack's worker moves runs along, so commands report where a run is when they ask; ``--wait``
polls until it ends.

Some commands have no API route (``worker``, ``hooks list``, ``runs children``, ``schedules
backfill``): ``CliState.local()`` refuses them with one line (see ``needs_local``).
"""

from __future__ import annotations

from typing import Any

from pyworkflow.cli.errors import CliError, is_loopback
from pyworkflow.client import Client, HookResumed
from pyworkflow.config import ENV_API_URL
from pyworkflow.core.events import Event
from pyworkflow.core.models import (
    OverlapPolicy,
    Page,
    RunStatus,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
    WorkflowRun,
)


def should_sign(api_url: str, no_sign: bool) -> bool:
    """SigV4 by default (a deployed stack's API uses IAM auth); never for loopback."""
    return not no_sign and not is_loopback(api_url)


def needs_local(command: str, api_url: str, hint: str | None = None) -> CliError:
    return CliError(
        f"'pyworkflow {command}' needs local storage: it is not available through the API at "
        f"{api_url}",
        hint or f"run it where the runs' database is, without --api-url (unset {ENV_API_URL})",
    )


class RemoteBackend:
    """``Backend`` over ``Client.http``. A workflow's module is the stack's business: names are
    checked by the API (``UnknownWorkflowError``), argument names too."""

    carries_on = "in the stack (its worker drives it)"
    poll_interval = 0.25
    start_reserved: frozenset[str] = frozenset()
    schedule_reserved: frozenset[str] = frozenset()

    def __init__(self, api_url: str, *, sign: bool) -> None:
        self.label = api_url.rstrip("/")
        self.sign = sign
        self.client = Client.http(api_url, sign=sign)

    # --- runs --------------------------------------------------------------------------------
    async def get_run(self, run_id: str) -> WorkflowRun:
        return await self.client.get_run(run_id)

    async def list_runs(
        self, *, status: RunStatus | None, workflow: str | None, limit: int, cursor: str | None
    ) -> Page:
        return await self.client.list_runs(
            status=status, workflow=workflow, limit=limit, cursor=cursor
        )

    async def events(self, run_id: str, after: int = 0) -> list[Event]:
        return await self.client.events(run_id, after=after)

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        return await self.client.chain(run_id)

    def require_workflow(self, name: str, run_id: str | None = None) -> None:
        """The API checks the name when it is used."""

    async def start(
        self, name: str, args: list[Any], kwargs: dict[str, Any], idempotency_key: str | None
    ) -> str:
        return await self.client.transport.start(
            name, args, kwargs, idempotency_key=idempotency_key
        )

    async def nudge(self, run: WorkflowRun) -> bool:
        return False

    async def settle(self) -> None:
        """Nothing runs here."""

    async def cancel(self, run_id: str, reason: str | None, *, wait: bool, timeout: float) -> bool:
        cancelled = await self.client.cancel(run_id, reason)
        if cancelled and wait:
            try:
                await self.client.wait(run_id, timeout=timeout)
            except TimeoutError:
                pass  # reported as "cancellation requested" with the run's status
        return cancelled

    # --- hooks -------------------------------------------------------------------------------
    async def hook_run(self, token: str) -> WorkflowRun | None:
        """Tokens are looked up by the API alone (it answers for a run that has ended)."""
        return None

    async def pending_hooks(self, run_id: str) -> list[str]:
        # No route lists hooks: the history says which hooks the run still waits on.
        from pyworkflow.cli.watch import WaitTracker

        tracker = WaitTracker()
        tracker.feed(await self.events(run_id))
        return sorted(set(tracker.hook_names()))

    async def resume_hook(self, token: str, payload: Any) -> HookResumed:
        return await self.client.resume_hook(token, payload)

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> HookResumed:
        return await self.client.resume_hook_by_name(run_id, name, payload)

    async def fail_hook(self, token: str, error_type: str, message: str) -> HookResumed:
        return await self.client.fail_hook(token, error_type, message)

    async def fail_hook_by_name(
        self, run_id: str, name: str, error_type: str, message: str
    ) -> HookResumed:
        return await self.client.fail_hook_by_name(run_id, name, error_type, message)

    async def heartbeat_hook(self, token: str) -> HookResumed:
        return await self.client.heartbeat_hook(token)

    # --- workflows ---------------------------------------------------------------------------
    async def workflows(self) -> list[dict[str, Any]]:
        found = await self.client.list_workflows()
        return [w.model_dump(mode="json") for w in sorted(found, key=lambda w: w.name)]

    async def workflow(self, name: str) -> dict[str, Any]:
        known = await self.workflows()
        for item in known:
            if item["name"] == name:
                return item
        listing = ", ".join(w["name"] for w in known) or "none"
        raise CliError(
            f"Unknown workflow {name!r} at {self.label} (registered there: {listing})",
            "the stack imports the workflows of its WorkflowModule "
            "parameter (PYWORKFLOW_MODULE of the API function)",
        )

    # --- schedules ---------------------------------------------------------------------------
    async def list_schedules(
        self, *, workflow: str | None, status: ScheduleStatus | None, limit: int
    ) -> list[Schedule]:
        return await self.client.list_schedules(workflow=workflow, status=status, limit=limit)

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self.client.get_schedule(schedule_id)

    async def create_schedule(
        self,
        name: str,
        spec: ScheduleSpec,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        overlap_policy: OverlapPolicy,
        schedule_id: str | None,
    ) -> Schedule:
        return await self.client.transport.create_schedule(
            name, spec, args, kwargs, overlap_policy=overlap_policy, schedule_id=schedule_id
        )

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self.client.pause_schedule(schedule_id)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self.client.resume_schedule(schedule_id)

    async def delete_schedule(self, schedule_id: str) -> None:
        await self.client.delete_schedule(schedule_id)

    async def trigger_schedule(self, schedule_id: str) -> str:
        return await self.client.trigger_schedule(schedule_id)

    async def aclose(self) -> None:
        """The HTTP session belongs to this ``asyncio.run``; the next command opens another."""
        await self.client.close()

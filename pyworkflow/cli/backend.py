"""Where the CLI's commands read and change runs: local storage (``local``: the embedded runtime
on SQLite) or a deployed stack's HTTP API (``remote``: ``--api-url``). Commands are written once
against ``Backend``; the CLI state picks one per invocation.

The local side keeps the embedded runtime's habits: a command that starts, resumes or cancels a
run also drives it here until it completes or waits, so it needs the workflow's module. The
remote side only asks; the stack's worker drives the runs.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from pyworkflow.client.models import HookResumed
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
from pyworkflow.core.registry import WorkflowDefinition


class Backend(Protocol):
    """The operations the commands need, local or remote. Runs, events and schedules are the
    core's models either way, so the printers do not know which side answered."""

    #: Where the runs are, for messages ("/path/db.sqlite", "http://127.0.0.1:8787").
    label: str
    #: Who moves runs along once the command has returned, for hints.
    carries_on: str
    #: Seconds between two looks at a run a command waits for.
    poll_interval: float
    #: Keyword names the backend cannot pass through to a workflow (run / schedule).
    start_reserved: frozenset[str]
    schedule_reserved: frozenset[str]

    # --- runs --------------------------------------------------------------------------------
    async def get_run(self, run_id: str) -> WorkflowRun:
        """The run; ``WorkflowNotFoundError`` if there is none."""
        ...

    async def list_runs(
        self, *, status: RunStatus | None, workflow: str | None, limit: int, cursor: str | None
    ) -> Page: ...

    async def events(self, run_id: str, after: int = 0) -> list[Event]: ...

    async def chain(self, run_id: str) -> list[WorkflowRun]: ...

    def require_workflow(self, name: str, run_id: str | None = None) -> None:
        """Fail early if runs of ``name`` cannot be driven by this backend."""
        ...

    async def start(
        self, name: str, args: list[Any], kwargs: dict[str, Any], idempotency_key: str | None
    ) -> str: ...

    async def nudge(self, run: WorkflowRun) -> bool:
        """Drive ``run`` here if it is due and nobody does; True if it did."""
        ...

    async def settle(self) -> None:
        """Let the runs this command woke reach their next wait (local drives)."""
        ...

    async def cancel(
        self, run_id: str, reason: str | None, *, wait: bool, timeout: float
    ) -> bool: ...

    # --- hooks -------------------------------------------------------------------------------
    async def hook_run(self, token: str) -> WorkflowRun | None:
        """The run a hook token belongs to, when this backend can look it up."""
        ...

    async def pending_hooks(self, run_id: str) -> list[str]:
        """Names of the hooks ``run_id`` waits on."""
        ...

    async def resume_hook(self, token: str, payload: Any) -> HookResumed: ...

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> HookResumed: ...

    async def fail_hook(self, token: str, error_type: str, message: str) -> HookResumed: ...

    async def fail_hook_by_name(
        self, run_id: str, name: str, error_type: str, message: str
    ) -> HookResumed: ...

    async def heartbeat_hook(self, token: str) -> HookResumed: ...

    # --- workflows ---------------------------------------------------------------------------
    async def workflows(self) -> list[dict[str, Any]]:
        """Descriptions of the registered workflows (see ``describe``), sorted by name."""
        ...

    async def workflow(self, name: str) -> dict[str, Any]: ...

    # --- schedules ---------------------------------------------------------------------------
    async def list_schedules(
        self, *, workflow: str | None, status: ScheduleStatus | None, limit: int
    ) -> list[Schedule]: ...

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule; ``ScheduleNotFoundError`` if it never existed."""
        ...

    async def create_schedule(
        self,
        name: str,
        spec: ScheduleSpec,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        overlap_policy: OverlapPolicy,
        schedule_id: str | None,
    ) -> Schedule: ...

    async def pause_schedule(self, schedule_id: str) -> Schedule: ...

    async def resume_schedule(self, schedule_id: str) -> Schedule: ...

    async def delete_schedule(self, schedule_id: str) -> None: ...

    async def trigger_schedule(self, schedule_id: str) -> str: ...

    async def aclose(self) -> None:
        """Release what this invocation opened (called at the end of each ``run_async``)."""
        ...


# --- what the local side knows about a workflow -----------------------------------------------
def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def describe_parameters(defn: WorkflowDefinition) -> list[dict[str, Any]]:
    if defn.signature is None:
        return []
    params = []
    for p in defn.signature.parameters.values():
        annotation = defn.hints.get(p.name, p.annotation)
        params.append(
            {
                "name": p.name,
                "kind": p.kind.name.lower(),
                "type": _type_name(annotation) or None,
                "required": p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD),
                "default": None if p.default is inspect.Parameter.empty else repr(p.default),
            }
        )
    return params


def signature_text(defn: WorkflowDefinition) -> str:
    parts = []
    for p in describe_parameters(defn):
        prefix = {"var_positional": "*", "var_keyword": "**"}.get(p["kind"], "")
        text = prefix + p["name"] + (f": {p['type']}" if p["type"] else "")
        if p["default"] is not None:
            text += f" = {p['default']}"
        parts.append(text)
    return f"({', '.join(parts)})"


def describe(defn: WorkflowDefinition) -> dict[str, Any]:
    """A local workflow as ``workflows list/info`` print it (``--output json`` too)."""
    return {
        "name": defn.name,
        "module": defn.func.__module__,
        "function": defn.func.__qualname__,
        "signature": signature_text(defn),
        "parameters": describe_parameters(defn),
        "max_duration": defn.max_duration,
        "tags": list(defn.tags),
        "durable": defn.durable,
        "version": defn.version,
        "doc": inspect.getdoc(defn.func),
    }

"""Direct Lambda invoke: ``{"action": "<name>", ...params}`` → the same operation as the route.

For SDK callers that invoke the API function with ``lambda:InvokeFunction`` instead of going
through API Gateway (``Client.lambda_``). Each action validates its params with the same
pydantic model the route uses for its body or query, and calls the same function in
``api_ops``; the answer is ``{"ok": true, "result": <the route's JSON body>}`` or
``{"ok": false, "status": <the route's status>, "error": {"type", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from pyworkflow.handlers import api_ops as ops
from pyworkflow.handlers.api_models import (
    CancelParams,
    CreateScheduleRequest,
    FailHookByNameParams,
    FailHookParams,
    GetEventsParams,
    HealthResponse,
    HeartbeatHookParams,
    ListRunsQuery,
    ListSchedulesQuery,
    NoParams,
    ResumeHookByNameParams,
    ResumeHookParams,
    RunRef,
    ScheduleRef,
    StartRunRequest,
    UpdateScheduleParams,
)
from pyworkflow.runtime.aws import AwsRuntime


@dataclass(frozen=True)
class Action:
    """One action: its params model and the call (runtime, params, import error) → answer."""

    params: type[BaseModel]
    call: Callable[[AwsRuntime, Any, str | None], Awaitable[BaseModel]]


async def _health() -> HealthResponse:
    return HealthResponse()


ACTIONS: dict[str, Action] = {
    "start_run": Action(StartRunRequest, lambda rt, p, ie: ops.start_run(rt, p, import_error=ie)),
    "get_run": Action(RunRef, lambda rt, p, ie: ops.get_run(rt, p.run_id)),
    "list_runs": Action(ListRunsQuery, lambda rt, p, ie: ops.list_runs(rt, p)),
    "get_events": Action(GetEventsParams, lambda rt, p, ie: ops.get_events(rt, p.run_id, p.after)),
    "get_chain": Action(RunRef, lambda rt, p, ie: ops.get_chain(rt, p.run_id)),
    "cancel_run": Action(CancelParams, lambda rt, p, ie: ops.cancel_run(rt, p.run_id, p.reason)),
    "resume_hook": Action(
        ResumeHookParams, lambda rt, p, ie: ops.resume_hook(rt, p.token, p.payload)
    ),
    "resume_hook_by_name": Action(
        ResumeHookByNameParams,
        lambda rt, p, ie: ops.resume_hook_by_name(rt, p.run_id, p.name, p.payload),
    ),
    "fail_hook": Action(
        FailHookParams,
        lambda rt, p, ie: ops.fail_hook(rt, p.token, p.error_type, p.message),
    ),
    "fail_hook_by_name": Action(
        FailHookByNameParams,
        lambda rt, p, ie: ops.fail_hook_by_name(rt, p.run_id, p.name, p.error_type, p.message),
    ),
    "heartbeat_hook": Action(
        HeartbeatHookParams, lambda rt, p, ie: ops.heartbeat_hook(rt, p.token)
    ),
    "list_workflows": Action(NoParams, lambda rt, p, ie: ops.list_workflow_infos()),
    "create_schedule": Action(
        CreateScheduleRequest, lambda rt, p, ie: ops.create_schedule(rt, p, import_error=ie)
    ),
    "get_schedule": Action(ScheduleRef, lambda rt, p, ie: ops.get_schedule(rt, p.schedule_id)),
    "list_schedules": Action(ListSchedulesQuery, lambda rt, p, ie: ops.list_schedules(rt, p)),
    "update_schedule": Action(
        UpdateScheduleParams, lambda rt, p, ie: ops.update_schedule(rt, p.schedule_id, p)
    ),
    "delete_schedule": Action(
        ScheduleRef, lambda rt, p, ie: ops.delete_schedule(rt, p.schedule_id)
    ),
    "pause_schedule": Action(ScheduleRef, lambda rt, p, ie: ops.pause_schedule(rt, p.schedule_id)),
    "resume_schedule": Action(
        ScheduleRef, lambda rt, p, ie: ops.resume_schedule(rt, p.schedule_id)
    ),
    "trigger_schedule": Action(
        ScheduleRef, lambda rt, p, ie: ops.trigger_schedule(rt, p.schedule_id)
    ),
    "health": Action(NoParams, lambda rt, p, ie: _health()),
}

#: Actions that need no runtime (and so work even when the stack's settings are missing).
NO_RUNTIME = frozenset({"health", "list_workflows"})


def action_of(event: dict[str, Any]) -> tuple[str, Action]:
    """The action an event names, or a 400 listing the actions there are."""
    name = event.get("action")
    action = ACTIONS.get(name) if isinstance(name, str) else None
    if action is None:
        raise ops.ApiError(
            400, "UnknownAction", f"Unknown action {name!r}. Actions: {', '.join(sorted(ACTIONS))}"
        )
    return str(name), action


async def invoke(
    runtime: Callable[[], AwsRuntime], event: dict[str, Any], *, import_error: str | None = None
) -> dict[str, Any]:
    """Run the event's action; returns its answer as JSON data. Raises what the operation
    raised (``ops.error_for`` turns it into the error answer)."""
    name, action = action_of(event)
    params = action.params.model_validate({k: v for k, v in event.items() if k != "action"})
    rt = None if name in NO_RUNTIME else runtime()
    result = await action.call(rt, params, import_error)  # type: ignore[arg-type]
    return result.model_dump(mode="json")

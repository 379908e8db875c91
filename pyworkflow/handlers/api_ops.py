"""What the API does: one async function per operation, shared by the HTTP routes and the direct
invoke actions, and the one mapping from exceptions to HTTP statuses and error bodies.

Each operation takes the runtime and already-validated arguments, calls the one implementation
in ``pyworkflow.service`` and returns a response model; bad input surfaces as a
``pyworkflow.exceptions`` error or an ``ApiError``, which ``error_for`` turns into a status with
a message that names the problem. Nothing here knows whether the request came from API Gateway
or from a Lambda invoke.

On AWS the API never drives a run: it writes (a run, a hook payload, a cancel flag) and sends
the run's wake-up message; the worker Lambda does the rest.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ValidationError

from pyworkflow import exceptions as exc
from pyworkflow.core.models import Schedule, ScheduleSpec
from pyworkflow.core.serde import safe_text
from pyworkflow.handlers.api_models import (
    CancelResponse,
    CreateScheduleRequest,
    ErrorBody,
    ErrorDetail,
    EventPage,
    HookResumeResponse,
    ListRunsQuery,
    ListSchedulesQuery,
    RunChain,
    RunPage,
    SchedulePage,
    StartRunRequest,
    StartRunResponse,
    TriggerResponse,
    UpdateScheduleRequest,
    WorkflowList,
    run_view,
)
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.service import hooks, runs, schedules, workflows

logger = logging.getLogger("pyworkflow")


class ApiError(Exception):
    """An error answer that is not one of pyworkflow's own exceptions."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


# --- errors -----------------------------------------------------------------------------------
#: pyworkflow's exceptions → status. The first class in the exception's MRO listed here wins, so
#: subclasses (ScheduleNotFoundError under ScheduleError) are listed before their bases.
_STATUS: dict[type[BaseException], int] = {
    exc.WorkflowNotFoundError: 404,
    exc.UnknownWorkflowError: 404,
    exc.RunAlreadyEndedError: 409,
    exc.HookNotFoundError: 404,
    exc.InvalidTokenError: 404,  # an invalid token names no hook: the same answer
    exc.HookAlreadyReceivedError: 409,
    exc.HookExpiredError: 410,
    exc.HookPayloadError: 422,
    exc.InvalidCursorError: 400,
    exc.InvalidArgumentsError: 422,
    exc.SerializationError: 422,
    exc.PayloadTooLargeError: 413,  # names the limit and its setting
    exc.ScheduleNotFoundError: 404,
    exc.ScheduleAlreadyExistsError: 409,
    exc.ScheduleError: 422,
    exc.WorkflowAlreadyRunningError: 409,
}


#: How deeply a value sent to a run (arguments, hook payloads) may nest. Deeper values are
#: refused up front: one that parsed here might still overflow the stack where it is replayed.
MAX_DEPTH = 100


def _too_deep() -> ApiError:
    return ApiError(
        400, "TooDeeplyNested", f"The request nests values too deeply (at most {MAX_DEPTH} levels)"
    )


def check_depth(value: Any) -> None:
    """``TooDeeplyNested`` (400) if ``value`` nests lists/dicts deeper than ``MAX_DEPTH``;
    iterative, so the check itself cannot overflow."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children)


def status_of(error: BaseException) -> int | None:
    """The HTTP status for an expected error; None for anything else (a 500)."""
    if isinstance(error, ApiError):
        return error.status
    if isinstance(error, ValidationError):
        return 422
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return None


def validation_message(errors: Any) -> str:
    """``loc: msg; loc: msg`` from pydantic-style error dicts (never their ``input``, which may
    be a payload)."""
    parts = []
    for error in list(errors)[:10]:
        path = [str(p) for p in error.get("loc", ()) if p != "__root__"]
        # A model parameter named like its source repeats it (("query", "query", "limit")).
        loc = ".".join(p for i, p in enumerate(path) if i == 0 or p != path[i - 1])
        parts.append(
            f"{loc}: {error.get('msg', error.get('type', 'invalid'))}"
            if loc
            else str(error.get("msg", "invalid"))
        )
    return "; ".join(parts) or "invalid request"


def error_for(error: BaseException, request_id: str | None = None) -> tuple[int, ErrorBody]:
    """The status and body answering ``error``. Unexpected errors are a 500 whose message holds
    only the request id (the traceback goes to the log, never to the caller)."""
    if isinstance(error, RecursionError):  # a body nested past what the parser can take
        error = _too_deep()
    status = status_of(error)
    if status is None:
        message = "internal error" + (f" (request id {request_id})" if request_id else "")
        return int(HTTPStatus.INTERNAL_SERVER_ERROR), ErrorBody(
            error=ErrorDetail(type="InternalError", message=message)
        )
    if isinstance(error, ApiError):
        type_, message = error.type, error.message
    elif isinstance(error, ValidationError):
        type_, message = "ValidationError", validation_message(error.errors())
    else:
        type_, message = type(error).__name__, str(error)
    return status, ErrorBody(error=ErrorDetail(type=type_, message=message))


def too_large(size: int, limit: int, env: str) -> ApiError:
    return ApiError(
        413, "RequestTooLarge", f"Request body is {size} bytes; the limit is {limit} bytes ({env})"
    )


# --- workflows --------------------------------------------------------------------------------
#: Names the caller's kwargs must not use: they are keyword parameters of the functions the
#: kwargs are forwarded to, so they would collide instead of reaching the workflow.
_START_RESERVED = frozenset({"workflow_func", "idempotency_key"})
_SCHEDULE_RESERVED = frozenset(
    {"workflow_name", "spec", "overlap_policy", "schedule_id", "storage"}
)


def _check_reserved(kwargs: dict[str, Any], reserved: frozenset[str], name: str) -> None:
    clash = sorted(reserved & kwargs.keys())
    if clash:
        raise exc.InvalidArgumentsError(
            f"Workflow {name!r} cannot take {', '.join(clash)} as keyword argument(s) "
            "through the API; pass them positionally in args"
        )


async def list_workflow_infos() -> WorkflowList:
    return WorkflowList(items=workflows.list_workflow_infos())


# --- runs -------------------------------------------------------------------------------------
async def start_run(
    rt: AwsRuntime, req: StartRunRequest, *, import_error: str | None = None
) -> StartRunResponse:
    """Check the arguments against the workflow, then one write (run + started event) and one
    wake-up message. Bad arguments fail before anything is written."""
    defn = workflows.resolve_workflow(req.workflow, import_error=import_error)
    _check_reserved(req.kwargs, _START_RESERVED, defn.name)
    check_depth([req.args, req.kwargs])
    started = await runs.start(rt, defn, req.args, req.kwargs, idempotency_key=req.idempotency_key)
    return StartRunResponse(run_id=started.run_id, status=started.run.status)


async def get_run(rt: AwsRuntime, run_id: str) -> BaseModel:
    return run_view(await runs.get_run(rt.storage, run_id))


async def list_runs(rt: AwsRuntime, query: ListRunsQuery) -> RunPage:
    page = await runs.list_runs(
        rt.storage,
        status=query.status,
        workflow=query.workflow,
        limit=query.limit,
        cursor=query.cursor,
    )
    return RunPage(items=[run_view(r) for r in page.items], next_cursor=page.next_cursor)


async def get_events(rt: AwsRuntime, run_id: str, after: int = 0) -> EventPage:
    return EventPage(items=await runs.events(rt.storage, run_id, after=after))


async def get_chain(rt: AwsRuntime, run_id: str) -> RunChain:
    return RunChain(items=[run_view(r) for r in await runs.chain(rt.storage, run_id)])


async def cancel_run(rt: AwsRuntime, run_id: str, reason: str | None = None) -> CancelResponse:
    """Flag the run and wake it; its worker delivers ``CancellationError``. A run that already
    ended is a 409 naming its status."""
    if await runs.cancel(rt, run_id, reason):
        return CancelResponse(run_id=run_id, cancelled=True)
    run = await rt.storage.get_run(run_id)
    ended = run.status.value if run is not None else "ended"
    raise exc.RunAlreadyEndedError(
        f"Run {run_id} has already ended ({ended}); there is nothing to cancel"
    )


# --- hooks ------------------------------------------------------------------------------------
def _resumed(result: hooks.ResumeResult) -> HookResumeResponse:
    return HookResumeResponse(run_id=result.run_id, hook_id=result.hook_id, status=result.status)


def _check_token_text(token: str) -> None:
    if isinstance(token, str) and safe_text(token) != token:
        # Text UTF-8 cannot encode is no token (tokens are ASCII): the 404 of any invalid one.
        raise exc.InvalidTokenError(
            "", detail="Invalid hook token: pass the token given to on_created"
        )


async def resume_hook(rt: AwsRuntime, token: str, payload: Any) -> HookResumeResponse:
    """The public webhook: the token is the credential. Errors never repeat the token."""
    _check_token_text(token)
    check_depth(payload)
    return _resumed(await hooks.resume_hook(rt, token, payload))


async def fail_hook(
    rt: AwsRuntime, token: str, error_type: str, message: str
) -> HookResumeResponse:
    """The run's ``await hook(...)`` raises ``HookFailedError(error_type, message)``."""
    _check_token_text(token)
    return _resumed(await hooks.fail_hook(rt, token, error_type, message))


async def fail_hook_by_name(
    rt: AwsRuntime, run_id: str, name: str, error_type: str, message: str
) -> HookResumeResponse:
    return _resumed(await hooks.fail_hook_by_name(rt, run_id, name, error_type, message))


async def heartbeat_hook(rt: AwsRuntime, token: str) -> HookResumeResponse:
    """A hook with a ``heartbeat_timeout`` lives on for that long again."""
    _check_token_text(token)
    return _resumed(await hooks.heartbeat_hook(rt, token))


async def pending_hooks(rt: AwsRuntime, run_id: str) -> list[str]:
    """Names of the hooks ``run_id`` waits on (what ``resume_hook_by_name`` can resume)."""
    return await hooks.pending_hooks(rt.storage, run_id)


async def resume_hook_by_name(
    rt: AwsRuntime, run_id: str, name: str, payload: Any
) -> HookResumeResponse:
    """For operators, who never see tokens: the newest hook ``name`` of ``run_id``."""
    check_depth(payload)
    return _resumed(await hooks.resume_hook_by_name(rt, run_id, name, payload))


# --- schedules --------------------------------------------------------------------------------
async def create_schedule(
    rt: AwsRuntime, req: CreateScheduleRequest, *, import_error: str | None = None
) -> Schedule:
    defn = workflows.resolve_workflow(req.workflow, import_error=import_error)
    _check_reserved(req.kwargs, _SCHEDULE_RESERVED, defn.name)
    check_depth([req.args, req.kwargs])
    return await schedules.create(
        rt,
        defn.name,
        ScheduleSpec.model_validate(req.spec.model_dump()),
        req.args,
        req.kwargs,
        overlap_policy=req.overlap_policy,
        schedule_id=req.schedule_id,
    )


async def get_schedule(rt: AwsRuntime, schedule_id: str) -> Schedule:
    return await schedules.get(rt.storage, schedule_id)


async def list_schedules(rt: AwsRuntime, query: ListSchedulesQuery) -> SchedulePage:
    return SchedulePage(
        items=await schedules.list_schedules(
            rt.storage,
            workflow=query.workflow,
            status=query.status,
            limit=query.limit,
            offset=query.offset,
        )
    )


async def update_schedule(rt: AwsRuntime, schedule_id: str, req: UpdateScheduleRequest) -> Schedule:
    spec = ScheduleSpec.model_validate(req.spec.model_dump()) if req.spec else None
    return await schedules.update(rt, schedule_id, spec=spec, overlap_policy=req.overlap_policy)


async def delete_schedule(rt: AwsRuntime, schedule_id: str) -> Schedule:
    """Soft delete: the record stays with status ``deleted``, and is returned."""
    return await schedules.delete(rt, schedule_id)


async def pause_schedule(rt: AwsRuntime, schedule_id: str) -> Schedule:
    return await schedules.pause(rt, schedule_id)


async def resume_schedule(rt: AwsRuntime, schedule_id: str) -> Schedule:
    return await schedules.resume(rt, schedule_id)


async def trigger_schedule(rt: AwsRuntime, schedule_id: str) -> TriggerResponse:
    """Start a run of the schedule now (it counts towards the overlap policy); the run is
    created unleased and started by a wake-up message."""
    return TriggerResponse(schedule_id=schedule_id, run_id=await schedules.trigger(rt, schedule_id))

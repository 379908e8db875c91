"""What the API does: one async function per operation, shared by the HTTP routes and the direct
invoke actions, and the one mapping from exceptions to HTTP statuses and error bodies.

Each operation takes the runtime and already-validated arguments and returns a response model;
bad input surfaces as a ``pyworkflow.exceptions`` error or an ``ApiError``, which ``error_for``
turns into a status with a message that names the problem. Nothing here knows whether the
request came from API Gateway or from a Lambda invoke.

On AWS the API never drives a run: it writes (a run, a hook payload, a cancel flag) and sends
the run's wake-up message; the worker Lambda does the rest.
"""

from __future__ import annotations

import inspect
import logging
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ValidationError

from handlers.api_models import (
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
    WorkflowInfo,
    WorkflowList,
    run_view,
)
from pyworkflow import exceptions as exc
from pyworkflow.core.models import RunStatus, Schedule, ScheduleSpec
from pyworkflow.core.registry import WorkflowDefinition, get_workflow, list_workflows
from pyworkflow.core.serde import safe_text
from pyworkflow.runtime import schedules as sched
from pyworkflow.runtime.aws import AwsRuntime

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
    exc.HookNotFoundError: 404,
    exc.InvalidTokenError: 404,          # an invalid token names no hook: the same answer
    exc.HookAlreadyReceivedError: 409,
    exc.HookExpiredError: 410,
    exc.HookPayloadError: 422,
    exc.InvalidArgumentsError: 422,
    exc.SerializationError: 422,
    exc.PayloadTooLargeError: 413,       # names the limit and its setting
    exc.ScheduleNotFoundError: 404,
    exc.ScheduleError: 422,
    exc.WorkflowAlreadyRunningError: 409,
}


#: How deeply a value sent to a run (arguments, hook payloads) may nest. Deeper values are
#: refused up front: one that parsed here might still overflow the stack where it is replayed.
MAX_DEPTH = 100


def _too_deep() -> ApiError:
    return ApiError(400, "TooDeeplyNested",
                    f"The request nests values too deeply (at most {MAX_DEPTH} levels)")


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
        parts.append(f"{loc}: {error.get('msg', error.get('type', 'invalid'))}" if loc
                     else str(error.get("msg", "invalid")))
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
            error=ErrorDetail(type="InternalError", message=message))
    if isinstance(error, ApiError):
        type_, message = error.type, error.message
    elif isinstance(error, ValidationError):
        type_, message = "ValidationError", validation_message(error.errors())
    else:
        type_, message = type(error).__name__, str(error)
    return status, ErrorBody(error=ErrorDetail(type=type_, message=message))


def too_large(size: int, limit: int, env: str) -> ApiError:
    return ApiError(413, "RequestTooLarge",
                    f"Request body is {size} bytes; the limit is {limit} bytes ({env})")


# --- workflows --------------------------------------------------------------------------------
#: Names the caller's kwargs must not use: they are keyword parameters of the functions the
#: kwargs are forwarded to, so they would collide instead of reaching the workflow.
_START_RESERVED = frozenset({"workflow_func", "idempotency_key"})
_SCHEDULE_RESERVED = frozenset({"workflow_name", "spec", "overlap_policy", "schedule_id",
                                "storage"})


def require_workflow(name: str, import_error: str | None = None) -> WorkflowDefinition:
    """The registered workflow ``name``, or a 404 listing the ones that are."""
    defn = get_workflow(name)
    if defn is not None:
        return defn
    names = sorted(list_workflows())
    message = (f"Workflow {name!r} is not registered. Available: "
               f"{', '.join(names) if names else '(none)'}")
    if import_error:
        message += f". The workflow module failed to import: {import_error}"
    raise ApiError(404, "UnknownWorkflowError", message)


def _check_reserved(kwargs: dict[str, Any], reserved: frozenset[str], defn: WorkflowDefinition
                    ) -> None:
    clash = sorted(reserved & kwargs.keys())
    if clash:
        raise exc.InvalidArgumentsError(
            f"Workflow {defn.name!r} cannot take {', '.join(clash)} as keyword argument(s) "
            "through the API; pass them positionally in args")


def _signature(defn: WorkflowDefinition) -> str | None:
    """The signature with resolved annotations (``(n: int) -> str``, not ``(n: 'int')``)."""
    sig = defn.signature
    if sig is None:
        return None
    params = [p.replace(annotation=defn.hints.get(name, p.annotation))
              for name, p in sig.parameters.items()]
    return str(sig.replace(parameters=params,
                           return_annotation=defn.hints.get("return", sig.return_annotation)))


def workflow_info(defn: WorkflowDefinition) -> WorkflowInfo:
    doc = inspect.getdoc(defn.func)
    return WorkflowInfo(
        name=defn.name, max_duration=defn.max_duration, durable=defn.durable,
        tags=list(defn.tags), version=defn.version, signature=_signature(defn),
        description=doc.strip().splitlines()[0] if doc and doc.strip() else None,
    )


async def list_workflow_infos() -> WorkflowList:
    return WorkflowList(items=[workflow_info(d) for _, d in sorted(list_workflows().items())])


# --- runs -------------------------------------------------------------------------------------
async def start_run(rt: AwsRuntime, req: StartRunRequest, *, import_error: str | None = None
                    ) -> StartRunResponse:
    """Check the arguments against the workflow, then one write (run + started event) and one
    wake-up message. Bad arguments fail before anything is written."""
    defn = require_workflow(req.workflow, import_error)
    _check_reserved(req.kwargs, _START_RESERVED, defn)
    check_depth([req.args, req.kwargs])
    run_id = await rt.start(defn.wrapper, *req.args, idempotency_key=req.idempotency_key,
                            **req.kwargs)
    status = RunStatus.PENDING
    if req.idempotency_key:  # may be an earlier run's id: report where that run is now
        run = await rt.storage.get_run(run_id)
        if run is not None:
            status = run.status
    return StartRunResponse(run_id=run_id, status=status)


async def get_run(rt: AwsRuntime, run_id: str) -> BaseModel:
    run = await rt.storage.get_run(run_id)
    if run is None:
        raise exc.WorkflowNotFoundError(run_id)
    return run_view(run)


async def list_runs(rt: AwsRuntime, query: ListRunsQuery) -> RunPage:
    try:
        page = await rt.storage.list_runs(status=query.status, workflow_name=query.workflow,
                                          limit=query.limit, cursor=query.cursor)
    except ValueError as error:  # a cursor we did not hand out
        raise ApiError(400, "InvalidCursor", str(error)) from None
    return RunPage(items=[run_view(r) for r in page.items], next_cursor=page.next_cursor)


async def get_events(rt: AwsRuntime, run_id: str, after: int = 0) -> EventPage:
    events = await rt.storage.get_events(run_id, after_sequence=after)
    # Every run has its started event, so an empty answer may mean "no such run": check.
    if not events and await rt.storage.get_run(run_id) is None:
        raise exc.WorkflowNotFoundError(run_id)
    return EventPage(items=events)


async def get_chain(rt: AwsRuntime, run_id: str) -> RunChain:
    chain = await rt.storage.get_workflow_chain(run_id)
    return RunChain(items=[run_view(r) for r in chain])


async def cancel_run(rt: AwsRuntime, run_id: str, reason: str | None = None) -> CancelResponse:
    """Flag the run and wake it; its worker delivers ``CancellationError``. A run that already
    ended is a 409 naming its status."""
    if await rt.cancel(run_id, reason):
        return CancelResponse(run_id=run_id, cancelled=True)
    run = await rt.storage.get_run(run_id)
    ended = run.status.value if run is not None else "ended"
    raise ApiError(409, "RunAlreadyEndedError",
                   f"Run {run_id} has already ended ({ended}); there is nothing to cancel")


# --- hooks ------------------------------------------------------------------------------------
async def resume_hook(rt: AwsRuntime, token: str, payload: Any) -> HookResumeResponse:
    """The public webhook: the token is the credential. Errors never repeat the token."""
    if isinstance(token, str) and safe_text(token) != token:
        # Text UTF-8 cannot encode is no token (tokens are ASCII), and the runtime, which
        # hashes the token, would fail on it: the 404 of any invalid token.
        raise exc.InvalidTokenError("Invalid hook token: pass the token given to on_created")
    check_depth(payload)
    result = await rt.resume_hook(token, payload)
    return HookResumeResponse(run_id=result.run_id, hook_id=result.hook_id,
                              status=result.status)


async def resume_hook_by_name(rt: AwsRuntime, run_id: str, name: str, payload: Any
                              ) -> HookResumeResponse:
    """For operators, who never see tokens: the newest hook ``name`` of ``run_id``. The same
    checks as by token (received → 409, expired or run ended → 410, schema → 422)."""
    check_depth(payload)
    try:
        result = await rt.resume_hook_by_name(run_id, name, payload)
    except exc.HookNotFoundError:
        if await rt.storage.get_run(run_id) is None:  # say which of the two is missing
            raise exc.WorkflowNotFoundError(run_id) from None
        raise
    return HookResumeResponse(run_id=result.run_id, hook_id=result.hook_id,
                              status=result.status)


# --- schedules --------------------------------------------------------------------------------
# Through ``AwsRuntime.schedules``: the stored records plus the recurring EventBridge schedules
# that tick them (created, disabled, enabled, deleted along with the record).
async def create_schedule(rt: AwsRuntime, req: CreateScheduleRequest, *,
                          import_error: str | None = None) -> Schedule:
    defn = require_workflow(req.workflow, import_error)
    _check_reserved(req.kwargs, _SCHEDULE_RESERVED, defn)
    check_depth([req.args, req.kwargs])
    try:
        return await rt.schedules.create(
            defn.name, ScheduleSpec.model_validate(req.spec.model_dump()), *req.args,
            overlap_policy=req.overlap_policy, schedule_id=req.schedule_id, **req.kwargs)
    except exc.ScheduleError:
        if req.schedule_id and await rt.storage.get_schedule(req.schedule_id) is not None:
            raise ApiError(409, "ScheduleError",
                           f"Schedule {req.schedule_id!r} already exists") from None
        raise


async def get_schedule(rt: AwsRuntime, schedule_id: str) -> Schedule:
    schedule = await sched.get_schedule(schedule_id, storage=rt.storage)
    if schedule is None:
        raise exc.ScheduleNotFoundError(schedule_id)
    return schedule


async def list_schedules(rt: AwsRuntime, query: ListSchedulesQuery) -> SchedulePage:
    items = await sched.list_schedules(workflow_name=query.workflow, status=query.status,
                                       limit=query.limit, offset=query.offset,
                                       storage=rt.storage)
    return SchedulePage(items=items)


async def update_schedule(rt: AwsRuntime, schedule_id: str, req: UpdateScheduleRequest
                          ) -> Schedule:
    spec = ScheduleSpec.model_validate(req.spec.model_dump()) if req.spec else None
    return await rt.schedules.update(schedule_id, spec=spec, overlap_policy=req.overlap_policy)


async def delete_schedule(rt: AwsRuntime, schedule_id: str) -> Schedule:
    """Soft delete: the record stays with status ``deleted``, and is returned."""
    return await rt.schedules.delete(schedule_id)


async def pause_schedule(rt: AwsRuntime, schedule_id: str) -> Schedule:
    return await rt.schedules.pause(schedule_id)


async def resume_schedule(rt: AwsRuntime, schedule_id: str) -> Schedule:
    return await rt.schedules.resume(schedule_id)


async def trigger_schedule(rt: AwsRuntime, schedule_id: str) -> TriggerResponse:
    """Start a run of the schedule now (it counts towards the overlap policy); the run is
    created unleased and started by a wake-up message."""
    run_id = await rt.schedules.trigger(schedule_id)
    return TriggerResponse(schedule_id=schedule_id, run_id=run_id)

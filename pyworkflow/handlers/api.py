"""The API Lambda: API Gateway HTTP API (payload format 2.0) and direct invoke, one function.

``handler(event, context)`` serves two kinds of event:

- an HTTP API request → Powertools' ``APIGatewayHttpResolver`` with pydantic validation; the
  OpenAPI document is at ``GET /openapi.json``;
- ``{"action": "<name>", ...params}`` (a direct ``lambda:InvokeFunction`` by the SDK) → the same
  operation (see ``pyworkflow/handlers/api_invoke.py``), answered ``{"ok": true, "result": ...}`` or
  ``{"ok": false, "status": ..., "error": {...}}``.

Thin on purpose: what each request does is in ``pyworkflow/handlers/api_ops.py``, shared by both
paths; the wire shapes are in ``pyworkflow/handlers/api_models.py``. The API never drives a run: it
writes and sends the run's wake-up message, and the worker Lambda
(``pyworkflow/handlers/worker.py``) does the rest.

Errors are ``{"error": {"type", "message"}}`` with 400 (malformed JSON, bad cursor), 404
(unknown run, workflow, schedule or hook), 409 (hook already received, run already ended), 410
(hook expired), 413 (body over ``PYWORKFLOW_MAX_REQUEST_BYTES``, default 256 KiB) or 422 (does
not fit the schema, the workflow's signature or the hook's payload schema, or holds text UTF-8
cannot encode). Error messages and log lines quoting the request are made encodable
(``safe_text``): the python3.12 Lambda runtime sends answers as UTF-8 JSON, unescaped. A hook
token is a credential: the event is never logged and a request is logged by its route, never
its path.

Environment: as ``pyworkflow/handlers/worker.py`` (``PYWORKFLOW_MODULE``,
``PYWORKFLOW_STORAGE=dynamodb``, ``PYWORKFLOW_TABLE``, ``PYWORKFLOW_QUEUE_URL``/``_ARN``,
``PYWORKFLOW_SCHEDULER_GROUP``/``_ROLE_ARN``), plus ``PYWORKFLOW_MAX_REQUEST_BYTES`` and
``POWERTOOLS_SERVICE_NAME``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from pyworkflow import __version__
from pyworkflow.config import ENV_MAX_REQUEST_BYTES, import_modules
from pyworkflow.core.models import Schedule
from pyworkflow.core.serde import safe_text
from pyworkflow.handlers import api_invoke
from pyworkflow.handlers import api_ops as ops
from pyworkflow.handlers.api_models import (
    CancelRequest,
    CancelResponse,
    CreateScheduleRequest,
    ErrorBody,
    EventPage,
    EventsQuery,
    HealthResponse,
    HookFailRequest,
    HookResumeResponse,
    ListRunsQuery,
    ListSchedulesQuery,
    RunChain,
    RunPage,
    RunView,
    SchedulePage,
    StartRunRequest,
    StartRunResponse,
    TriggerResponse,
    UpdateScheduleRequest,
    WorkflowList,
    refuse_unencodable_text,
)
from pyworkflow.handlers.ui import bind as bind_ui
from pyworkflow.handlers.ui import router as ui_router
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.settings import get_settings

T = TypeVar("T")

HOOK_PREFIX = "/hooks/"

logger = Logger(service=get_settings().service_name or "pyworkflow-api")
# Powertools' router logs a route's arguments at DEBUG (POWERTOOLS_DEBUG): for
# POST /hooks/{token} that is the token. Its debug lines stay off here whatever the settings.
logging.getLogger("aws_lambda_powertools.event_handler").setLevel(logging.INFO)
# debug=False pins Powertools' debug mode off even if POWERTOOLS_DEV is set: it prints events,
# and an event of POST /hooks/{token} carries the token.
app = APIGatewayHttpResolver(enable_validation=True, debug=False)
app.configure_openapi(
    title="pyworkflow",
    version=__version__,
    description="Start, inspect and control durable workflow runs. Every route but "
    "POST /hooks/{token} (the token is the credential) and GET /health is "
    "authenticated by the HTTP API (IAM by default).",
)

# One loop per container, kept across invocations (see pyworkflow/handlers/worker.py: aioboto3
# clients belong to the loop that opened them).
_loop = asyncio.new_event_loop()
_runtime: AwsRuntime | None = None
_modules_imported = False
_import_error: str | None = None


def _import_workflows() -> None:
    """Import the user's workflows once per cold start. A failure is logged and named in the
    404 of an unknown workflow, instead of failing every request (health, runs of the past)."""
    global _modules_imported, _import_error
    if _modules_imported:
        return
    _modules_imported = True
    spec = get_settings().module or ""
    if spec:
        try:
            import_modules(spec)
        except Exception as error:  # noqa: BLE001 - reported by the requests it affects
            _import_error = f"{type(error).__name__}: {error}"
            logger.exception("could not import the workflow module(s) %s", spec)


def get_runtime() -> AwsRuntime:
    """The container's runtime, built from the environment on first use."""
    global _runtime
    if _runtime is None:
        _runtime = AwsRuntime.from_env()
    return _runtime


def reset(runtime: AwsRuntime | None = None) -> None:
    """Drop the container's runtime (closing its clients) and optionally install another: for
    tests, which play many "containers" in one process. Call it outside any running loop."""
    global _runtime, _modules_imported, _import_error
    old, _runtime = _runtime, runtime
    _modules_imported, _import_error = False, None
    if old is not None and old is not runtime:
        _loop.run_until_complete(old.close())


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return _loop.run_until_complete(coro)


def max_request_bytes() -> int:
    return get_settings().max_request_bytes


# --- OpenAPI helpers ---------------------------------------------------------------------------
_ERROR_DESCRIPTIONS = {
    400: "Malformed request (body not JSON or nested too deeply, bad cursor)",
    404: "Not found (run, workflow, schedule or hook)",
    409: "Conflict with the current state",
    410: "Gone (the hook expired, or its run ended)",
    413: f"Request body larger than {ENV_MAX_REQUEST_BYTES}",
    422: "Does not fit the schema or the workflow's signature, or holds text UTF-8 cannot "
    "encode (a lone surrogate)",
}


def _responses(status: int, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """A route's documented answers: its success (schema from its return annotation) and the
    error answers it can give, all ``ErrorBody``."""
    out: dict[int, OpenAPIResponse] = {status: {"description": description}}
    for code in errors:
        out[code] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return out


# What a hook route can answer besides its 202: the hook or run unknown (404), ended (409/410),
# a payload too large (413) or refused by the hook's schema (422).
_HOOK_ERRORS = (400, 404, 409, 410, 413, 422)


def _hook_route(
    path: str, summary: str, delivered: str, errors: tuple[int, ...] = _HOOK_ERRORS
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The POST routes that act on a hook: 202 with ``HookResumeResponse``, tagged "hooks"."""
    return app.post(
        path,
        status_code=202,
        tags=["hooks"],
        summary=summary,
        responses=_responses(202, delivered, *errors),
    )


def _json_response(status: int, body: Any) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body)
    )


def _seg(value: str) -> str:
    """A path parameter as meant: API Gateway's rawPath keeps the percent-encoding (a client
    quotes ids and hook names), and the router matches on it."""
    return unquote(value)


RunId = Annotated[str, Path(min_length=1, max_length=256)]
ScheduleId = Annotated[str, Path(min_length=1, max_length=256)]


# --- runs --------------------------------------------------------------------------------------
@app.post(
    "/runs",
    status_code=202,
    tags=["runs"],
    summary="Start a run",
    responses=_responses(202, "Run created", 400, 404, 413, 422),
)
def start_run(body: Annotated[StartRunRequest, Body()]) -> StartRunResponse:
    return _run(ops.start_run(get_runtime(), body, import_error=_import_error))


@app.get(
    "/runs",
    tags=["runs"],
    summary="List runs, newest first",
    responses=_responses(200, "A page of runs", 400, 422),
)
def list_runs(query: Annotated[ListRunsQuery, Query()]) -> RunPage:
    return _run(ops.list_runs(get_runtime(), query))


@app.get(
    "/runs/<run_id>", tags=["runs"], summary="Get a run", responses=_responses(200, "The run", 404)
)
def get_run(run_id: RunId) -> RunView:  # type: ignore[valid-type]
    return _run(ops.get_run(get_runtime(), _seg(run_id)))


@app.get(
    "/runs/<run_id>/events",
    tags=["runs"],
    summary="A run's history",
    responses=_responses(200, "Events in order", 404, 422),
)
def get_events(run_id: RunId, query: Annotated[EventsQuery, Query()]) -> EventPage:
    return _run(ops.get_events(get_runtime(), _seg(run_id), query.after))


@app.get(
    "/runs/<run_id>/chain",
    tags=["runs"],
    summary="A run's continue-as-new chain",
    responses=_responses(200, "Runs of the chain, oldest first", 404),
)
def get_chain(run_id: RunId) -> RunChain:
    return _run(ops.get_chain(get_runtime(), _seg(run_id)))


@app.post(
    "/runs/<run_id>/cancel",
    status_code=202,
    tags=["runs"],
    summary="Cancel a run",
    responses=_responses(202, "Cancellation requested", 400, 404, 409, 422),
)
def cancel_run(
    run_id: RunId, body: Annotated[CancelRequest | None, Body()] = None
) -> CancelResponse:
    return _run(ops.cancel_run(get_runtime(), _seg(run_id), body.reason if body else None))


@_hook_route(
    "/runs/<run_id>/hooks/<name>",
    "Resume a run's hook by name",
    "Payload delivered",
)
def resume_hook_by_name(
    run_id: RunId,
    name: Annotated[str, Path(min_length=1)],
    payload: Annotated[Any, Body(description="The payload: any JSON value")] = None,
) -> HookResumeResponse:
    # The same body as POST /hooks/{token}: the payload itself (one shape for both routes)
    refuse_unencodable_text(payload, "payload")
    return _run(ops.resume_hook_by_name(get_runtime(), _seg(run_id), _seg(name), payload))


@_hook_route(
    "/runs/<run_id>/hooks/<name>/fail",
    "Fail a run's hook by name",
    "Failure delivered",
)
def fail_hook_by_name(
    run_id: RunId,
    name: Annotated[str, Path(min_length=1)],
    body: Annotated[HookFailRequest, Body()],
) -> HookResumeResponse:
    return _run(
        ops.fail_hook_by_name(
            get_runtime(), _seg(run_id), _seg(name), body.error_type, body.message
        )
    )


# Failing and heartbeating take the token in the path too, but are signed API calls (they match
# /{proxy+} in template.yaml, not the public POST /hooks/{token}), as AWS's
# SendDurableExecutionCallbackFailure/Heartbeat are IAM-authorized.
@_hook_route(
    "/hooks/<token>/fail",
    "Fail a hook: the run's await hook(...) raises HookFailedError",
    "Failure delivered",
)
def fail_hook(token: str, body: Annotated[HookFailRequest, Body()]) -> HookResumeResponse:
    return _run(ops.fail_hook(get_runtime(), _seg(token), body.error_type, body.message))


@_hook_route(
    "/hooks/<token>/heartbeat",
    "Keep a hook with a heartbeat_timeout alive",
    "Heartbeat taken",
    errors=(400, 404, 409, 410),
)
def heartbeat_hook(token: str) -> HookResumeResponse:
    return _run(ops.heartbeat_hook(get_runtime(), _seg(token)))


# --- the public webhook ------------------------------------------------------------------------
@_hook_route(
    "/hooks/<token>",
    "Deliver a payload to a hook (the token is the credential)",
    "Payload delivered",
)
def resume_hook(
    token: str,
    payload: Annotated[Any, Body(description="The payload: any JSON value")] = None,
) -> HookResumeResponse:
    # The body is the payload itself, not a request model: checked here as the models check
    # theirs, so that a bad text is named payload['note'] on both hook routes.
    refuse_unencodable_text(payload, "payload")
    return _run(ops.resume_hook(get_runtime(), _seg(token), payload))


# --- workflows and schedules -------------------------------------------------------------------
@app.get(
    "/workflows",
    tags=["workflows"],
    summary="Registered workflows",
    responses=_responses(200, "The workflows this deployment runs"),
)
def list_workflows() -> WorkflowList:
    return _run(ops.list_workflow_infos())


@app.post(
    "/schedules",
    status_code=201,
    tags=["schedules"],
    summary="Create a schedule",
    responses=_responses(201, "Schedule created", 400, 404, 409, 413, 422),
)
def create_schedule(body: Annotated[CreateScheduleRequest, Body()]) -> Schedule:
    return _run(ops.create_schedule(get_runtime(), body, import_error=_import_error))


@app.get(
    "/schedules",
    tags=["schedules"],
    summary="List schedules, newest first",
    responses=_responses(200, "Schedules", 422),
)
def list_schedules(query: Annotated[ListSchedulesQuery, Query()]) -> SchedulePage:
    return _run(ops.list_schedules(get_runtime(), query))


@app.get(
    "/schedules/<schedule_id>",
    tags=["schedules"],
    summary="Get a schedule",
    responses=_responses(200, "The schedule (deleted ones too)", 404),
)
def get_schedule(schedule_id: ScheduleId) -> Schedule:
    return _run(ops.get_schedule(get_runtime(), _seg(schedule_id)))


@app.patch(
    "/schedules/<schedule_id>",
    tags=["schedules"],
    summary="Change a schedule",
    responses=_responses(200, "The schedule as changed", 400, 404, 413, 422),
)
def update_schedule(
    schedule_id: ScheduleId, body: Annotated[UpdateScheduleRequest, Body()]
) -> Schedule:
    return _run(ops.update_schedule(get_runtime(), _seg(schedule_id), body))


@app.delete(
    "/schedules/<schedule_id>",
    tags=["schedules"],
    summary="Delete a schedule",
    responses=_responses(200, "The schedule, now deleted", 404),
)
def delete_schedule(schedule_id: ScheduleId) -> Schedule:
    return _run(ops.delete_schedule(get_runtime(), _seg(schedule_id)))


@app.post(
    "/schedules/<schedule_id>/pause",
    tags=["schedules"],
    summary="Pause a schedule",
    responses=_responses(200, "The schedule", 404, 422),
)
def pause_schedule(schedule_id: ScheduleId) -> Schedule:
    return _run(ops.pause_schedule(get_runtime(), _seg(schedule_id)))


@app.post(
    "/schedules/<schedule_id>/resume",
    tags=["schedules"],
    summary="Resume a schedule",
    responses=_responses(200, "The schedule", 404, 422),
)
def resume_schedule(schedule_id: ScheduleId) -> Schedule:
    return _run(ops.resume_schedule(get_runtime(), _seg(schedule_id)))


@app.post(
    "/schedules/<schedule_id>/trigger",
    status_code=202,
    tags=["schedules"],
    summary="Start a run of a schedule now",
    responses=_responses(202, "Run created", 404, 422),
)
def trigger_schedule(schedule_id: ScheduleId) -> TriggerResponse:
    return _run(ops.trigger_schedule(get_runtime(), _seg(schedule_id)))


# --- service -----------------------------------------------------------------------------------
@app.get("/health", tags=["service"], summary="Liveness")
def health() -> HealthResponse:
    return HealthResponse()


_openapi: dict[str, Any] | None = None


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> dict[str, Any]:
    global _openapi
    if _openapi is None:  # generating it walks every model: once per container
        _openapi = json.loads(app.get_openapi_json_schema())
    return _openapi


app.include_router(ui_router)  # the run viewer: GET /ui, GET /ui/runs/{run_id}
bind_ui(lambda make: _run(make(get_runtime())))


# --- errors ------------------------------------------------------------------------------------
def _error_response(status: int, body: ErrorBody) -> Response:
    return _json_response(status, body.model_dump(mode="json"))


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    errors = list(error.errors())
    if errors and all(str(e.get("loc", ("",))[0]) == "response" for e in errors):
        return _unexpected(error)  # our answer did not fit its own model: a bug, not the input
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        detail = (bad_json.get("ctx") or {}).get("error", "invalid JSON")
        status, body = ops.error_for(
            ops.ApiError(400, "MalformedJSON", f"Request body is not valid JSON: {detail}")
        )
    else:
        status, body = (
            422,
            ErrorBody.model_validate(
                {"error": {"type": "ValidationError", "message": ops.validation_message(errors)}}
            ),
        )
    _log_rejected(status, body)
    return _error_response(status, body)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_type(error: RequestUnsupportedContentType) -> Response:
    status, body = (
        int(HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
        ErrorBody.model_validate(
            {
                "error": {
                    "type": "UnsupportedMediaType",
                    "message": "Send the body as application/json",
                }
            }
        ),
    )
    _log_rejected(status, body)
    return _error_response(status, body)


@app.not_found
def _no_route(error: NotFoundError) -> Response:
    event = app.current_event
    status, body = ops.error_for(
        ops.ApiError(404, "NotFound", f"No route {event.http_method} {_safe_path(event.path)}")
    )
    _log_rejected(status, body)
    return _error_response(status, body)


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    status, body = ops.error_for(error, _request_id())
    if status >= 500:
        logger.exception("request failed")
    else:
        _log_rejected(status, body)
    return _error_response(status, body)


def _log_rejected(status: int, body: ErrorBody) -> None:
    # The type only: a message may quote the payload (no payloads at INFO).
    logger.info("request rejected", extra={"status": status, "error_type": body.error.type})


def _request_id() -> str | None:
    try:
        return str(app.current_event.request_context.request_id)
    except Exception:  # noqa: BLE001 - outside a request: there is none
        return None


def _safe_path(path: str) -> str:
    """A path fit for logs and error messages: a hook's token is replaced by its name."""
    if not path.startswith(HOOK_PREFIX):
        return path
    _, slash, action = path[len(HOOK_PREFIX) :].partition("/")  # /fail, /heartbeat
    return HOOK_PREFIX + "{token}" + slash + action


def _route_label(event: dict[str, Any]) -> str:
    """``POST /hooks/{token}``-style: API Gateway's route key when it has one, else the method
    and the path with any token hidden."""
    route_key = str(event.get("routeKey") or "")
    if route_key and route_key != "$default":
        return route_key
    http = (event.get("requestContext") or {}).get("http") or {}
    # safe_text: Powertools writes log lines unescaped (ensure_ascii=False), and a path holding
    # a lone surrogate would make this one unwritable.
    return safe_text(f"{http.get('method', '?')} {_safe_path(str(event.get('rawPath') or ''))}")


# --- entry point -------------------------------------------------------------------------------
def _body_bytes(event: dict[str, Any]) -> bytes:
    """The request body as received (base64 decoded). ``MalformedBody`` (400) if it is not
    valid base64 or not UTF-8 text, which Powertools would otherwise fail on with a 500."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        body = str(body)
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8", "surrogatepass")
    try:
        raw = base64.b64decode(body, validate=True)
        raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise ops.ApiError(
            400, "MalformedBody", "Request body is not valid base64-encoded UTF-8 text"
        ) from None
    return raw


_LONG_NUMBER = re.compile(rb"\d{4300}")


def _check_numbers(raw: bytes) -> None:
    """A number literal longer than Python parses (4300 digits) fails Powertools' JSON parsing
    with a plain ValueError, which would be a 500: a 400 instead. Parsed here only when the
    body holds such a run of digits (rare; it may be inside a string, which is fine)."""
    if not _LONG_NUMBER.search(raw):
        return
    try:
        json.loads(raw)
    except json.JSONDecodeError:
        return  # malformed anyway: the usual 400 says where
    except ValueError as exc:
        raise ops.ApiError(400, "MalformedJSON", f"Request body is not valid JSON: {exc}") from None


def _http(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId")
    logger.set_correlation_id(request_id)
    try:
        raw = _body_bytes(event)
        size, limit = len(raw), max_request_bytes()
        if size > limit:  # refused before it is parsed
            raise ops.too_large(size, limit, ENV_MAX_REQUEST_BYTES)
        _check_numbers(raw)
    except ops.ApiError as error:
        status, body = ops.error_for(error)
        _log_rejected(status, body)
        response = {
            "statusCode": status,
            "headers": {"Content-Type": "application/json"},
            "body": body.model_dump_json(),
            "isBase64Encoded": False,
        }
    else:
        response = app.resolve(event, context)
    logger.info(
        "request", extra={"route": _route_label(event), "status": response.get("statusCode")}
    )
    return response


def _invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", None)
    logger.set_correlation_id(request_id)
    action = event.get("action")
    try:
        size, limit = len(json.dumps(event, default=str).encode()), max_request_bytes()
        if size > limit:
            raise ops.too_large(size, limit, ENV_MAX_REQUEST_BYTES)
        result = _run(api_invoke.invoke(get_runtime, event, import_error=_import_error))
    except Exception as error:  # noqa: BLE001 - every failure becomes an error answer
        status, body = ops.error_for(error, request_id)
        if status >= 500:
            logger.exception("action failed", extra={"action": safe_text(str(action))})
        else:
            _log_rejected(status, body)
        return {"ok": False, "status": status, "error": body.error.model_dump(mode="json")}
    logger.info("action", extra={"action": str(action), "status": 200})
    return {"ok": True, "result": result}


@dataclass
class _NoContext:
    """Stands in for a missing Lambda context (a local caller passing None)."""

    function_name: str = "pyworkflow-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 0
    invoked_function_arn: str = ""
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 0


@logger.inject_lambda_context(log_event=False, clear_state=True)
def _entry(event: Any, context: Any) -> dict[str, Any]:
    _import_workflows()
    if isinstance(event, dict) and "action" in event:
        return _invoke(event, context)
    if isinstance(event, dict) and "requestContext" in event:
        return _http(event, context)
    status, body = ops.error_for(
        ops.ApiError(
            400,
            "UnknownEvent",
            "Expected an API Gateway HTTP API event (payload format 2.0) or "
            '{"action": ...}; actions: ' + ", ".join(sorted(api_invoke.ACTIONS)),
        )
    )
    return {"ok": False, "status": status, "error": body.error.model_dump(mode="json")}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point: an HTTP API v2 request, or a direct invoke ``{"action": ...}``."""
    # log_event=False above overrides POWERTOOLS_LOGGER_LOG_EVENT: events carry hook tokens.
    return _entry(event, context if context is not None else _NoContext())

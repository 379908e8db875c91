"""The API as a whole: the sample API Gateway events, OpenAPI, health, the size limit, what is
logged (never a hook token, never a payload at INFO), and that nothing becomes a bare 500."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from pyworkflow.config import ENV_MAX_REQUEST_BYTES
from pyworkflow.core.models import RunStatus
from pyworkflow.dev.pumps import FakeLambdaContext
from tests.handlers.api import workflows as wf
from tests.handlers.api.conftest import Api, sample_event


@pytest.fixture
def log_lines(api: Api) -> Iterator[io.StringIO]:
    """Everything the API's Powertools logger writes, as it would reach CloudWatch."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(api.module.logger.registered_formatter)
    target = logging.getLogger(api.module.logger.name)
    target.addHandler(handler)
    yield stream
    target.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# --- the sample events (tests/events/apigw_http_v2_*.json) -----------------------------------
def test_sample_start_run_event(api: Api) -> None:
    response = api.call(sample_event("start_run"))
    assert response.status == 202
    assert response.headers["Content-Type"] == "application/json"
    run_id = response.body["run_id"]
    api.drive()
    assert api.get(run_id).get_result() == "HELLO ADA?"


def test_sample_list_runs_event(api: Api) -> None:
    for name in ("a", "b", "c"):
        api.call(
            sample_event("start_run")
            | {"body": json.dumps({"workflow": "api_greet", "args": [name]})}
        )
    response = api.call(sample_event("list_runs"))
    assert response.status == 200
    assert len(response.body["items"]) == 2  # the sample asks for limit=2
    assert response.body["next_cursor"]


def test_sample_hook_event_with_an_unknown_token(
    api: Api, log_lines: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    event = sample_event("hook")
    token = event["pathParameters"]["token"]
    response = api.call(event)
    assert response.status == 404
    assert response.body["error"]["type"] == "HookNotFoundError"
    assert token not in log_lines.getvalue() and token not in caplog.text
    assert {"route": "POST /hooks/{token}", "status": 404}.items() <= records(log_lines)[-1].items()


# --- logging -----------------------------------------------------------------------------------
def test_hook_token_and_payloads_are_never_logged(
    api: Api,
    log_lines: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    caplog.set_level(logging.DEBUG)
    start = api.http("POST", "/runs", {"workflow": "api_waiter"})
    api.drive()
    run_id = start.body["run_id"]
    token = wf.TOKENS[run_id]
    secret = "payload-secret-7f3a"
    assert api.http("POST", f"/hooks/{token}", {"ok": "nope", "by": secret}).status == 422
    assert api.http("POST", f"/hooks/{token}", {"ok": True, "by": secret}).status == 202
    assert api.http("POST", f"/hooks/{token}", {"ok": True, "by": secret}).status == 409
    assert api.http("POST", f"/hooks/{token}", raw_body="{" + secret).status == 400
    assert api.http("GET", f"/hooks/{token}").status == 404
    api.invoke("resume_hook", token=token, payload={"by": secret})
    api.drive()
    assert api.get(run_id).status == RunStatus.COMPLETED
    logged = log_lines.getvalue() + caplog.text
    assert token not in logged
    assert secret not in logged
    statuses = [r["status"] for r in records(log_lines) if r.get("route") == "POST /hooks/{token}"]
    assert statuses == [422, 202, 409, 400]


def test_requests_are_logged_with_the_correlation_id(api: Api, log_lines: io.StringIO) -> None:
    event = sample_event("start_run")
    api.call(event)
    line = records(log_lines)[-1]
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["route"] == "POST /runs" and line["status"] == 202
    assert "Ada" not in log_lines.getvalue()  # the arguments are not logged
    result = api.module.handler({"action": "health"}, FakeLambdaContext(aws_request_id="req-1"))
    assert result == {"ok": True, "result": {"status": "ok"}}
    assert records(log_lines)[-1]["correlation_id"] == "req-1"


# --- the size limit ----------------------------------------------------------------------------
def test_body_over_the_limit_is_413_naming_it(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MAX_REQUEST_BYTES, "200")
    big = {"workflow": "api_greet", "args": ["x" * 300]}
    for base64 in (False, True):
        response = api.http("POST", "/runs", big, base64=base64)
        assert response.status == 413
        assert response.body["error"]["type"] == "RequestTooLarge"
        message = response.body["error"]["message"]
        assert "the limit is 200 bytes" in message and ENV_MAX_REQUEST_BYTES in message
    assert api.count_runs() == 0
    # Malformed *and* too large: refused for its size, before it is parsed.
    assert api.http("POST", "/runs", raw_body="{" * 300).status == 413
    assert api.http("POST", "/runs", {"workflow": "api_greet", "args": ["x"]}).status == 202


def test_default_limit_is_256_kib(api: Api) -> None:
    almost = "x" * (256 * 1024 - 100)
    assert api.http("POST", "/runs", {"workflow": "api_greet", "args": [almost]}).status == 202
    over = "x" * (256 * 1024)
    response = api.http("POST", "/runs", {"workflow": "api_greet", "args": [over]})
    assert response.status == 413
    assert "262144 bytes" in response.body["error"]["message"]


# --- service routes ----------------------------------------------------------------------------
def test_health(api: Api) -> None:
    assert api.http("GET", "/health").body == {"status": "ok"}


def test_workflows(api: Api) -> None:
    response = api.http("GET", "/workflows")
    assert response.status == 200
    by_name = {w["name"]: w for w in response.body["items"]}
    assert {"api_greet", "api_order", "api_waiter", "api_chain"} <= by_name.keys()
    greet = by_name["api_greet"]
    assert greet["tags"] == ["demo"]
    assert greet["signature"] == "(name: str, punctuation: str = '!') -> str"
    assert greet["description"] == "Greets someone, loudly."
    assert by_name["api_order"]["max_duration"] == "1h"


EXPECTED_ROUTES = {
    ("post", "/runs"),
    ("get", "/runs"),
    ("get", "/runs/{run_id}"),
    ("get", "/runs/{run_id}/events"),
    ("get", "/runs/{run_id}/chain"),
    ("post", "/runs/{run_id}/cancel"),
    ("post", "/runs/{run_id}/hooks/{name}"),
    ("post", "/runs/{run_id}/hooks/{name}/fail"),
    ("post", "/hooks/{token}"),
    ("post", "/hooks/{token}/fail"),
    ("post", "/hooks/{token}/heartbeat"),
    ("get", "/workflows"),
    ("post", "/schedules"),
    ("get", "/schedules"),
    ("get", "/schedules/{schedule_id}"),
    ("patch", "/schedules/{schedule_id}"),
    ("delete", "/schedules/{schedule_id}"),
    ("post", "/schedules/{schedule_id}/pause"),
    ("post", "/schedules/{schedule_id}/resume"),
    ("post", "/schedules/{schedule_id}/trigger"),
    ("get", "/health"),
}


def test_openapi_document(api: Api) -> None:
    response = api.http("GET", "/openapi.json")
    assert response.status == 200
    doc = response.body
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "pyworkflow"
    routes = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert routes == EXPECTED_ROUTES  # every route, and not /openapi.json itself
    start = doc["paths"]["/runs"]["post"]
    assert set(start["responses"]) == {"202", "400", "404", "413", "422"}
    body_ref = start["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.endswith("/StartRunRequest")
    assert start["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorBody"
    )
    schemas = doc["components"]["schemas"]
    assert {
        "StartRunRequest",
        "StartRunResponse",
        "RunView",
        "ErrorBody",
        "Schedule",
        "CreateScheduleRequest",
    } <= schemas.keys()
    assert "lease_owner" not in schemas["RunView"]["properties"]
    params = {p["name"] for p in doc["paths"]["/runs"]["get"]["parameters"]}
    assert params == {"status", "workflow", "limit", "cursor"}
    assert api.http("GET", "/openapi.json").body == doc  # served again from the cache


# --- never a bare 500 --------------------------------------------------------------------------
def test_unknown_route_is_404(api: Api) -> None:
    response = api.http("GET", "/nowhere")
    assert response.status == 404
    assert response.body["error"] == {"type": "NotFound", "message": "No route GET /nowhere"}
    assert api.http("PUT", "/runs").status == 404


def test_unsupported_content_type_is_415(api: Api) -> None:
    response = api.http(
        "POST",
        "/runs",
        {"workflow": "api_greet", "args": ["x"]},
        headers={"content-type": "text/plain"},
    )
    assert response.status == 415
    assert api.count_runs() == 0


def test_an_internal_failure_is_a_json_500_without_details(
    api: Api, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(run_id: str) -> None:
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(api.runtime.storage, "get_run", broken)
    event = sample_event("start_run") | {"rawPath": "/runs/run_x", "routeKey": "$default"}
    event["requestContext"] = event["requestContext"] | {
        "http": event["requestContext"]["http"] | {"method": "GET", "path": "/runs/run_x"}
    }
    response = api.call(event)
    assert response.status == 500
    assert response.body["error"]["type"] == "InternalError"
    assert "secret" not in response.body["error"]["message"]
    assert event["requestContext"]["requestId"] in response.body["error"]["message"]
    assert "disk on fire" in log_lines.getvalue()  # the traceback goes to the log


def test_an_event_that_is_neither_http_nor_action_is_400(api: Api) -> None:
    result = api.module.handler({"hello": "world"}, FakeLambdaContext())
    assert result["ok"] is False and result["status"] == 400
    assert "start_run" in result["error"]["message"]


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [150, 50_000])
def test_values_nested_too_deeply_are_400(api: Api, depth: int) -> None:
    # 150 levels parse but are refused; 50,000 overflow the JSON parser itself.
    body = '{"workflow": "api_greet", "args": [' + "[" * depth + "]" * depth + "]}"
    response = api.http("POST", "/runs", raw_body=body)
    assert response.status == 400, response.body
    assert response.body["error"]["type"] == "TooDeeplyNested"
    hook = api.http("POST", "/hooks/whk_x", raw_body="[" * depth + "]" * depth)
    assert hook.status == 400 and hook.body["error"]["type"] == "TooDeeplyNested"
    answer = api.invoke(
        "start_run", workflow="api_greet", args=["x"], kwargs={"punctuation": nested(depth)}
    )
    assert (answer["status"], answer["error"]["type"]) == (400, "TooDeeplyNested")
    assert api.count_runs() == 0


def test_values_nested_within_the_limit_are_accepted(api: Api) -> None:
    start = api.http("POST", "/runs", {"workflow": "api_waiter"})
    api.drive()
    token = wf.TOKENS[start.body["run_id"]]
    response = api.http("POST", f"/hooks/{token}", {"ok": True, "by": "x", "deep": nested(90)})
    assert response.status == 202, response.body
    api.drive()
    assert api.get(start.body["run_id"]).get_result() == {"ok": True, "by": "x"}


@pytest.mark.parametrize("body", ["%%% not base64 %%%", "//79/w=="])  # the 2nd is not UTF-8
def test_a_body_that_cannot_be_decoded_is_400(api: Api, body: str) -> None:
    event = sample_event("start_run") | {"body": body, "isBase64Encoded": True}
    response = api.call(event)
    assert response.status == 400
    assert response.body["error"]["type"] == "MalformedBody"
    assert api.count_runs() == 0

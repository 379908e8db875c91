r"""Text UTF-8 cannot encode in a request: a lone surrogate, which the JSON escape "\ud800"
(without the other half of its pair) decodes to, and which no store can hold.

Wherever it is, the answer is a 4xx in the usual ``{"error": {"type", "message"}}`` shape naming
where it is, never a 500; and every answer and log line can itself be encoded, even when it
quotes the bad text. The HTTP bodies are rows of tests/security/test_bad_inputs.py (which also
proves the store unchanged); here are the direct-invoke actions, path and query parameters, the
hook token, error messages and log lines. (``Api.call``/``Api.invoke`` also check that every
answer of every API test is one the Lambda runtime can send.)
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from pyworkflow import exceptions as exc
from pyworkflow.handlers import api_ops as ops
from tests.handlers.api.conftest import Api, http_event

LONE = "\ud800"  # what json.loads makes of the JSON text "\ud800"
ESCAPED = "\\ud800"  # how an encodable message spells it


def refused(answer: dict[str, Any], needle: str) -> str:
    """The message of a direct-invoke answer refusing a lone surrogate, naming ``needle``."""
    assert answer["ok"] is False, answer
    assert (answer["status"], answer["error"]["type"]) == (422, "SerializationError"), answer
    message = str(answer["error"]["message"])
    assert needle in message and "lone surrogate" in message, message
    return message


# --- direct invoke -----------------------------------------------------------------------------
INVOKED = [
    ("start_run", {"workflow": "api_greet", "args": [LONE]}, "args[0]"),
    (
        "start_run",
        {"workflow": "api_order", "args": [{"order_id": "o" + LONE, "quantity": 1}]},
        "args[0]['order_id']",
    ),
    (
        "start_run",
        {"workflow": "api_greet", "args": ["a"], "kwargs": {"punctuation": LONE}},
        "kwargs['punctuation']",
    ),
    (
        "start_run",
        {"workflow": "api_greet", "args": ["a"], "kwargs": {LONE: "!"}},
        f"kwargs['{ESCAPED}']",
    ),
    ("start_run", {"workflow": LONE}, "workflow"),
    ("resume_hook", {"token": "whk_x", "payload": {"note": [1, LONE]}}, "payload['note'][1]"),
    (
        "resume_hook_by_name",
        {"run_id": "run_x", "name": "api_approval", "payload": {"ok": True, "by": LONE}},
        "payload['by']",
    ),
    ("cancel_run", {"run_id": "run_x", "reason": LONE}, "reason"),
    (
        "create_schedule",
        {"workflow": "api_greet", "args": ["a"], "spec": {"cron": "0 9 * * *", "timezone": LONE}},
        "spec['timezone']",
    ),
    ("update_schedule", {"schedule_id": "s", "spec": {"cron": LONE}}, "spec['cron']"),
    ("get_run", {"run_id": LONE}, "run_id"),
    ("get_events", {"run_id": "run_x" + LONE}, "run_id"),
    ("list_runs", {"cursor": LONE}, "cursor"),
    ("list_schedules", {"workflow": LONE}, "workflow"),
]


@pytest.mark.parametrize(
    ("action", "params", "field"), INVOKED, ids=[f"{a}-{f}" for a, _, f in INVOKED]
)
def test_invoke_refuses_a_lone_surrogate_naming_its_param(
    api: Api, action: str, params: dict[str, Any], field: str
) -> None:
    message = refused(api.invoke(action, **params), f"{field} cannot be stored as JSON")
    assert ESCAPED in message  # the bad text, quoted encodably
    assert api.count_runs() == 0 and api.dispatcher.woken == []
    assert api.dispatcher.scheduler.schedules == {}


def test_invoke_resume_hook_with_a_token_utf8_cannot_encode_is_a_404(api: Api) -> None:
    # It was a 500: the runtime hashes the token, and hashing encodes it.
    answer = api.invoke("resume_hook", token="whk_" + LONE, payload={"ok": True})
    assert answer["ok"] is False
    assert (answer["status"], answer["error"]["type"]) == (404, "InvalidTokenError"), answer
    # A token is a credential, even a broken one: never quoted back.
    assert "whk_" not in answer["error"]["message"]
    assert ESCAPED not in answer["error"]["message"]


# --- HTTP path and query parameters --------------------------------------------------------------
PATHS = [
    ("GET", "/runs/{x}"),
    ("GET", "/runs/{x}/events"),
    ("GET", "/runs/{x}/chain"),
    ("POST", "/runs/{x}/cancel"),
    ("POST", "/runs/run_x/hooks/{x}"),
    ("POST", "/runs/{x}/hooks/api_approval"),
    ("POST", "/hooks/{x}"),
    ("GET", "/schedules/{x}"),
    ("PATCH", "/schedules/{x}"),
    ("DELETE", "/schedules/{x}"),
    ("POST", "/schedules/{x}/pause"),
    ("POST", "/schedules/{x}/resume"),
    ("POST", "/schedules/{x}/trigger"),
    ("GET", "/{x}"),
]


@pytest.mark.parametrize(("method", "path"), PATHS, ids=[f"{m} {p}" for m, p in PATHS])
def test_a_lone_surrogate_in_a_path_parameter_is_a_4xx_whose_message_encodes(
    api: Api, method: str, path: str
) -> None:
    body = {"payload": 1} if "/hooks/" in path and path.startswith("/runs") else None
    response = api.http(method, path.format(x="id" + "\udcff"), body)
    assert 400 <= response.status < 500, response.body
    error = response.body["error"]
    assert set(error) == {"type", "message"}
    # The message may quote the path, but as text that UTF-8 (and any strict JSON reader,
    # which refuses a "\udcff" escape without its pair) can take.
    error["message"].encode("utf-8")
    assert "\\udcff" in error["message"] or "/hooks/" in path


QUERIES = [
    ("/runs", {"workflow": "api_greet" + LONE}, "workflow"),
    ("/runs", {"status": LONE}, "status"),
    ("/runs/run_x/events", {"after": "1" + LONE}, "after"),
    ("/schedules", {"workflow": LONE}, "workflow"),
]


@pytest.mark.parametrize(
    ("path", "query", "field"), QUERIES, ids=[f"{p}-{f}" for p, _, f in QUERIES]
)
def test_a_lone_surrogate_in_a_query_parameter_is_a_422_naming_it(
    api: Api, path: str, query: dict[str, str], field: str
) -> None:
    response = api.http("GET", path, query=query)
    assert response.status == 422, response.body
    assert response.body["error"]["type"] == "SerializationError"
    message = response.body["error"]["message"]
    assert f"{field} cannot be stored as JSON" in message and "lone surrogate" in message
    message.encode("utf-8")


# --- error messages and log lines ----------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        exc.ScheduleError(f"Invalid timezone '{ESCAPED}': No time zone found with key {LONE}"),
        ops.ApiError(404, "NotFound", f"No route GET /runs/{LONE}"),
        exc.WorkflowNotFoundError(LONE),
    ],
    ids=["pyworkflow error", "ApiError", "not-found id"],
)
def test_an_error_message_quoting_bad_text_is_made_encodable(error: Exception) -> None:
    status, body = ops.error_for(error)
    assert 400 <= status < 500
    assert ESCAPED in body.error.message
    body.error.message.encode("utf-8")
    body.model_dump_json()  # what pyworkflow/handlers/api.py sends for the errors it answers itself


@pytest.fixture
def log_lines(api: Api) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(api.module.logger.registered_formatter)
    target = logging.getLogger(api.module.logger.name)
    target.addHandler(handler)
    yield stream
    target.removeHandler(handler)


def test_log_lines_of_a_request_with_bad_text_encode(api: Api, log_lines: io.StringIO) -> None:
    # Powertools writes log lines with ensure_ascii=False: a lone surrogate in one (a route
    # label quoting the path) cannot be written to a UTF-8 stream, and the line is lost.
    event = http_event("GET", "/runs/run_\udcff")
    event["routeKey"] = "$default"
    assert api.call(event).status == 404
    text = log_lines.getvalue()
    text.encode("utf-8")
    routes = [json.loads(line).get("route") for line in text.splitlines()]
    assert "GET /runs/run_\\udcff" in routes, routes

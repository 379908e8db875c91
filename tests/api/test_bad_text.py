r"""Text UTF-8 cannot encode in a request: a lone surrogate, which the JSON escape "\ud800"
(without the other half of its pair) decodes to, and which no store can hold.

Wherever it is, the answer is a 4xx in the usual ``{"error": {"type", "message"}}`` shape naming
where it is, before anything is written. The HTTP bodies are rows of
tests/security/test_bad_inputs.py (which also proves the store unchanged); here are the
direct-invoke actions and the query parameters.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api

LONE = "\ud800"       # what json.loads makes of the JSON text "\ud800"
ESCAPED = "\\ud800"   # how an encodable message spells it


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
    ("start_run", {"workflow": "api_order", "args": [{"order_id": "o" + LONE, "quantity": 1}]},
     "args[0]['order_id']"),
    ("start_run", {"workflow": "api_greet", "args": ["a"], "kwargs": {"punctuation": LONE}},
     "kwargs['punctuation']"),
    ("start_run", {"workflow": "api_greet", "args": ["a"], "kwargs": {LONE: "!"}},
     f"kwargs['{ESCAPED}']"),
    ("start_run", {"workflow": LONE}, "workflow"),
    ("resume_hook", {"token": "whk_x", "payload": {"note": [1, LONE]}}, "payload['note'][1]"),
    ("resume_hook_by_name", {"run_id": "run_x", "name": "api_approval",
                             "payload": {"ok": True, "by": LONE}}, "payload['by']"),
    ("cancel_run", {"run_id": "run_x", "reason": LONE}, "reason"),
    ("create_schedule", {"workflow": "api_greet", "args": ["a"],
                         "spec": {"cron": "0 9 * * *", "timezone": LONE}}, "spec['timezone']"),
    ("update_schedule", {"schedule_id": "s", "spec": {"cron": LONE}}, "spec['cron']"),
    ("get_run", {"run_id": LONE}, "run_id"),
    ("get_events", {"run_id": "run_x" + LONE}, "run_id"),
    ("list_runs", {"cursor": LONE}, "cursor"),
    ("list_schedules", {"workflow": LONE}, "workflow"),
]


@pytest.mark.parametrize(("action", "params", "field"), INVOKED,
                         ids=[f"{a}-{f}" for a, _, f in INVOKED])
def test_invoke_refuses_a_lone_surrogate_naming_its_param(api: Api, action: str,
                                                          params: dict[str, Any],
                                                          field: str) -> None:
    message = refused(api.invoke(action, **params), f"{field} cannot be stored as JSON")
    assert ESCAPED in message  # the bad text, quoted encodably
    assert api.count_runs() == 0 and api.dispatcher.woken == []
    assert api.dispatcher.scheduler.schedules == {}


# --- HTTP path and query parameters --------------------------------------------------------------
QUERIES = [
    ("/runs", {"workflow": "api_greet" + LONE}, "workflow"),
    ("/runs", {"status": LONE}, "status"),
    ("/runs/run_x/events", {"after": "1" + LONE}, "after"),
    ("/schedules", {"workflow": LONE}, "workflow"),
]


@pytest.mark.parametrize(("path", "query", "field"), QUERIES,
                         ids=[f"{p}-{f}" for p, _, f in QUERIES])
def test_a_lone_surrogate_in_a_query_parameter_is_a_422_naming_it(
        api: Api, path: str, query: dict[str, str], field: str) -> None:
    response = api.http("GET", path, query=query)
    assert response.status == 422, response.body
    assert response.body["error"]["type"] == "SerializationError"
    message = response.body["error"]["message"]
    assert f"{field} cannot be stored as JSON" in message and "lone surrogate" in message
    message.encode("utf-8")

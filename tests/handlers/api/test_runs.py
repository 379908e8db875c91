"""Runs through the HTTP API: start, read, list, events, chain, cancel, and the errors of each."""

from __future__ import annotations

import pytest

from pyworkflow.core.models import RunStatus
from pyworkflow.handlers.api_models import INTERNAL_RUN_FIELDS
from tests.handlers.api.conftest import Api


def start(api: Api, workflow: str, *args: object, **body: object) -> str:
    response = api.http("POST", "/runs", {"workflow": workflow, "args": list(args), **body})
    assert response.status == 202, response.body
    return str(response.body["run_id"])


def test_start_writes_one_run_and_wakes_it_once(api: Api) -> None:
    response = api.http(
        "POST", "/runs", {"workflow": "api_greet", "args": ["Ada"], "kwargs": {"punctuation": "?"}}
    )
    assert response.status == 202
    run_id = response.body["run_id"]
    assert response.body == {"run_id": run_id, "status": "pending"}
    assert api.dispatcher.woken == [(run_id, "start")]  # the API never drives a run itself
    assert api.get(run_id).status == RunStatus.PENDING
    assert api.drive() == [run_id]
    run = api.get(run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == "HELLO ADA?"


def test_get_run_is_the_record_without_internal_fields(api: Api) -> None:
    run_id = start(api, "api_greet", "Bo")
    api.drive()
    response = api.http("GET", f"/runs/{run_id}")
    assert response.status == 200
    expected = api.get(run_id).model_dump(mode="json", exclude=set(INTERNAL_RUN_FIELDS))
    # the arguments and the result as JSON values, not the JSON text a run keeps
    expected.update(input_args=["Bo"], input_kwargs={}, result="HELLO BO!")
    assert response.body == expected
    assert not INTERNAL_RUN_FIELDS & response.body.keys()
    assert response.body["result"] == "HELLO BO!"
    assert response.body["tags"] == ["demo"]


def test_pydantic_arguments_are_validated_and_stored(api: Api) -> None:
    run_id = start(api, "api_order", {"order_id": "o-1", "quantity": 3})
    api.drive()
    assert api.get(run_id).get_result() == 6


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"workflow": "api_greet", "args": ["a", "b", "c"]}, "too many positional arguments"),
        ({"workflow": "api_greet", "args": []}, "missing a required argument: 'name'"),
        ({"workflow": "api_greet", "args": ["a"], "kwargs": {"volume": 11}}, "volume"),
        ({"workflow": "api_order", "args": [{"order_id": "o-1", "quantity": "lots"}]}, "quantity"),
        (
            {"workflow": "api_greet", "args": ["a"], "kwargs": {"idempotency_key": "k"}},
            "idempotency_key",
        ),
    ],
)
def test_arguments_that_do_not_fit_are_422_and_write_nothing(
    api: Api, body: dict[str, object], needle: str
) -> None:
    response = api.http("POST", "/runs", body)
    assert response.status == 422, response.body
    assert response.body["error"]["type"] == "InvalidArgumentsError"
    assert needle in response.body["error"]["message"]
    assert api.count_runs() == 0  # checked before anything is written
    assert api.dispatcher.woken == []


def test_unknown_workflow_is_404_naming_the_available_ones(api: Api) -> None:
    response = api.http("POST", "/runs", {"workflow": "api_nope"})
    assert response.status == 404
    assert response.body["error"]["type"] == "UnknownWorkflowError"
    message = response.body["error"]["message"]
    assert "'api_nope' is not registered" in message
    for name in ("api_greet", "api_order", "api_waiter"):
        assert name in message
    assert api.count_runs() == 0


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "body.workflow: Field required"),
        ({"workflow": "api_greet", "argz": ["a"]}, "body.argz: Extra inputs are not permitted"),
        ({"workflow": "api_greet", "args": "Ada"}, "body.args"),
        ({"workflow": "api_greet", "kwargs": [1]}, "body.kwargs"),
        ({"workflow": ""}, "body.workflow"),
        ({"workflow": "api_greet", "idempotency_key": ""}, "body.idempotency_key"),
    ],
)
def test_bodies_that_do_not_fit_the_schema_are_422(
    api: Api, body: dict[str, object], needle: str
) -> None:
    response = api.http("POST", "/runs", body)
    assert response.status == 422
    assert response.body["error"]["type"] == "ValidationError"
    assert needle in response.body["error"]["message"]
    assert api.count_runs() == 0


def test_missing_body_is_422(api: Api) -> None:
    response = api.http("POST", "/runs")
    assert response.status == 422
    assert "body" in response.body["error"]["message"]


@pytest.mark.parametrize("raw", ["{not json", '{"workflow": "api_greet",}', "[1, 2", "nul"])
def test_malformed_json_is_400(api: Api, raw: str) -> None:
    response = api.http("POST", "/runs", raw_body=raw)
    assert response.status == 400
    assert response.body["error"]["type"] == "MalformedJSON"
    assert response.body["error"]["message"].startswith("Request body is not valid JSON")
    assert api.count_runs() == 0


def test_base64_encoded_body_is_read(api: Api) -> None:
    response = api.http("POST", "/runs", {"workflow": "api_greet", "args": ["Cy"]}, base64=True)
    assert response.status == 202, response.body


def test_idempotency_key_returns_the_first_run_and_its_status(api: Api) -> None:
    first = api.http(
        "POST", "/runs", {"workflow": "api_greet", "args": ["Di"], "idempotency_key": "order-42"}
    )
    assert first.status == 202
    api.drive()
    again = api.http(
        "POST", "/runs", {"workflow": "api_greet", "args": ["Di"], "idempotency_key": "order-42"}
    )
    assert again.status == 202
    assert again.body == {"run_id": first.body["run_id"], "status": "completed"}
    assert api.count_runs() == 1
    assert api.dispatcher.woken == []  # nothing started the second time


def test_list_runs_filters_and_pages(api: Api) -> None:
    greets = [start(api, "api_greet", f"n{i}") for i in range(3)]
    order = start(api, "api_order", {"order_id": "o", "quantity": 1})
    api.drive()
    waiting = start(api, "api_sleeper", 60)
    api.drive()
    page = api.http("GET", "/runs", query={"workflow": "api_greet", "limit": 2})
    assert page.status == 200
    assert len(page.body["items"]) == 2 and page.body["next_cursor"]
    rest = api.http(
        "GET",
        "/runs",
        query={"workflow": "api_greet", "limit": 2, "cursor": page.body["next_cursor"]},
    )
    assert rest.body["next_cursor"] is None
    seen = [r["run_id"] for r in page.body["items"] + rest.body["items"]]
    assert sorted(seen) == sorted(greets)
    suspended = api.http("GET", "/runs", query={"status": "suspended"})
    assert [r["run_id"] for r in suspended.body["items"]] == [waiting]
    everything = api.http("GET", "/runs")
    assert {r["run_id"] for r in everything.body["items"]} == {*greets, order, waiting}
    assert all(not INTERNAL_RUN_FIELDS & r.keys() for r in everything.body["items"])


@pytest.mark.parametrize(
    ("query", "status", "needle"),
    [
        ({"limit": 0}, 422, "query.limit"),
        ({"limit": 100000}, 422, "query.limit"),
        ({"limit": "many"}, 422, "query.limit"),
        ({"status": "sleeping"}, 422, "query.status"),
        ({"cursor": "not-a-cursor"}, 400, "Invalid cursor"),
    ],
)
def test_bad_list_queries(api: Api, query: dict[str, object], status: int, needle: str) -> None:
    response = api.http("GET", "/runs", query=query)
    assert response.status == status
    assert needle in response.body["error"]["message"]


def test_events_in_order_and_after_a_sequence(api: Api) -> None:
    run_id = start(api, "api_greet", "Ed")
    api.drive()
    response = api.http("GET", f"/runs/{run_id}/events")
    assert response.status == 200
    events = response.body["items"]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "workflow.started" and events[-1]["type"] == "workflow.completed"
    later = api.http("GET", f"/runs/{run_id}/events", query={"after": 1})
    assert later.body["items"] == events[1:]
    assert api.http("GET", f"/runs/{run_id}/events", query={"after": 99}).body == {"items": []}
    assert api.http("GET", f"/runs/{run_id}/events", query={"after": -1}).status == 422


def test_chain_of_continue_as_new(api: Api) -> None:
    first = start(api, "api_chain", 0)
    api.drive()
    response = api.http("GET", f"/runs/{first}/chain")
    assert response.status == 200
    chain = response.body["items"]
    assert [r["status"] for r in chain] == ["continued_as_new", "continued_as_new", "completed"]
    assert chain[0]["run_id"] == first
    assert chain[1]["continued_from_run_id"] == first
    # Asked from the middle, the same chain.
    middle = api.http("GET", f"/runs/{chain[1]['run_id']}/chain")
    assert [r["run_id"] for r in middle.body["items"]] == [r["run_id"] for r in chain]


def test_cancel_then_cancel_again_is_409(api: Api) -> None:
    run_id = start(api, "api_sleeper", 3600)
    api.drive()
    assert api.get(run_id).status == RunStatus.SUSPENDED
    response = api.http("POST", f"/runs/{run_id}/cancel", {"reason": "changed my mind"})
    assert response.status == 202
    assert response.body == {"run_id": run_id, "cancelled": True}
    assert api.dispatcher.woken == [(run_id, "cancel")]
    api.drive()
    run = api.get(run_id)
    assert run.status == RunStatus.CANCELLED
    assert run.cancel_reason == "changed my mind"
    again = api.http("POST", f"/runs/{run_id}/cancel")
    assert again.status == 409
    assert again.body["error"]["type"] == "RunAlreadyEndedError"
    assert "already ended (cancelled)" in again.body["error"]["message"]


def test_cancel_without_a_body(api: Api) -> None:
    run_id = start(api, "api_sleeper", 3600)
    api.drive()
    response = api.http("POST", f"/runs/{run_id}/cancel")
    assert response.status == 202 and response.body["cancelled"] is True


def test_cancel_rejects_a_bad_body(api: Api) -> None:
    run_id = start(api, "api_sleeper", 3600)
    assert api.http("POST", f"/runs/{run_id}/cancel", {"why": "x"}).status == 422
    assert api.http("POST", f"/runs/{run_id}/cancel", raw_body="{").status == 400
    assert not api.get(run_id).cancel_requested


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/runs/run_missing", None),
        ("GET", "/runs/run_missing/events", None),
        ("GET", "/runs/run_missing/chain", None),
        ("POST", "/runs/run_missing/cancel", None),
        ("POST", "/runs/run_missing/hooks/api_approval", {"ok": True}),
    ],
)
def test_unknown_run_is_404(api: Api, method: str, path: str, body: object) -> None:
    response = api.http(method, path, body)
    assert response.status == 404
    assert response.body["error"] == {
        "type": "WorkflowNotFoundError",
        "message": "Workflow run not found: run_missing",
    }


def test_a_workflow_module_that_failed_to_import_is_named_in_the_404(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PYWORKFLOW_MODULE", "tests.handlers.api.workflows,tests.handlers.api.no_such_module"
    )
    api.module.reset(api.runtime)  # a cold start that imports the module list again
    assert api.http("GET", "/health").status == 200  # the service still answers
    response = api.http("POST", "/runs", {"workflow": "api_missing"})
    assert response.status == 404
    message = response.body["error"]["message"]
    assert "failed to import" in message and "tests.handlers.api.no_such_module" in message


def test_a_failed_run_says_where_it_was_raised_in_the_run_and_its_events(api: Api) -> None:
    run_id = start(api, "api_failing", "o-9")
    api.drive()
    run = api.http("GET", f"/runs/{run_id}").body
    assert run["status"] == "failed" and run["error_type"] == "ValueError"
    assert "workflows.py" in run["error_traceback"] and "in failing" in run["error_traceback"]
    events = api.http("GET", f"/runs/{run_id}/events").body
    items = events["items"]
    failed = [e for e in items if e["type"] == "workflow.failed"]
    assert failed[0]["data"]["traceback"] == run["error_traceback"]

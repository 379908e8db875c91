"""Schedules through the HTTP API: create, read, list, change, pause, resume, trigger, delete."""

from __future__ import annotations

from typing import Any

import pytest

from pyworkflow.core.models import RunStatus
from tests.handlers.api.conftest import Api

DAILY = {"cron": "0 9 * * *", "timezone": "UTC"}


def create(api: Api, **body: Any) -> dict[str, Any]:
    body = {"workflow": "api_greet", "spec": DAILY, "args": ["sched"], **body}
    response = api.http("POST", "/schedules", body)
    assert response.status == 201, response.body
    return dict(response.body)


def test_create_get_list(api: Api) -> None:
    created = create(
        api, schedule_id="daily-greet", overlap_policy="buffer_one", kwargs={"punctuation": "."}
    )
    assert created["schedule_id"] == "daily-greet"
    assert created["status"] == "active"
    assert created["spec"]["cron"] == "0 9 * * *"
    assert created["overlap_policy"] == "buffer_one"
    assert created["next_run_time"].endswith("T09:00:00Z")
    got = api.http("GET", "/schedules/daily-greet")
    assert got.status == 200 and got.body == created
    other = create(api, workflow="api_order", args=[{"order_id": "o", "quantity": 1}])
    everything = api.http("GET", "/schedules")
    assert {s["schedule_id"] for s in everything.body["items"]} == {
        "daily-greet",
        other["schedule_id"],
    }
    greets = api.http("GET", "/schedules", query={"workflow": "api_greet"})
    assert [s["schedule_id"] for s in greets.body["items"]] == ["daily-greet"]
    one = api.http("GET", "/schedules", query={"limit": 1, "offset": 1})
    assert len(one.body["items"]) == 1


def eventbridge(api: Api) -> list[tuple[str, str]]:
    """The recurring EventBridge schedules: (expression, state) of each."""
    return sorted(
        (d["ScheduleExpression"], d["State"]) for d in api.dispatcher.scheduler.schedules.values()
    )


def test_update_pause_resume_delete(api: Api) -> None:
    schedule_id = create(api)["schedule_id"]
    assert eventbridge(api) == [("cron(0 9 * * ? *)", "ENABLED")]
    changed = api.http(
        "PATCH",
        f"/schedules/{schedule_id}",
        {"spec": {"interval": "5m"}, "overlap_policy": "allow_all"},
    )
    assert changed.status == 200, changed.body
    assert changed.body["spec"]["interval"] == "5m" and changed.body["spec"]["cron"] is None
    assert changed.body["overlap_policy"] == "allow_all"
    assert eventbridge(api) == [("rate(5 minutes)", "ENABLED")]
    paused = api.http("POST", f"/schedules/{schedule_id}/pause")
    assert paused.status == 200 and paused.body["status"] == "paused"
    assert eventbridge(api) == [("rate(5 minutes)", "DISABLED")]
    assert (
        api.http("GET", "/schedules", query={"status": "paused"}).body["items"][0]["schedule_id"]
        == schedule_id
    )
    resumed = api.http("POST", f"/schedules/{schedule_id}/resume")
    assert resumed.status == 200 and resumed.body["status"] == "active"
    assert eventbridge(api) == [("rate(5 minutes)", "ENABLED")]
    deleted = api.http("DELETE", f"/schedules/{schedule_id}")
    assert deleted.status == 200 and deleted.body["status"] == "deleted"
    assert eventbridge(api) == []
    assert api.http("GET", f"/schedules/{schedule_id}").body["status"] == "deleted"
    # A deleted schedule cannot be changed any more.
    assert api.http("POST", f"/schedules/{schedule_id}/resume").status == 422


def test_trigger_starts_a_run_through_the_queue(api: Api) -> None:
    schedule_id = create(api, overlap_policy="skip")["schedule_id"]
    api.http("POST", f"/schedules/{schedule_id}/pause")  # trigger works on paused schedules
    response = api.http("POST", f"/schedules/{schedule_id}/trigger")
    assert response.status == 202, response.body
    run_id = response.body["run_id"]
    assert response.body == {"schedule_id": schedule_id, "run_id": run_id}
    assert api.dispatcher.woken == [(run_id, "schedule")]
    schedule = api.http("GET", f"/schedules/{schedule_id}").body
    assert schedule["running_run_ids"] == [run_id] and schedule["total_runs"] == 1
    run = api.get(run_id)
    assert run.schedule_id == schedule_id and run.status == RunStatus.PENDING
    api.drive()
    assert api.get(run_id).get_result() == "HELLO SCHED!"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "not a cron"}, "cron"),
        ({"interval": "soon"}, "interval"),
        ({}, ""),
        ({"timezone": "Mars/Olympus"}, ""),
        ({"interval": "90s"}, "minute"),  # valid, but no EventBridge rate() ticks it
    ],
)
def test_invalid_specs_are_422(api: Api, spec: dict[str, Any], needle: str) -> None:
    response = api.http(
        "POST", "/schedules", {"workflow": "api_greet", "spec": spec, "args": ["x"]}
    )
    assert response.status == 422, response.body
    assert response.body["error"]["type"] == "ScheduleError"
    assert needle in response.body["error"]["message"].lower()
    assert api.http("GET", "/schedules").body["items"] == []
    assert eventbridge(api) == []


def test_update_with_an_invalid_cron_is_422_and_changes_nothing(api: Api) -> None:
    schedule_id = create(api)["schedule_id"]
    response = api.http("PATCH", f"/schedules/{schedule_id}", {"spec": {"cron": "* * *"}})
    assert response.status == 422 and response.body["error"]["type"] == "ScheduleError"
    assert api.http("GET", f"/schedules/{schedule_id}").body["spec"]["cron"] == "0 9 * * *"


@pytest.mark.parametrize(
    ("body", "status", "type_"),
    [
        ({"workflow": "api_nope", "spec": DAILY}, 404, "UnknownWorkflowError"),
        ({"workflow": "api_greet", "spec": DAILY, "args": [1, 2, 3]}, 422, "InvalidArgumentsError"),
        (
            {"workflow": "api_greet", "spec": {"cron": "0 9 * * *", "tz": "UTC"}, "args": ["x"]},
            422,
            "ValidationError",
        ),
        (
            {"workflow": "api_greet", "spec": DAILY, "args": ["x"], "overlap_policy": "sometimes"},
            422,
            "ValidationError",
        ),
        (
            {"workflow": "api_greet", "spec": DAILY, "args": ["x"], "schedule_id": "a b"},
            422,
            "ValidationError",
        ),
        (
            {"workflow": "api_greet", "spec": DAILY, "args": ["x"], "kwargs": {"spec": 1}},
            422,
            "InvalidArgumentsError",
        ),
    ],
)
def test_bad_creates(api: Api, body: dict[str, Any], status: int, type_: str) -> None:
    response = api.http("POST", "/schedules", body)
    assert response.status == status, response.body
    assert response.body["error"]["type"] == type_
    assert api.http("GET", "/schedules").body["items"] == []


def test_duplicate_schedule_id_is_409(api: Api) -> None:
    create(api, schedule_id="only-one")
    response = api.http(
        "POST",
        "/schedules",
        {"workflow": "api_greet", "spec": DAILY, "args": ["x"], "schedule_id": "only-one"},
    )
    assert response.status == 409
    assert "already exists" in response.body["error"]["message"]


def test_malformed_schedule_bodies_are_400(api: Api) -> None:
    schedule_id = create(api)["schedule_id"]
    assert api.http("POST", "/schedules", raw_body="{").status == 400
    assert api.http("PATCH", f"/schedules/{schedule_id}", raw_body="{").status == 400


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"overlap_policy": "skip"}),
        ("DELETE", "", None),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
        ("POST", "/trigger", None),
    ],
)
def test_unknown_schedule_is_404(api: Api, method: str, suffix: str, body: Any) -> None:
    response = api.http(method, f"/schedules/sched_missing{suffix}", body)
    assert response.status == 404, response.body
    assert response.body["error"] == {
        "type": "ScheduleNotFoundError",
        "message": "Schedule not found: sched_missing",
    }


def test_ids_in_paths_are_percent_decoded(api: Api) -> None:
    create(api, schedule_id="team:daily.v1")
    response = api.http("GET", "/schedules/team%3Adaily.v1")  # as a client quotes it
    assert response.status == 200 and response.body["schedule_id"] == "team:daily.v1"
    assert api.http("POST", "/schedules/team%3Adaily.v1/pause").body["status"] == "paused"

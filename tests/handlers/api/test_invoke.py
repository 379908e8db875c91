"""Direct invoke (``{"action": ...}``): every action, the same answers as the HTTP routes, and
the same errors with their statuses in the answer."""

from __future__ import annotations

from typing import Any

import pytest

from pyworkflow.handlers.api_invoke import ACTIONS
from tests.handlers.api import workflows as wf
from tests.handlers.api.conftest import Api

DAILY = {"cron": "0 9 * * *"}


def ok(answer: dict[str, Any]) -> Any:
    assert answer["ok"] is True, answer
    assert set(answer) == {"ok", "result"}
    return answer["result"]


def failed(answer: dict[str, Any], status: int, type_: str) -> str:
    assert answer["ok"] is False, answer
    assert answer["status"] == status, answer
    assert answer["error"]["type"] == type_, answer
    return str(answer["error"]["message"])


def test_run_actions_answer_what_the_routes_answer(api: Api) -> None:
    started = ok(
        api.invoke("start_run", workflow="api_greet", args=["Ivy"], kwargs={"punctuation": "."})
    )
    assert started == {"run_id": started["run_id"], "status": "pending"}
    run_id = started["run_id"]
    assert api.dispatcher.woken == [(run_id, "start")]
    api.drive()
    run = ok(api.invoke("get_run", run_id=run_id))
    assert run == api.http("GET", f"/runs/{run_id}").body
    assert run["status"] == "completed" and run["result"] == "HELLO IVY."
    assert (
        ok(api.invoke("get_events", run_id=run_id))
        == api.http("GET", f"/runs/{run_id}/events").body
    )
    assert (
        ok(api.invoke("get_events", run_id=run_id, after=2))
        == api.http("GET", f"/runs/{run_id}/events", query={"after": 2}).body
    )
    assert (
        ok(api.invoke("get_chain", run_id=run_id)) == api.http("GET", f"/runs/{run_id}/chain").body
    )
    assert (
        ok(api.invoke("list_runs", workflow="api_greet", limit=5))
        == api.http("GET", "/runs", query={"workflow": "api_greet", "limit": 5}).body
    )
    assert ok(api.invoke("list_workflows")) == api.http("GET", "/workflows").body
    assert ok(api.invoke("health")) == {"status": "ok"}


def test_cancel_action(api: Api) -> None:
    run_id = ok(api.invoke("start_run", workflow="api_sleeper", args=[3600]))["run_id"]
    api.drive()
    assert ok(api.invoke("cancel_run", run_id=run_id, reason="test")) == {
        "run_id": run_id,
        "cancelled": True,
    }
    api.drive()
    message = failed(api.invoke("cancel_run", run_id=run_id), 409, "RunAlreadyEndedError")
    assert "cancelled" in message


def test_hook_actions(api: Api) -> None:
    run_id = ok(api.invoke("start_run", workflow="api_waiter"))["run_id"]
    api.drive()
    token = wf.TOKENS[run_id]
    failed(api.invoke("resume_hook", token=token, payload={"ok": 3}), 422, "HookPayloadError")
    resumed = ok(api.invoke("resume_hook", token=token, payload={"ok": True}))
    assert resumed["run_id"] == run_id and resumed["status"] == "resumed"
    failed(
        api.invoke("resume_hook", token=token, payload={"ok": True}),
        409,
        "HookAlreadyReceivedError",
    )
    failed(api.invoke("resume_hook", token="whk_nope", payload=1), 404, "HookNotFoundError")
    failed(api.invoke("resume_hook", token="t" * 257, payload=1), 404, "InvalidTokenError")
    failed(api.invoke("resume_hook", token="", payload=1), 404, "InvalidTokenError")
    api.drive()
    assert api.get(run_id).get_result() == {"ok": True, "by": "someone"}

    other = ok(api.invoke("start_run", workflow="api_expiring"))["run_id"]
    api.drive()
    failed(
        api.invoke("resume_hook_by_name", run_id=other, name="api_other", payload=1),
        404,
        "HookNotFoundError",
    )
    api.clock.advance(7200)
    failed(
        api.invoke("resume_hook_by_name", run_id=other, name="api_deadline", payload=1),
        410,
        "HookExpiredError",
    )


def test_resume_hook_by_name_action(api: Api) -> None:
    run_id = ok(api.invoke("start_run", workflow="api_waiter"))["run_id"]
    api.drive()
    resumed = ok(
        api.invoke(
            "resume_hook_by_name",
            run_id=run_id,
            name="api_approval",
            payload={"ok": False, "by": "sdk"},
        )
    )
    assert resumed["run_id"] == run_id
    api.drive()
    assert api.get(run_id).get_result() == {"ok": False, "by": "sdk"}


def test_schedule_actions(api: Api) -> None:
    created = ok(
        api.invoke(
            "create_schedule", workflow="api_greet", spec=DAILY, args=["s"], schedule_id="inv"
        )
    )
    assert created == api.http("GET", "/schedules/inv").body
    assert ok(api.invoke("get_schedule", schedule_id="inv")) == created
    assert [s["schedule_id"] for s in ok(api.invoke("list_schedules"))["items"]] == ["inv"]
    updated = ok(api.invoke("update_schedule", schedule_id="inv", overlap_policy="allow_all"))
    assert updated["overlap_policy"] == "allow_all" and updated["spec"]["cron"] == "0 9 * * *"
    assert ok(api.invoke("pause_schedule", schedule_id="inv"))["status"] == "paused"
    assert ok(api.invoke("resume_schedule", schedule_id="inv"))["status"] == "active"
    triggered = ok(api.invoke("trigger_schedule", schedule_id="inv"))
    assert api.dispatcher.woken == [(triggered["run_id"], "schedule")]
    assert ok(api.invoke("delete_schedule", schedule_id="inv"))["status"] == "deleted"
    failed(api.invoke("get_schedule", schedule_id="nope"), 404, "ScheduleNotFoundError")
    failed(
        api.invoke(
            "create_schedule", workflow="api_greet", spec={"cron": "99 * * * *"}, args=["s"]
        ),
        422,
        "ScheduleError",
    )
    failed(
        api.invoke(
            "create_schedule", workflow="api_greet", spec=DAILY, args=["s"], schedule_id="inv"
        ),
        409,
        "ScheduleAlreadyExistsError",
    )


def test_fail_and_heartbeat_hook_actions(api: Api) -> None:
    run_id = ok(api.invoke("start_run", workflow="api_waiter"))["run_id"]
    api.drive()
    token = wf.TOKENS[run_id]
    assert ok(api.invoke("heartbeat_hook", token=token))["status"] == "alive"
    failed(api.invoke("fail_hook", token=token, message="no type"), 422, "ValidationError")
    answer = ok(api.invoke("fail_hook", token=token, error_type="Declined", message="card"))
    assert (answer["run_id"], answer["status"]) == (run_id, "failed")
    failed(
        api.invoke("fail_hook", token=token, error_type="Declined"),
        409,
        "HookAlreadyReceivedError",
    )
    failed(api.invoke("heartbeat_hook", token="whk_nope"), 404, "HookNotFoundError")
    api.drive()
    run = api.get(run_id)
    assert (run.error_type, run.error) == ("HookFailedError", "Declined: card")


def test_every_action_is_covered() -> None:
    assert set(ACTIONS) == {
        "start_run",
        "get_run",
        "list_runs",
        "get_events",
        "get_chain",
        "cancel_run",
        "resume_hook",
        "resume_hook_by_name",
        "fail_hook",
        "fail_hook_by_name",
        "heartbeat_hook",
        "list_workflows",
        "create_schedule",
        "get_schedule",
        "list_schedules",
        "update_schedule",
        "delete_schedule",
        "pause_schedule",
        "resume_schedule",
        "trigger_schedule",
        "health",
    }


@pytest.mark.parametrize(
    ("event", "status", "type_", "needle"),
    [
        ({"action": "launch"}, 400, "UnknownAction", "start_run"),
        ({"action": 7}, 400, "UnknownAction", "Actions:"),
        ({"action": "get_run"}, 422, "ValidationError", "run_id: Field required"),
        ({"action": "get_run", "run_id": "r", "verbose": True}, 422, "ValidationError", "verbose"),
        ({"action": "list_runs", "limit": 0}, 422, "ValidationError", "limit"),
        ({"action": "start_run", "workflow": "api_nope"}, 404, "UnknownWorkflowError", "api_greet"),
        (
            {"action": "start_run", "workflow": "api_greet", "args": [1, 2, 3]},
            422,
            "InvalidArgumentsError",
            "too many",
        ),
        (
            {"action": "get_run", "run_id": "run_missing"},
            404,
            "WorkflowNotFoundError",
            "run_missing",
        ),
        ({"action": "list_runs", "cursor": "zzz"}, 400, "InvalidCursorError", "cursor"),
    ],
)
def test_errors(api: Api, event: dict[str, Any], status: int, type_: str, needle: str) -> None:
    action = event.pop("action")
    message = failed(api.invoke(action, **event), status, type_)
    assert needle in message
    assert api.count_runs() == 0


def test_invoke_over_the_limit_is_413(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWORKFLOW_MAX_REQUEST_BYTES", "100")
    message = failed(
        api.invoke("start_run", workflow="api_greet", args=["x" * 200]), 413, "RequestTooLarge"
    )
    assert "PYWORKFLOW_MAX_REQUEST_BYTES" in message
    assert api.count_runs() == 0


def test_internal_failure_is_500(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom with details")

    monkeypatch.setattr(api.runtime.storage, "list_runs_page", broken)
    message = failed(api.invoke("list_runs"), 500, "InternalError")
    assert "boom" not in message


def test_health_and_workflows_need_no_stack_settings(api: Api) -> None:
    api.module.reset()  # a container without a runtime, and no queue settings in the env
    assert ok(api.invoke("health")) == {"status": "ok"}
    assert ok(api.invoke("list_workflows"))["items"]
    failed(api.invoke("get_run", run_id="r"), 500, "InternalError")

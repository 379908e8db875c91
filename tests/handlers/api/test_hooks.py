"""Hooks through the HTTP API: the public webhook ``POST /hooks/{token}`` and the operator's
``POST /runs/{run_id}/hooks/{name}``, with every error a hook can answer."""

from __future__ import annotations

from pyworkflow.core.models import HookStatus, RunStatus
from tests.handlers.api import workflows as wf
from tests.handlers.api.conftest import Api


def waiting_run(api: Api, workflow: str = "api_waiter") -> tuple[str, str]:
    """A run suspended on its hook, and the hook's token."""
    response = api.http("POST", "/runs", {"workflow": workflow})
    assert response.status == 202
    run_id = response.body["run_id"]
    api.drive()
    assert api.get(run_id).status == RunStatus.SUSPENDED
    return run_id, wf.TOKENS[run_id]


def hook_status(api: Api, run_id: str) -> HookStatus:
    hooks = api.run(api.runtime.storage.list_hooks(run_id=run_id))
    assert len(hooks) == 1
    return hooks[0].status


def test_webhook_body_is_the_payload(api: Api) -> None:
    run_id, token = waiting_run(api)
    response = api.http("POST", f"/hooks/{token}", {"ok": True, "by": "ada"})
    assert response.status == 202
    assert response.body == {
        "run_id": run_id,
        "hook_id": response.body["hook_id"],
        "status": "resumed",
    }
    assert api.dispatcher.woken == [(run_id, "hook")]  # woken through the queue, not driven
    api.drive()
    run = api.get(run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == {"ok": True, "by": "ada"}


def test_webhook_twice_is_409(api: Api) -> None:
    _, token = waiting_run(api)
    assert api.http("POST", f"/hooks/{token}", {"ok": True}).status == 202
    again = api.http("POST", f"/hooks/{token}", {"ok": False})
    assert again.status == 409
    assert again.body["error"]["type"] == "HookAlreadyReceivedError"


def test_payload_failing_the_schema_is_422_and_the_hook_stays_pending(api: Api) -> None:
    run_id, token = waiting_run(api)
    response = api.http("POST", f"/hooks/{token}", {"ok": "perhaps"})
    assert response.status == 422
    assert response.body["error"]["type"] == "HookPayloadError"
    assert "Approval" in response.body["error"]["message"]
    assert hook_status(api, run_id) == HookStatus.PENDING
    assert api.dispatcher.woken == []
    # A body wrapped in {"payload": ...} is not unwrapped: the body *is* the payload.
    wrapped = api.http("POST", f"/hooks/{token}", {"payload": {"ok": True}})
    assert wrapped.status == 422
    assert api.http("POST", f"/hooks/{token}", {"ok": True}).status == 202
    api.drive()
    assert api.get(run_id).get_result() == {"ok": True, "by": "someone"}


def test_webhook_with_malformed_json_is_400_and_the_hook_stays_pending(api: Api) -> None:
    run_id, token = waiting_run(api)
    response = api.http("POST", f"/hooks/{token}", raw_body='{"ok": tru')
    assert response.status == 400
    assert response.body["error"]["type"] == "MalformedJSON"
    assert hook_status(api, run_id) == HookStatus.PENDING


def test_webhook_payload_may_be_any_json_value(api: Api) -> None:
    run_id, token = waiting_run(api, "api_expiring")
    assert api.http("POST", f"/hooks/{token}", ["a", 1, None]).status == 202
    api.drive()
    assert api.get(run_id).get_result() == "received"


def test_expired_hook_is_410(api: Api) -> None:
    run_id, token = waiting_run(api, "api_expiring")
    api.clock.advance(2 * 3600)  # past the hook's 1h timeout
    response = api.http("POST", f"/hooks/{token}", {"late": True})
    assert response.status == 410
    assert response.body["error"]["type"] == "HookExpiredError"
    assert api.dispatcher.woken == []


def test_hook_of_an_ended_run_is_410(api: Api) -> None:
    run_id, token = waiting_run(api)
    assert api.http("POST", f"/runs/{run_id}/cancel").status == 202
    api.drive()
    assert api.get(run_id).status == RunStatus.CANCELLED
    response = api.http("POST", f"/hooks/{token}", {"ok": True})
    assert response.status == 410
    assert "already ended" in response.body["error"]["message"]


def test_unknown_and_invalid_tokens_are_404(api: Api) -> None:
    waiting_run(api)
    for token in ("whk_doesnotexist", "x" * 300, "%20"):
        response = api.http("POST", f"/hooks/{token}", {"ok": True})
        assert response.status == 404, (token, response.body)
        assert response.body["error"]["type"] in ("HookNotFoundError", "InvalidTokenError")
        assert token not in response.body["error"]["message"]


def test_other_methods_on_a_hook_are_404_without_the_token(api: Api) -> None:
    _, token = waiting_run(api)
    response = api.http("GET", f"/hooks/{token}")
    assert response.status == 404
    assert token not in response.body["error"]["message"]
    assert "/hooks/{token}" in response.body["error"]["message"]


def test_resume_by_name(api: Api) -> None:
    run_id, _ = waiting_run(api)
    response = api.http(
        "POST",
        f"/runs/{run_id}/hooks/api%5Fapproval",  # quoted by a client
        {"ok": True, "by": "ops"},
    )
    assert response.status == 202
    assert response.body["run_id"] == run_id
    api.drive()
    assert api.get(run_id).get_result() == {"ok": True, "by": "ops"}
    again = api.http("POST", f"/runs/{run_id}/hooks/api_approval", {"ok": True})
    assert again.status == 409


def test_resume_by_name_errors(api: Api) -> None:
    run_id, _ = waiting_run(api)
    unknown = api.http("POST", f"/runs/{run_id}/hooks/api_nothing", 1)
    assert unknown.status == 404
    assert unknown.body["error"]["type"] == "HookNotFoundError"
    assert "api_nothing" in unknown.body["error"]["message"]
    bad = api.http("POST", f"/runs/{run_id}/hooks/api_approval", {"ok": []})
    assert bad.status == 422 and bad.body["error"]["type"] == "HookPayloadError"
    assert hook_status(api, run_id) == HookStatus.PENDING
    # the body is the payload itself on both hook routes: a {"payload": ...} wrapper is a
    # payload the hook's schema refuses, named as such
    wrapped = api.http("POST", f"/runs/{run_id}/hooks/api_approval", {"payload": {"ok": True}})
    assert wrapped.status == 422 and wrapped.body["error"]["type"] == "HookPayloadError"
    assert api.http("POST", f"/runs/{run_id}/hooks/api_approval", raw_body="[").status == 400
    assert hook_status(api, run_id) == HookStatus.PENDING

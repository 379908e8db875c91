"""The run page's forms, as the API handler serves them (no browser): cancel a run and resume a
hook by name through ``POST /ui/runs/{id}/cancel`` and ``POST /ui/runs/{id}/hooks/{name}``,
their CSRF token and origin checks (a refused form changes nothing), their error pages and the
message shown after an action."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from pyworkflow.handlers import ui_csrf
from pyworkflow.handlers.ui_templates.actions import CSRF_FIELD
from tests.handlers.ui import workflows as wf
from tests.handlers.ui.conftest import HOST, Viewer


def _forms(text: str) -> dict[str, tuple[str, str]]:
    """The run page's forms: ``cancel`` or ``hook:<name>`` → (action, CSRF token)."""
    found = {}
    for form in re.findall(r'<form class="action [^"]*".*?</form>', text, re.S):
        action = html.unescape(re.search(r' action="([^"]*)"', form).group(1))  # type: ignore[union-attr]
        token = html.unescape(re.search(rf'name="{CSRF_FIELD}" value="([^"]*)"', form).group(1))  # type: ignore[union-attr]
        hook = re.search(r'data-hook="([^"]*)"', form)
        found["hook:" + html.unescape(hook.group(1)) if hook else "cancel"] = (action, token)
    return found


def _waiting(viewer: Viewer, workflow: str = "ui_approval") -> str:
    run_id = viewer.start(workflow, "o-1")
    viewer.settle()
    assert viewer.run(run_id).status == "suspended"
    return run_id


def _form_of(viewer: Viewer, run_id: str, key: str) -> tuple[str, str]:
    """(the path the form posts to, its token), from the run page."""
    action, token = _forms(viewer.page(f"/ui/runs/{run_id}").text)[key]
    return "/ui/runs/" + action, token  # relative to /ui/runs/<id>


def _pending(viewer: Viewer, run_id: str) -> list[str]:
    from pyworkflow.service import hooks

    loop = viewer.module._loop
    return list(loop.run_until_complete(hooks.pending_hooks(viewer.runtime.storage, run_id)))


def _unchanged(viewer: Viewer, run_id: str, hooks: list[str]) -> None:
    run = viewer.run(run_id)
    assert run.status == "suspended" and not run.cancel_requested
    assert _pending(viewer, run_id) == hooks
    assert viewer.dispatcher.woken == []  # nothing was woken


def _message(page: Any) -> str:
    found = re.search(r'id="error-message">([^<]*)<', page.text)
    assert found, page.text
    return html.unescape(found.group(1))


def test_run_page_offers_cancel_and_a_resume_form_per_pending_hook(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    forms = _forms(viewer.page(f"/ui/runs/{run_id}").text)
    assert set(forms) == {"cancel", "hook:approval"}
    assert forms["cancel"][0] == f"{run_id}/cancel"
    assert forms["hook:approval"][0] == f"{run_id}/hooks/approval"
    assert forms["cancel"][1] != forms["hook:approval"][1]  # one token per action
    page = viewer.page(f"/ui/runs/{run_id}").text
    assert 'name="payload"' in page and 'name="reason"' in page
    assert "<script" not in page.lower()
    # A finished run offers nothing.
    viewer.raw("POST", f"/runs/{run_id}/hooks/approval", {"ok": 1})
    viewer.settle()
    assert 'id="actions"' not in viewer.page(f"/ui/runs/{run_id}").text


def test_cancel_form_cancels_the_run_and_redirects_to_its_page(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "cancel")
    answer = viewer.post_form(path, {CSRF_FIELD: token, "reason": "changed my mind"})
    assert answer.status == 303 and answer.text == ""
    assert answer.headers["Location"] == f"../{run_id}?done=cancelled"
    run = viewer.run(run_id)
    assert run.cancel_requested and run.cancel_reason == "changed my mind"
    viewer.settle()
    assert viewer.run(run_id).status == "cancelled"
    shown = viewer.page(f"/ui/runs/{run_id}", done="cancelled").text
    assert '<p class="flash" id="flash" role="status">Cancellation requested' in shown


def test_resume_form_delivers_the_json_payload_by_hook_name(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "hook:approval")
    payload = {"approved": True, "note": wf.XSS, "n": [1, 2.5, None]}
    answer = viewer.post_form(path, {CSRF_FIELD: token, "payload": json.dumps(payload)})
    assert answer.status == 303
    assert answer.headers["Location"] == f"../../{run_id}?done=resumed&hook=approval"
    viewer.settle()
    run = viewer.run(run_id)
    assert run.status == "completed"
    assert json.loads(run.result or "null") == {"order": "o-1", "payload": payload}


def test_a_form_body_api_gateway_base64_encoded_is_read(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "hook:approval")
    answer = viewer.post_form(path, {CSRF_FIELD: token, "payload": "[1]"}, base64=True)
    assert answer.status == 303
    viewer.settle()
    assert viewer.run(run_id).status == "completed"


@pytest.mark.parametrize(
    "token",
    ["missing", "empty", "garbage", "forged", "other run", "other action", "other hook", "expired"],
)
def test_a_form_without_a_valid_csrf_token_is_403_and_changes_nothing(
    viewer: Viewer, token: str
) -> None:
    run_id = _waiting(viewer)
    other = _waiting(viewer)
    cancel_path, cancel_token = _form_of(viewer, run_id, "cancel")
    hook_path, hook_token = _form_of(viewer, run_id, "hook:approval")
    sent = {
        "missing": None,
        "empty": "",
        "garbage": "not-a-token",
        "forged": cancel_token.split(".")[0] + "." + "A" * 43,
        "other run": _form_of(viewer, other, "cancel")[1],
        "other action": hook_token,  # the hook form's token, on the cancel route
        "other hook": ui_csrf.issue(ui_csrf.hook_action("other"), run_id),
        "expired": ui_csrf.issue(
            ui_csrf.cancel_action(), run_id, now=int(cancel_token.split(".")[0]) - 13 * 3600
        ),
    }[token]
    fields = {} if sent is None else {CSRF_FIELD: sent}
    refused = viewer.post_form(cancel_path, {**fields, "reason": "x"})
    assert refused.status == 403 and refused.headers["Content-Type"].startswith("text/html")
    assert "CSRF token" in _message(refused) and "Location" not in refused.headers
    # The hook form with the same kind of token is refused the same way (except "other action",
    # which is this form's own token: sent here, the cancel form's token stands in for it).
    hook_sent = cancel_token if token == "other action" else sent
    hook_fields = {} if hook_sent is None else {CSRF_FIELD: hook_sent}
    assert viewer.post_form(hook_path, {**hook_fields, "payload": "{}"}).status == 403
    _unchanged(viewer, run_id, ["approval"])


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "http://" + HOST + ".evil.example"},
        {"origin": "null"},
        {"origin": None, "referer": "https://evil.example/ui/runs/x"},
        {"origin": None},
    ],
    ids=["other-site", "lookalike-host", "opaque-origin", "cross-site-referer", "no-origin"],
)
def test_a_cross_origin_form_is_403_and_changes_nothing(
    viewer: Viewer, headers: dict[str, str | None]
) -> None:
    run_id = _waiting(viewer)
    cancel_path, cancel_token = _form_of(viewer, run_id, "cancel")
    hook_path, hook_token = _form_of(viewer, run_id, "hook:approval")
    refused = viewer.post_form(cancel_path, {CSRF_FIELD: cancel_token}, headers=headers)
    assert refused.status == 403 and "Location" not in refused.headers
    assert re.search(r"origin|Origin|Referer", _message(refused))
    resume = viewer.post_form(hook_path, {CSRF_FIELD: hook_token, "payload": "{}"}, headers=headers)
    assert resume.status == 403
    _unchanged(viewer, run_id, ["approval"])


def test_a_same_origin_referer_or_a_listed_proxy_origin_is_accepted(
    viewer: Viewer, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "cancel")
    proxy = {"origin": "http://localhost:8080"}
    assert viewer.post_form(path, {CSRF_FIELD: token}, headers=proxy).status == 403
    monkeypatch.setenv("PYWORKFLOW_UI_ORIGINS", "https://other.example, http://localhost:8080/")
    assert viewer.post_form(path, {CSRF_FIELD: token}, headers=proxy).status == 303
    referer = {"origin": None, "referer": f"https://{HOST}/ui/runs/{run_id}"}
    assert viewer.post_form(path, {CSRF_FIELD: token}, headers=referer).status == 303
    assert viewer.run(run_id).cancel_requested


def test_a_payload_that_is_not_json_is_a_400_page(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "hook:approval")
    for bad in ("{approved: yes}", "", "1" * 5000):
        page = viewer.post_form(path, {CSRF_FIELD: token, "payload": bad})
        assert page.status == 400 and page.headers["Content-Type"].startswith("text/html")
        assert _message(page).startswith("The payload must be JSON")
        assert f'id="back-to-run" href="../../{run_id}"' in page.text
        assert 'href="../../../../ui"' in page.text  # the list, from /ui/runs/<id>/hooks/<name>
    _unchanged(viewer, run_id, ["approval"])


def test_a_payload_the_hook_schema_refuses_is_a_422_page_with_its_message(
    viewer: Viewer,
) -> None:
    run_id = _waiting(viewer, "ui_typed_approval")
    path, token = _form_of(viewer, run_id, "hook:decision")
    page = viewer.post_form(path, {CSRF_FIELD: token, "payload": '{"approved": "maybe"}'})
    assert page.status == 422
    assert "Payload for hook 'decision' does not match Decision" in _message(page)
    _unchanged(viewer, run_id, ["decision"])
    ok = viewer.post_form(path, {CSRF_FIELD: token, "payload": '{"approved": false}'})
    assert ok.status == 303
    viewer.settle()
    assert json.loads(viewer.run(run_id).result or "null")["decision"] == {"approved": False}


def test_a_hook_already_resumed_is_a_409_page(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "hook:approval")
    assert viewer.post_form(path, {CSRF_FIELD: token, "payload": "1"}).status == 303
    again = viewer.post_form(path, {CSRF_FIELD: token, "payload": "2"})
    assert again.status == 409, again.text


def test_cancelling_a_run_that_ended_is_a_409_page(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "cancel")
    viewer.raw("POST", f"/runs/{run_id}/hooks/approval", {"ok": 1})
    viewer.settle()
    page = viewer.post_form(path, {CSRF_FIELD: token})
    assert page.status == 409 and "already ended (completed)" in _message(page)
    assert f'id="back-to-run" href="../{run_id}"' in page.text
    assert viewer.run(run_id).status == "completed"


def test_a_reason_over_the_api_limit_is_a_422_page(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "cancel")
    page = viewer.post_form(path, {CSRF_FIELD: token, "reason": "x" * 1001})
    assert page.status == 422 and "reason" in _message(page)
    _unchanged(viewer, run_id, ["approval"])


def test_a_body_that_is_not_a_form_is_refused(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    path, token = _form_of(viewer, run_id, "cancel")
    page = viewer.post_form(path, {CSRF_FIELD: token}, headers={"content-type": "text/plain"})
    assert page.status == 415
    _unchanged(viewer, run_id, ["approval"])


def test_the_message_after_an_action_is_escaped_and_only_ours(viewer: Viewer) -> None:
    run_id = _waiting(viewer)
    shown = viewer.page(f"/ui/runs/{run_id}", done="resumed", hook=wf.XSS).text
    assert f"Payload delivered to hook <code>{html.escape(wf.XSS)}</code>." in shown
    assert not re.search(r"<\s*(script|img)", shown, re.I)
    # Any other text in the query is no message at all.
    for query in ({"done": "Your account is locked"}, {"flash": "hi"}, {"done": "resumed"}):
        assert 'id="flash"' not in viewer.page(f"/ui/runs/{run_id}", **query).text


def test_a_page_waiting_on_a_hook_does_not_refresh_under_a_typed_payload(
    viewer: Viewer,
) -> None:
    waiting = viewer.page(f"/ui/runs/{_waiting(viewer)}").text
    assert "http-equiv" not in waiting
    running = viewer.start("ui_order", "o-2")  # not driven yet: pending, no hook
    page = viewer.page(f"/ui/runs/{running}").text
    assert f'<meta http-equiv="refresh" content="5; url=./{running}">' in page
    assert _forms(page).keys() == {"cancel"}


def test_tokens_survive_containers_only_with_ui_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    action = ui_csrf.cancel_action()
    random_token = ui_csrf.issue(action, "r1")
    assert ui_csrf.token_problem(random_token, action, "r1") == ""
    monkeypatch.setattr(ui_csrf, "_RANDOM_KEY", b"another container" * 2)
    assert "not valid" in ui_csrf.token_problem(random_token, action, "r1")
    monkeypatch.setenv("PYWORKFLOW_UI_SECRET", "s3cret")
    shared = ui_csrf.issue(action, "r1")
    monkeypatch.setattr(ui_csrf, "_RANDOM_KEY", b"a third container" * 2)
    assert ui_csrf.token_problem(shared, action, "r1") == ""
    monkeypatch.setenv("PYWORKFLOW_UI_SECRET", "rotated")
    assert "not valid" in ui_csrf.token_problem(shared, action, "r1")
    # The secret never shows in the settings' repr.
    from pyworkflow.settings import get_settings

    assert "rotated" not in repr(get_settings())

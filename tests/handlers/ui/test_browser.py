"""The viewer in a real browser: headless Chromium (``tests/handlers/ui/browser.py``) on the local
AWS stack that ``pyworkflow dev`` runs (``pyworkflow.dev.stack.LocalStack``: DynamoDB Local, the
worker fed by the work queue, timers fired through EventBridge Scheduler), a workflow with steps, a
retry, a sleep, a child and a continue-as-new, and the pages checked as a user would see them.
Saves screenshots under ``.cache/screenshots/`` (``run.png``: the run page; ``actions.png``: a run
page with its forms) and prints their paths. The run page's forms are filled and submitted too.

Needs Chromium (``apt-get install -y chromium``), Node.js + npm (playwright-core is installed
into ``.cache/`` on first use) and Java 17 (DynamoDB Local); each missing piece fails with how
to install it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from pyworkflow.dev.stack import LocalStack
from tests.handlers.ui import workflows as wf
from tests.handlers.ui.browser import SCREENSHOT_DIR, Browser, BrowserError


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    from pyworkflow.dev.dynamodb_local import DynamoDBLocalError, running

    try:
        with (
            running() as ddb,
            LocalStack(
                module="tests.handlers.ui.workflows",
                port=0,
                stack_name="ui",
                tick_seconds=0.2,
                dynamodb_endpoint=ddb.endpoint_url,
                # Every wait (the retry's backoff, the sleep) goes through a Scheduler schedule.
                env={
                    "PYWORKFLOW_SQS_DELAY_MAX_SECONDS": "0",
                    "POWERTOOLS_METRICS_DISABLED": "true",
                    "POWERTOOLS_LOG_LEVEL": "WARNING",
                },
            ) as local,
        ):
            yield local
    except DynamoDBLocalError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        with Browser() as b:
            b.call("version")  # fails here, with the hint, if Chromium cannot start
            yield b
    except BrowserError as exc:
        pytest.fail(str(exc), pytrace=False)


def _api(stack: LocalStack, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        stack.api_url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait_for(stack: LocalStack, run_id: str, *statuses: str, timeout: float = 90) -> Any:
    """Poll until the run is in one of ``statuses`` (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        run = _api(stack, "GET", f"/runs/{run_id}")
        if run["status"] in statuses:
            return run
        assert run["status"] not in ("failed", "cancelled"), run
        assert time.monotonic() < deadline, f"run {run_id} is still {run['status']}"
        time.sleep(0.2)


def test_the_viewer_in_chromium(stack: LocalStack, browser: Browser) -> None:
    order = "o-" + wf.XSS  # markup in the arguments, results and errors
    first = _api(stack, "POST", "/runs", {"workflow": "ui_order", "args": [order]})["run_id"]
    second = _wait_for(stack, first, "continued_as_new")["continued_to_run_id"]
    _wait_for(stack, second, "completed")
    events = _api(stack, "GET", f"/runs/{second}/events")["items"]
    ui = stack.api_url + "/ui"

    # The list: every run of the chain and its children, newest first.
    assert browser.goto(ui) == 200
    ids = browser.attrs("#runs tr.run", "data-run-id")
    assert {first, second, f"{first}-c3", f"{second}-c3"} <= set(ids)
    (row,) = browser.texts(f'#runs tr.run[data-run-id="{first}"]')
    assert "ui_order" in row and "continued as new" in row
    browser.screenshot(SCREENSHOT_DIR / "runs.png")

    # Filters, through the form.
    browser.select("#filter-workflow", "ui_child")
    assert "workflow=ui_child" in browser.click("#apply")
    assert set(browser.attrs("#runs tr.run", "data-run-id")) >= {f"{first}-c3", f"{second}-c3"}
    assert {t.split("\t")[1] for t in browser.texts("#runs tr.run")} == {"ui_child"}
    # A page of one run, then the next page through the cursor.
    assert browser.goto(ui + "?workflow=ui_order&limit=1") == 200
    (newest,) = browser.attrs("#runs tr.run", "data-run-id")
    assert "cursor=" in browser.click("#next-page")
    (older,) = browser.attrs("#runs tr.run", "data-run-id")
    assert {newest, older} == {first, second}

    # The first run's page, reached by its link; then on to the next run of the chain.
    browser.goto(ui)
    assert browser.click(f'#runs tr.run[data-run-id="{first}"] a.run-link').endswith(
        f"/ui/runs/{first}"
    )
    assert browser.texts("#run-id") == [first]
    assert browser.click("a.chain-next").endswith(f"/ui/runs/{second}")

    # The second run's timeline: every event, in order, with what each one says.
    assert browser.attrs("#timeline tr.event", "data-type") == [e["type"] for e in events]
    assert browser.attrs("#timeline tr.event", "data-seq") == [str(e["sequence"]) for e in events]
    (retry,) = browser.texts('#timeline tr.event[data-type="step.retrying"]')
    assert "attempt 1" in retry and "RuntimeError: card declined" in retry and wf.XSS in retry
    (charge,) = browser.texts('#operations tr.op[data-op="1"]')
    assert "charge" in charge and "completed" in charge
    assert browser.texts('#operations tr.op[data-op="1"] td.attempts') == ["2"]
    assert browser.texts('#operations tr.op[data-kind="sleep"] td.outcome') == ["slept"]
    assert browser.texts("#children a.child") == [f"{second}-c3"]
    assert browser.attrs("a.chain-prev", "href") == [f"./{first}"]
    assert browser.count("a.chain-next") == 0
    assert json.dumps(wf.XSS)[1:-1] in browser.texts("#result")[0]  # as JSON text
    shot = browser.screenshot(SCREENSHOT_DIR / "run.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"\nscreenshots: {shot} {SCREENSHOT_DIR / 'runs.png'}")

    # Nothing the runs carried became markup: no script or image element, nothing ran, no
    # error (a script blocked by the page's policy would be a console error).
    for path in (ui, f"{ui}/runs/{first}", f"{ui}/runs/{second}"):
        browser.goto(path)
        assert browser.count("script, img, iframe, object, embed") == 0
        assert browser.evaluate("typeof window.__xss") == "undefined"
    assert browser.problems() == []

    # The child's page links back to its parent.
    assert browser.click("#children a.child").endswith(f"/ui/runs/{second}-c3")
    assert browser.attrs("a.parent", "href") == [f"./{second}"]


def test_a_missing_chromium_fails_with_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.handlers.ui import browser as module

    monkeypatch.setenv(module.ENV_CHROMIUM, "/nonexistent/chromium")
    with pytest.raises(BrowserError, match="apt-get install -y chromium"):
        module.find_chromium()


def test_the_run_page_forms_resume_a_hook_and_cancel_a_run_in_chromium(
    stack: LocalStack, browser: Browser
) -> None:
    ui = stack.api_url + "/ui"
    resumed = _api(stack, "POST", "/runs", {"workflow": "ui_approval", "args": ["o-1"]})["run_id"]
    cancelled = _api(stack, "POST", "/runs", {"workflow": "ui_approval", "args": ["o-2"]})["run_id"]
    for run_id in (resumed, cancelled):
        _wait_for(stack, run_id, "suspended")

    # Resume the hook by name: the payload typed into the form reaches the workflow.
    assert browser.goto(f"{ui}/runs/{resumed}") == 200
    assert browser.attrs("form.resume-hook", "data-hook") == ["approval"]
    browser.screenshot(SCREENSHOT_DIR / "actions.png")  # the run page with its forms
    payload = {"approved": True, "note": wf.XSS}
    browser.fill('form.resume-hook[data-hook="approval"] textarea', json.dumps(payload))
    landed = browser.click('form.resume-hook[data-hook="approval"] button[type="submit"]')
    assert landed.endswith(f"/ui/runs/{resumed}?done=resumed&hook=approval")
    assert browser.texts("#flash") == ["Payload delivered to hook approval."]
    run = _wait_for(stack, resumed, "completed")
    assert run["result"] == {"order": "o-1", "payload": payload}
    browser.goto(f"{ui}/runs/{resumed}")
    assert browser.texts("dl.facts .badge") == ["completed"]
    assert browser.count("#actions form") == 0  # an ended run offers nothing

    # A payload that is not JSON: the 400 page, and the hook still waits.
    browser.goto(f"{ui}/runs/{cancelled}")
    browser.fill('form.resume-hook[data-hook="approval"] textarea', "{approved: yes}")
    browser.click('form.resume-hook[data-hook="approval"] button[type="submit"]')
    (message,) = browser.texts("#error-message")
    assert message.startswith("The payload must be JSON")
    assert browser.click("#back-to-run").endswith(f"/ui/runs/{cancelled}")

    # Cancel, with a reason: the run ends cancelled and its page says so.
    browser.fill("form.cancel-run input[name=reason]", "not needed")
    landed = browser.click("form.cancel-run button[type=submit]")
    assert landed.endswith(f"/ui/runs/{cancelled}?done=cancelled")
    assert browser.texts("#flash")[0].startswith("Cancellation requested")
    deadline = time.monotonic() + 90
    while _api(stack, "GET", f"/runs/{cancelled}")["status"] != "cancelled":
        assert time.monotonic() < deadline, "the run was not cancelled"
        time.sleep(0.2)
    browser.goto(f"{ui}/runs/{cancelled}")
    assert browser.texts("dl.facts .badge") == ["cancelled"]
    browser.screenshot(SCREENSHOT_DIR / "cancelled.png")
    # The forms needed no script and none ran: the one console line is the 400 page's status.
    assert browser.problems() == [
        "console: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]

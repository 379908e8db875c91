"""The viewer's pages as the API handler serves them (no browser): the run list with its
filters and cursor pages, one run's timeline, escaping of user data, error pages, headers."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import parse_qsl

import pytest

from pyworkflow.handlers.ui_templates.html import CSS
from tests.handlers.ui import workflows as wf
from tests.handlers.ui.conftest import Viewer

ESCAPED_XSS = html.escape(wf.XSS, quote=True)


def _attr(text: str, name: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(rf'{name}="([^"]*)"', text)]


def _order(viewer: Viewer, order: str = "o-1") -> tuple[str, str]:
    """Runs ``ui_order`` to the end: (its first run, the run it continued as)."""
    first = viewer.start("ui_order", order)
    viewer.settle()
    second = viewer.run(first).continued_to_run_id
    assert second is not None and viewer.run(second).status == "completed"
    return first, second


def test_list_shows_every_run_and_links_to_each(viewer: Viewer) -> None:
    first, second = _order(viewer)
    page = viewer.page("/ui")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    ids = _attr(page.text, "data-run-id")
    # Both runs of the chain and each round's child, newest first.
    assert set(ids) == {first, second, f"{first}-c3", f"{second}-c3"}
    hrefs = _attr(page.text, 'class="run-link" href')
    assert hrefs == [f"ui/runs/{i}" for i in ids]  # relative: works under a stage prefix
    assert f'data-run-id="{first}" data-status="continued_as_new"' in page.text


def test_list_filters_by_status_and_workflow(viewer: Viewer) -> None:
    first, second = _order(viewer)
    children = viewer.page("/ui", workflow="ui_child")
    assert set(_attr(children.text, "data-run-id")) == {f"{first}-c3", f"{second}-c3"}
    assert '<option value="ui_child" selected>' in children.text
    continued = viewer.page("/ui", status="continued_as_new", workflow="ui_order")
    assert _attr(continued.text, "data-run-id") == [first]
    none = viewer.page("/ui", status="failed")
    assert 'id="no-runs"' in none.text and "data-run-id" not in none.text


def test_list_pages_with_the_api_cursor(viewer: Viewer) -> None:
    _order(viewer)
    seen: list[str] = []
    query: dict[str, str] = {"limit": "3"}
    for _ in range(5):
        page = viewer.page("/ui", **query)
        assert page.status == 200
        seen += _attr(page.text, "data-run-id")
        assert ('id="first-page"' in page.text) == ("cursor" in query)
        nxt = _attr(page.text, 'id="next-page" href')
        if not nxt:
            break
        assert nxt[0].startswith("?")
        query = dict(parse_qsl(nxt[0][1:]))
        assert query["limit"] == "3"
    assert len(seen) == 4 and len(set(seen)) == 4


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ({"status": "bogus"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_filters_are_a_400_page(viewer: Viewer, query: dict[str, str], needle: str) -> None:
    page = viewer.page("/ui", **query)
    assert page.status == 400 and page.headers["Content-Type"].startswith("text/html")
    message = re.search(r'id="error-message">([^<]*)<', page.text)
    assert message and needle in message.group(1).lower()


def test_run_page_shows_the_timeline_in_order(viewer: Viewer) -> None:
    first, second = _order(viewer)
    events = json.loads(viewer.raw("GET", f"/runs/{second}/events")["body"])["items"]
    page = viewer.page(f"/ui/runs/{second}")
    assert page.status == 200
    rows = re.findall(
        r'<tr class="event[^"]*" data-seq="(\d+)" data-type="([^"]+)">'
        r'<td class="num">\d+</td><td class="num">([^<]+)</td>',
        page.text,
    )
    assert [(int(s), t) for s, t, _ in rows] == [(e["sequence"], e["type"]) for e in events]
    # The manual clock moves only for the retry's backoff (1 s) and the sleep (1 s).
    offsets = {t: o for _, t, o in rows}
    assert offsets["workflow.started"] == "+0.0 ms"
    assert offsets["sleep.started"] == "+1.0 s" and offsets["workflow.completed"] == "+2.0 s"
    assert 'class="event retry" data-seq="3" data-type="step.retrying"' in page.text
    assert "attempt 2" in page.text


def _op_row(text: str, op: int) -> str:
    match = re.search(rf'<tr class="op[^"]*" data-op="{op}".*?</tr>', text, re.S)
    assert match, op
    return match.group(0)


def test_run_page_shows_durations_waits_retries_and_children(viewer: Viewer) -> None:
    _, second = _order(viewer)
    text = viewer.page(f"/ui/runs/{second}").text
    charge = _op_row(text, 1)
    assert 'data-kind="step"' in charge and 'class="op retry"' in charge
    assert '<td class="num attempts">2</td>' in charge
    assert '<td class="num duration">1.0 s</td>' in charge  # first failure → success
    # where the failed attempt raised, folded under the row (user frames only)
    assert '<details class="traceback"><summary>stack trace</summary><pre>' in charge
    assert "in charge" in charge and "pyworkflow/core" not in charge
    sleep = _op_row(text, 2)
    assert 'data-kind="sleep"' in sleep and '<td class="outcome">slept</td>' in sleep
    assert '<td class="num duration">1.0 s</td>' in sleep
    child = _op_row(text, 3)
    assert f'href="./{second}-c3"' in child and "completed" in child
    assert f'<ul id="children"><li><a class="child" href="./{second}-c3">' in text
    assert '<div id="result">' in text and "charged o-1" in text


def test_continue_as_new_chain_links_both_ways(viewer: Viewer) -> None:
    first, second = _order(viewer)
    one = viewer.page(f"/ui/runs/{first}").text
    two = viewer.page(f"/ui/runs/{second}").text
    assert _attr(one, 'class="chain-next" href') == [f"./{second}"]
    assert "chain-prev" not in one
    assert _attr(two, 'class="chain-prev" href') == [f"./{first}"]
    assert "chain-next" not in two
    for text in (one, two):
        chain = re.search(r'<ol class="chain" id="chain">.*?</ol>', text)
        assert chain and _attr(chain.group(0), "data-run-id") == [first, second]
    assert f'<li class="current" data-run-id="{second}">' in two
    # The child's page links back to its parent.
    child = viewer.page(f"/ui/runs/{second}-c3").text
    assert _attr(child, 'class="parent" href') == [f"./{second}"]


def test_user_data_is_text_never_markup(viewer: Viewer) -> None:
    first, second = _order(viewer, order=wf.XSS)  # markup in the arguments too
    pages = [viewer.page("/ui"), viewer.page("/ui", workflow=wf.XSS)]
    pages += [viewer.page(f"/ui/runs/{r}") for r in (first, second, f"{second}-c3")]
    for page in pages:
        assert page.status == 200
        assert not re.search(r"<\s*(script|img)|onerror\s*=\s*[\"']", page.text, re.I)
    run_page = pages[3].text
    assert ESCAPED_XSS in run_page  # the error message of the retry
    assert html.escape(json.dumps(wf.XSS)[1:-1]) in run_page  # inside JSON payloads
    # A run id made of markup, in the path: a 404 page that shows it as text.
    missing = viewer.page("/ui/runs/" + "%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert missing.status == 404 and not re.search(r"<\s*script", missing.text, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in missing.text


def test_hook_tokens_never_appear(viewer: Viewer) -> None:
    run_id = viewer.start("ui_approval", "o-9")
    viewer.settle()
    token = wf.TOKENS[run_id]
    waiting = viewer.page(f"/ui/runs/{run_id}")
    assert viewer.run(run_id).status == "suspended"
    # still going, but waiting on the hook: no refresh under its form (test_actions.py)
    assert 'data-hook="approval"' in waiting.text and "http-equiv" not in waiting.text
    assert 'data-type="hook.created"' in waiting.text and "waiting" in waiting.text
    answer = viewer.raw("POST", f"/hooks/{token}", {"ok": True, "note": wf.XSS})
    assert answer["statusCode"] == 202
    viewer.settle()
    done = viewer.page(f"/ui/runs/{run_id}")
    assert 'data-type="hook.received"' in done.text and "http-equiv" not in done.text
    assert '<td class="outcome">received</td>' in done.text
    for page in (waiting, done, viewer.page("/ui")):
        assert token not in page.text
        assert token.split("_", 1)[1] not in page.text
        assert "<script" not in page.text.lower()


def test_pages_forbid_scripts_and_framing(viewer: Viewer) -> None:
    _order(viewer)
    for path in ("/ui", "/ui/runs/nope"):
        page = viewer.page(path)
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Cache-Control"] == "no-store"
    # The one inline style block is the one the policy's hash allows.
    assert f"<style>{CSS}</style>" in viewer.page("/ui").text


def test_unknown_run_is_a_404_page(viewer: Viewer) -> None:
    page = viewer.page("/ui/runs/run_missing")
    assert page.status == 404 and page.headers["Content-Type"].startswith("text/html")
    assert "run_missing" in page.text and 'href="../../ui"' in page.text


def test_the_api_keeps_its_json_and_openapi(viewer: Viewer) -> None:
    answer = viewer.raw("GET", "/openapi.json")
    paths = json.loads(answer["body"])["paths"]
    assert "/runs" in paths and not [p for p in paths if p.startswith("/ui")]
    missing = viewer.raw("GET", "/runs/run_missing")
    assert missing["statusCode"] == 404
    assert json.loads(missing["body"])["error"]["type"] == "WorkflowNotFoundError"
    nowhere = viewer.raw("GET", "/nowhere")
    assert nowhere["statusCode"] == 404 and json.loads(nowhere["body"])["error"]

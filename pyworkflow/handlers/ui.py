"""The run viewer: ``GET /ui`` (runs, filtered by status and workflow, a page at a time) and
``GET /ui/runs/{run_id}`` (one run's timeline), server-rendered HTML on the API's own
operations (``api_ops.py``), so the pages show exactly what ``GET /runs`` & co. answer.

It acts too, through plain HTML forms on the run page: ``POST /ui/runs/{run_id}/cancel``
(field ``reason``, optional) and ``POST /ui/runs/{run_id}/hooks/{name}`` (field ``payload``, JSON
text), form-encoded, calling the operations of ``POST /runs/{run_id}/cancel`` and
``POST /runs/{run_id}/hooks/{name}``. Success is a 303 back to the run page
(``?done=...``: a code the page turns into its message); a failure is an HTML page with the
status and message the JSON route would answer. Each form carries a CSRF token and must come
from our own origin (``ui_csrf.py``): otherwise a 403 page, and nothing is done.

Served wherever ``api.py`` is: by ``pyworkflow dev`` at http://127.0.0.1:8787/ui, and
by a deployed stack, where the HTTP API requires IAM auth on these routes like on every route
but the webhook and health check. A browser does not sign requests: use ``pyworkflow dev``
locally, and reach a deployed stack's pages through a SigV4-signing proxy (one that signs for
``execute-api`` with credentials allowed to invoke the API, e.g. ``aws-sigv4-proxy``).

Safety: every value from a run is escaped (``ui_templates/html.py``) and the pages
carry a Content-Security-Policy that allows no script at all. Hook tokens never appear: they are
not in runs or events (only their hashes are stored, in hook records this viewer never reads).
Errors are HTML pages with the API's status and message; this router registers no exception
handler, which would replace the API's own for every route.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, quote, unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from pyworkflow.core.models import WorkflowRun
from pyworkflow.handlers import api_ops as ops
from pyworkflow.handlers import ui_csrf as csrf
from pyworkflow.handlers.api_models import CancelRequest, ListRunsQuery, refuse_unencodable_text
from pyworkflow.handlers.ui_templates.actions import (
    CSRF_FIELD,
    PAYLOAD_FIELD,
    REASON_FIELD,
    Actions,
    done_query,
    flash,
)
from pyworkflow.handlers.ui_templates.html import CSP, LIST_HREF_FROM_RUN, Html, error_page
from pyworkflow.handlers.ui_templates.runs import render_run_list
from pyworkflow.handlers.ui_templates.timeline import render_run_page
from pyworkflow.runtime.aws import AwsRuntime

T = TypeVar("T")
logger = logging.getLogger("pyworkflow")

DEFAULT_PAGE_SIZE = 50
#: Headers of every page: no script, no framing, no caching of run data, a referrer to our own
#: origin only (the list's URL may hold a cursor; and under "no-referrer" a browser would send
#: a form's POST with ``Origin: null``, which the forms' origin check refuses).
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIGatewayHttpRouter()


def _html(status: int, body: Html) -> Response[str]:
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        body=body,
        headers=dict(HEADERS),
    )


#: How a page runs an operation on the container's runtime: given by ``pyworkflow.handlers.api``,
#: which serves these pages (``bind``), so this module never imports it back.
_runner: Callable[[Callable[[AwsRuntime], Coroutine[Any, Any, Any]]], Any] | None = None


def bind(runner: Callable[[Callable[[AwsRuntime], Coroutine[Any, Any, Any]]], Any]) -> None:
    global _runner
    _runner = runner


def _call(make: Callable[[AwsRuntime], Coroutine[Any, Any, T]]) -> T:
    if _runner is None:
        raise RuntimeError("the run viewer is served by pyworkflow.handlers.api, which binds it")
    return cast(T, _runner(make))


def _render(home_href: str, build: Callable[[], Html]) -> Response[str]:
    """``build()``'s page, or an error page with the status the API would answer."""
    try:
        return _html(200, build())
    except Exception as error:  # noqa: BLE001 - every failure becomes an error page
        return _error(error, home_href)


def _error(error: BaseException, home_href: str, back_href: str | None = None) -> Response[str]:
    status, body = ops.error_for(error, _request_id())
    if status >= 500:
        logger.exception("viewer page failed")
    title = "Bad request" if status in (400, 422) else body.error.type
    return _html(
        status,
        error_page(status, title, body.error.message, home_href=home_href, back_href=back_href),
    )


def _request_id() -> str | None:
    try:
        return str(router.current_event.request_context.request_id)
    except Exception:  # noqa: BLE001 - outside a request
        return None


def _query() -> ListRunsQuery:
    params = router.current_event.query_string_parameters or {}
    given = {
        k: v
        for k, v in params.items()
        if k in ("status", "workflow", "limit", "cursor") and v != ""
    }
    given.setdefault("limit", str(DEFAULT_PAGE_SIZE))
    try:
        return ListRunsQuery.model_validate(given)
    except ValidationError as error:
        raise ops.ApiError(400, "InvalidFilter", ops.validation_message(error.errors())) from None


def _as_run(view: Any) -> WorkflowRun:
    return WorkflowRun.from_json_values(view.model_dump(mode="json"))


@router.get("/ui", include_in_schema=False)
def runs_page() -> Response[str]:
    def build() -> Html:
        query = _query()

        async def fetch(rt: AwsRuntime) -> tuple[Any, Any]:
            return await ops.list_runs(rt, query), await ops.list_workflow_infos()

        runs, workflows = _call(fetch)
        return render_run_list(
            [_as_run(r) for r in runs.items],
            status=query.status.value if query.status else None,
            workflow=query.workflow,
            limit=query.limit,
            cursor=query.cursor,
            next_cursor=runs.next_cursor,
            workflows=[w.name for w in workflows.items],
        )

    return _render("ui", build)


@router.get("/ui/runs/<run_id>", include_in_schema=False)
def run_page(run_id: str) -> Response[str]:
    run_id = unquote(run_id)  # rawPath keeps the percent-encoding of the links we make

    def build() -> Html:
        async def fetch(rt: AwsRuntime) -> tuple[Any, Any, Any]:
            run = await ops.get_run(rt, run_id)  # first: a 404 for an unknown run
            return run, await ops.get_events(rt, run_id), await ops.get_chain(rt, run_id)

        run, events, chain = _call(fetch)
        view = _as_run(run)
        actions = Actions()
        if not view.status.is_terminal:
            names = _call(lambda rt: ops.pending_hooks(rt, run_id))
            actions = Actions(
                cancel_token=csrf.issue(csrf.cancel_action(), run_id),
                hook_tokens={n: csrf.issue(csrf.hook_action(n), run_id) for n in names},
            )
        query = router.current_event.query_string_parameters or {}
        return render_run_page(
            view,
            list(events.items),
            [_as_run(r) for r in chain.items],
            actions,
            flash(query),
        )

    return _render(LIST_HREF_FROM_RUN, build)


# --- actions ----------------------------------------------------------------------------------
FORM_TYPE = "application/x-www-form-urlencoded"
_MAX_FIELDS = 10


def _form(action: str, run_id: str) -> dict[str, str]:
    """The posted form's fields, once the request is shown to come from one of our run pages:
    our origin (else 403), a form body (else 415), a token for ``action`` on ``run_id`` (else
    403). Checked before anything is done."""
    event = router.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    problem = csrf.origin_problem(headers)
    if problem:
        raise ops.ApiError(403, "Forbidden", problem)
    if not headers.get("content-type", "").lower().startswith(FORM_TYPE):
        raise ops.ApiError(415, "UnsupportedMediaType", f"Send the form as {FORM_TYPE}")
    try:
        # decoded_body: API Gateway may base64-encode a form body
        parsed = parse_qs(
            event.decoded_body or "", keep_blank_values=True, max_num_fields=_MAX_FIELDS
        )
    except ValueError:
        raise ops.ApiError(400, "MalformedForm", "The form has too many fields") from None
    fields = {name: values[0] for name, values in parsed.items()}
    problem = csrf.token_problem(fields.get(CSRF_FIELD), action, run_id)
    if problem:
        raise ops.ApiError(403, "Forbidden", problem + ": reload the run page and submit again")
    return fields


def _act(run_id: str, up: str, act: Callable[[], str]) -> Response[str]:
    """``act()`` (which returns the run page's ``done`` query), answered with a 303 to the run
    page; or an error page. ``up``: from the action's URL to ``/ui/runs/``."""
    run_href = up + quote(run_id, safe="")
    try:
        query = act()
    except Exception as error:  # noqa: BLE001 - every failure becomes an error page
        status = ops.status_of(error)
        if status is not None:  # the type only, as the API logs a rejection (no payloads)
            kind = error.type if isinstance(error, ops.ApiError) else type(error).__name__
            logger.info("viewer form refused", extra={"status": status, "error_type": kind})
        return _error(error, up + "../../ui", back_href=run_href)
    headers = dict(HEADERS) | {"Location": f"{run_href}?{query}"}
    return Response(
        status_code=303, content_type="text/html; charset=utf-8", body="", headers=headers
    )


@router.post("/ui/runs/<run_id>/cancel", include_in_schema=False)
def cancel_form(run_id: str) -> Response[str]:
    run_id = unquote(run_id)

    def act() -> str:
        fields = _form(csrf.cancel_action(), run_id)
        reason = CancelRequest.model_validate({"reason": fields.get(REASON_FIELD) or None}).reason
        _call(lambda rt: ops.cancel_run(rt, run_id, reason))
        return done_query("cancelled")

    return _act(run_id, "../", act)


@router.post("/ui/runs/<run_id>/hooks/<name>", include_in_schema=False)
def resume_hook_form(run_id: str, name: str) -> Response[str]:
    run_id, name = unquote(run_id), unquote(name)

    def act() -> str:
        fields = _form(csrf.hook_action(name), run_id)
        try:
            payload = json.loads(fields.get(PAYLOAD_FIELD, ""))
        except ValueError as error:  # JSONDecodeError, or a number too long to parse
            raise ops.ApiError(400, "MalformedJSON", f"The payload must be JSON: {error}") from None
        refuse_unencodable_text(payload, "payload")
        _call(lambda rt: ops.resume_hook_by_name(rt, run_id, name, payload))
        return done_query("resumed", name)

    return _act(run_id, "../../", act)

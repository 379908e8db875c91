"""The run viewer: ``GET /ui`` (runs, filtered by status and workflow, a page at a time) and
``GET /ui/runs/{run_id}`` (one run's timeline), server-rendered HTML on the API's own
operations (``api_ops.py``), so the pages show exactly what ``GET /runs`` & co. answer.

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

import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.core.serde import dumps
from pyworkflow.handlers import api_ops as ops
from pyworkflow.handlers.api_models import ListRunsQuery
from pyworkflow.handlers.ui_templates.html import CSP, LIST_HREF_FROM_RUN, Html, error_page
from pyworkflow.handlers.ui_templates.runs import render_run_list
from pyworkflow.handlers.ui_templates.timeline import render_run_page
from pyworkflow.runtime.aws import AwsRuntime

T = TypeVar("T")
logger = logging.getLogger("pyworkflow")

DEFAULT_PAGE_SIZE = 50
#: Headers of every page: no script, no framing, no caching of run data, no referrer (the
#: list's URL may hold a cursor).
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
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
        status, body = ops.error_for(error, _request_id())
        if status >= 500:
            logger.exception("viewer page failed")
        title = "Bad request" if status in (400, 422) else body.error.type
        return _html(status, error_page(status, title, body.error.message, home_href=home_href))


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
    """A run from the API's view, whose ``result``/``input_args``/``input_kwargs`` are JSON
    values: back to the JSON text ``WorkflowRun`` keeps (``result`` only once completed), as the
    SDK's remote client does."""
    data = view.model_dump()
    for name in ("input_args", "input_kwargs"):
        if name in data:
            data[name] = dumps(data[name])
    data["result"] = (
        dumps(data.get("result")) if data.get("status") == RunStatus.COMPLETED else None
    )
    return WorkflowRun.model_validate(data)


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
        return render_run_page(_as_run(run), list(events.items), [_as_run(r) for r in chain.items])

    return _render(LIST_HREF_FROM_RUN, build)

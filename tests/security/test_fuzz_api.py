"""schemathesis against the API's own OpenAPI document (``GET /openapi.json``), over real HTTP.

The API Lambda (``pyworkflow.handlers.api``, on an ``AwsRuntime`` over SQLite) is served by a real
HTTP server on 127.0.0.1 that turns each request into an API Gateway HTTP API v2 event (with
``tests/client/apiserver.py``'s event builder), as the deployed stack does. Every operation of the
document is fuzzed with positive data (fits the schema) and negative data (does not), once with
generated path parameters and once more with ids that exist (a suspended run, a finished run, a
schedule), so that the answers past the 404 are reached too.

The properties: no 5xx, every response (status, content type, headers, body) matches the
document, and data that does not fit the schema is refused with a 4xx. The run is bounded by
``MAX_EXAMPLES`` per operation and mode; the figures (requests, operations, statuses,
failures) are printed. Failures are collected, not stopped at, so one run lists them all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pyworkflow.core.models import RunStatus
from tests.client.apiserver import Handler, to_response, v2_event
from tests.handlers.api import workflows as api_wf
from tests.handlers.api.conftest import Api

#: Examples per operation, mode and id set: CI's run stays well under 60 s. A longer hunt:
#: PYWORKFLOW_FUZZ_EXAMPLES=200 PYWORKFLOW_FUZZ_SEED=random pytest tests/security/test_fuzz_api.py
MAX_EXAMPLES = int(os.environ.get("PYWORKFLOW_FUZZ_EXAMPLES", "12"))
DERANDOMIZE = os.environ.get("PYWORKFLOW_FUZZ_SEED", "fixed") != "random"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


async def _endpoint(handler: Handler, lock: asyncio.Lock, request: web.BaseRequest) -> web.Response:
    body = await request.read()
    event = v2_event(request.method, request.raw_path, dict(request.headers), body)
    async with lock:  # one request at a time, like one Lambda container
        answer = await asyncio.to_thread(handler, event, None)
    return to_response(answer)


@contextmanager
def served(handler: Handler) -> Iterator[str]:
    """``handler`` behind a real HTTP server on 127.0.0.1, running on a loop of its own
    thread so that the test (and schemathesis, which is synchronous) can call it; yields its
    base URL. Requests become API Gateway v2 events with tests/client/apiserver.py's
    ``v2_event``; the server is aiohttp's low-level one, without a router, because the
    router's ``/{tail:.*}`` does not match a path holding a newline (``%0A``) and answered
    such requests itself with a text/plain 404 the API never gave."""
    ready = threading.Event()
    url: list[str] = []
    stop: list[Callable[[], None]] = []

    async def main() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop.append(lambda: loop.call_soon_threadsafe(done.set))
        lock = asyncio.Lock()
        runner = web.ServerRunner(web.Server(partial(_endpoint, handler, lock)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url.append(f"http://127.0.0.1:{port}")
        ready.set()
        try:
            await done.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the API server did not start")
    try:
        yield url[0]
    finally:
        stop[0]()
        thread.join(30)


@dataclass
class Figures:
    requests: int = 0
    operations: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # one per (operation, check, status)
    no_negative: set[str] = field(default_factory=set)  # operations with nothing to negate

    def report(self, seconds: float) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"schemathesis {schemathesis.__version__}: {self.requests} requests, "
            f"{len(self.operations)} operations, {len(self.failures)} distinct failures, "
            f"{seconds:.1f}s; statuses {{{statuses}}}; no negative data for "
            f"{len(self.no_negative)} ({', '.join(sorted(self.no_negative))})"
        )


def seed(api: Api) -> dict[str, str]:
    """Things for the known-id pass to find: a run waiting on a hook, a finished run, a
    schedule."""
    waiting = api.http("POST", "/runs", {"workflow": "api_waiter"}).body["run_id"]
    done = api.http("POST", "/runs", {"workflow": "api_greet", "args": ["x"]}).body["run_id"]
    schedule = api.http(
        "POST",
        "/schedules",
        {
            "workflow": "api_greet",
            "args": ["x"],
            "spec": {"cron": "0 9 * * *"},
            "schedule_id": "fuzz-daily",
        },
    ).body
    api.drive()
    assert api.get(waiting).status == RunStatus.SUSPENDED
    assert api.get(done).status == RunStatus.COMPLETED
    return {
        "run_id": waiting,
        "finished_run_id": done,
        "schedule_id": schedule["schedule_id"],
        "token": api_wf.TOKENS[waiting],
        "name": "api_approval",
    }


def fuzz(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    session: requests.Session,
    figures: Figures,
    path_parameters: dict[str, str] | None = None,
) -> None:
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, timeout=30)
        figures.requests += 1
        figures.statuses[response.status_code] += 1
        try:
            case.validate_response(
                response, checks=checks, transport_kwargs={"base_url": base_url, "session": session}
            )
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{operation.label} [{mode.value}] {failure.title} -> {response.status_code}"
                figures.failures.setdefault(
                    key, f"{failure.message[:400]}\n    {case.as_curl_command()[:400]}"
                )

    try:
        one()
    except Unsatisfiable:
        # Nothing to negate (no parameters, no body: GET /health): nothing to send.
        if mode != GenerationMode.NEGATIVE:
            raise
        figures.no_negative.add(operation.label)
    figures.operations.add(operation.label)


def campaign(
    base_url: str, session: requests.Session, known: dict[str, str], only: set[str] | None = None
) -> Figures:
    """Fuzz every operation of the served document (or those labelled in ``only``)."""
    document = session.get(f"{base_url}/openapi.json", timeout=30)
    assert document.status_code == 200, document.text
    schema = schemathesis.openapi.from_dict(document.json())
    figures = Figures()
    for result in schema.get_all_operations():
        operation = result.ok()
        if only is not None and operation.label not in only:
            continue
        params = {p.name for p in operation.path_parameters}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, base_url, session, figures)
            if params and mode == GenerationMode.POSITIVE:
                fixed = {k: v for k, v in known.items() if k in params}
                fuzz(operation, mode, base_url, session, figures, fixed)
    return figures


@contextmanager
def quiet_api_logs(api: Api) -> Iterator[None]:
    """The API logs a line or two per request; thousands of them would bury the figures."""
    target = logging.getLogger(api.module.logger.name)
    level = target.level
    target.setLevel(logging.WARNING)
    try:
        yield
    finally:
        target.setLevel(level)


def test_the_api_holds_to_its_openapi_under_fuzzing(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    known = seed(api)
    started = time.monotonic()
    with quiet_api_logs(api), served(api.module.handler) as base_url, requests.Session() as session:
        figures = campaign(base_url, session, known)
        # Afterwards the webhook still answers as documented: the fuzzing broke nothing.
        resumed = session.post(f"{base_url}/hooks/{known['token']}", json={"ok": True}, timeout=30)
    seconds = time.monotonic() - started
    with capsys.disabled():
        print("\n" + figures.report(seconds))
        for key, detail in sorted(figures.failures.items()):
            print(f"  FAIL {key}\n    {detail}")
    assert len(figures.operations) >= 15, sorted(figures.operations)
    assert figures.requests >= len(figures.operations) * MAX_EXAMPLES
    assert figures.failures == {}, "\n".join(sorted(figures.failures))
    assert resumed.status_code in (202, 409), resumed.text  # 409: a fuzzed payload got there


def test_the_fuzzing_catches_a_5xx_and_an_answer_off_the_schema(api: Api) -> None:
    """The same campaign against a deliberately broken API: a 500 on GET /health and a
    /workflows answer whose items are not a list. Both must be reported."""

    def broken(event: dict[str, Any], context: Any) -> Any:
        path = event["rawPath"]
        if path == "/health":
            return {
                "statusCode": 500,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": {"type": "InternalError", "message": "x"}}),
            }
        if path == "/workflows":
            return {
                "statusCode": 200,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"items": "not a list"}),
            }
        return api.module.handler(event, context)

    with quiet_api_logs(api), served(broken) as base_url, requests.Session() as session:
        figures = campaign(base_url, session, {}, only={"GET /health", "GET /workflows"})
    found = "\n".join(figures.failures)
    assert "GET /health [positive] Server error -> 500" in found, found
    assert "GET /workflows [positive] Response violates schema -> 200" in found, found

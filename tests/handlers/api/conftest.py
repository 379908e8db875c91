"""API fixtures: ``pyworkflow.handlers.api.handler`` called directly with HTTP API v2 events (built
from the samples in ``tests/events/``) and direct-invoke events, over an ``AwsRuntime`` on SQLite
with a dispatcher that records wake-ups instead of sending them. ``Api.drive()`` plays the worker:
it drives every run woken so far, as the SQS worker would.

The end-to-end test (``test_e2e.py``) uses the AWS fixtures of ``tests/aws/conftest.py`` (moto
server, DynamoDB Local) instead, imported below.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest

from pyworkflow import config
from pyworkflow.core.clock import ManualClock
from pyworkflow.core.models import WorkflowRun
from pyworkflow.dev.pumps import FakeLambdaContext
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from pyworkflow.transport.clients import AwsClients
from pyworkflow.transport.scheduler import SchedulerTimers
from tests.aws.conftest import (  # noqa: F401 - fixtures for test_e2e.py
    aws,
    aws_env,
    dynamodb_local,
    moto,
    storage_kind,
    worker,
)

T = TypeVar("T")
EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample_event(name: str) -> dict[str, Any]:
    """A sample API Gateway event from ``tests/events/apigw_http_v2_<name>.json``."""
    return dict(json.loads((EVENTS / f"apigw_http_v2_{name}.json").read_text()))


_TEMPLATE = sample_event("start_run")


def http_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, Any] | None = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    base64: bool = False,
) -> dict[str, Any]:
    """An HTTP API payload-2.0 event as API Gateway sends it, for ``method path``: the sample
    with its path, query and body replaced. ``raw_body`` is sent as is (malformed JSON)."""
    event = copy.deepcopy(_TEMPLATE)
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    # surrogatepass: a query value holding a lone surrogate is sent (percent-encoded as
    # API Gateway would pass it on), to test that the API refuses it.
    event["rawQueryString"] = urlencode(query or {}, errors="surrogatepass")
    if query:
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    event["headers"] = {**event["headers"], **(headers or {})}
    if text is None:
        event.pop("body", None)
        event["headers"].pop("content-type", None)
        event["headers"]["content-length"] = "0"
    else:
        if base64:
            import base64 as b64

            text = b64.b64encode(text.encode()).decode()
            event["isBase64Encoded"] = True
        event["body"] = text
        event["headers"]["content-length"] = str(len(text.encode()))
    return event


class ConflictError(Exception):
    """What botocore raises for Scheduler's ConflictException (``response`` is what is read)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class FakeScheduler:
    """EventBridge Scheduler's create/update/delete_schedule, kept in ``schedules`` by name."""

    def __init__(self) -> None:
        self.schedules: dict[str, dict[str, Any]] = {}

    async def create_schedule(self, **definition: Any) -> None:
        if definition["Name"] in self.schedules:
            raise ConflictError("ConflictException")
        self.schedules[definition["Name"]] = definition

    async def update_schedule(self, **definition: Any) -> None:
        self.schedules[definition["Name"]] = definition

    async def delete_schedule(self, *, Name: str, GroupName: str) -> None:  # noqa: N803
        if self.schedules.pop(Name, None) is None:
            raise ConflictError("ResourceNotFoundException")


class RecordingDispatcher:
    """``AwsDispatcher``'s interface, recording instead of sending: ``woken`` is the queue,
    ``waits`` the timers asked for; ``scheduler`` holds the recurring EventBridge schedules of
    pyworkflow schedules, made through the transport's real ``SchedulerTimers``."""

    queue_arn = "arn:aws:sqs:us-east-1:123456789012:pyworkflow-work"
    scheduler_group = "pyworkflow-timers"
    scheduler_role_arn = "arn:aws:iam::123456789012:role/pyworkflow-scheduler"

    def __init__(self) -> None:
        self.woken: list[tuple[str, str]] = []
        self.waits: list[tuple[str, datetime, str]] = []
        self.scheduler = FakeScheduler()
        self.clients = AwsClients()
        self.clients.opened["scheduler"] = self.scheduler
        self.requests: Counter[str] = self.clients.requests
        self.timers = SchedulerTimers(
            group=self.scheduler_group,
            role_arn=self.scheduler_role_arn,
            target_arn=self.queue_arn,
            clients=self.clients,
        )

    async def wake(self, run_id: str, *, reason: str = "wake") -> None:
        self.requests["wake"] += 1
        self.woken.append((run_id, reason))

    async def wake_at(self, run_id: str, when: datetime, *, key: str) -> None:
        self.requests["wake_at"] += 1
        self.waits.append((run_id, when, key))

    async def start_child(self, run_id: str, *, wait: bool) -> None:
        await self.wake(run_id, reason="child")

    async def forget(self, run: WorkflowRun) -> None:
        self.requests["forget"] += 1

    async def delete_schedule(self, key: str) -> bool:
        return False

    async def close(self) -> None:
        return None


def lambda_encodes(answer: Any) -> None:
    """Fail unless ``answer`` can leave the function: the python3.12 Lambda runtime (the
    template's) sends what a handler returns as ``json.dumps(ensure_ascii=False)`` in UTF-8, so
    one lone surrogate anywhere in it (an error message quoting bad input) fails the invocation
    instead of answering."""
    try:
        json.dumps(answer, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise AssertionError(
            f"the Lambda runtime could not send this answer ({error}): {ascii(answer)[:500]}"
        ) from None


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Api:
    """The API module with its runtime, and what a test needs to call and observe it."""

    module: Any
    runtime: AwsRuntime
    dispatcher: RecordingDispatcher
    clock: ManualClock

    def call(self, event: dict[str, Any]) -> Response:
        raw = self.module.handler(event, FakeLambdaContext(function_name="pyworkflow-api"))
        lambda_encodes(raw)
        body = raw.get("body")
        return Response(
            status=raw["statusCode"],
            body=json.loads(body) if body else None,
            headers=dict(raw.get("headers") or {}),
        )

    def http(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call(http_event(method, path, body, **kwargs))

    def invoke(self, action: str, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.module.handler(
            {"action": action, **params}, FakeLambdaContext(function_name="pyworkflow-api")
        )
        lambda_encodes(result)
        return result

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the API container's loop (where its storage lives)."""
        result: T = self.module._loop.run_until_complete(coro)
        return result

    def drive(self) -> list[str]:
        """Drive every run woken so far (and those they wake), as the worker would. Timers are
        left alone: a test fires them by advancing the clock and calling ``fire_timers``."""
        driven = []
        while self.dispatcher.woken:
            run_id, _ = self.dispatcher.woken.pop(0)
            self.run(self.runtime.drive_message({"run_id": run_id}))
            driven.append(run_id)
        return driven

    def get(self, run_id: str) -> WorkflowRun:
        run = self.run(self.runtime.storage.get_run(run_id))
        assert run is not None
        return run

    def count_runs(self) -> int:
        return len(self.run(self.runtime.storage.list_runs_page(limit=1000)).items)


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from pyworkflow.handlers import api as module

    monkeypatch.setenv(config.ENV_MODULE, "tests.handlers.api.workflows")
    monkeypatch.delenv(config.ENV_MAX_REQUEST_BYTES, raising=False)
    clock = ManualClock()
    dispatcher = RecordingDispatcher()
    runtime = AwsRuntime(
        SQLiteStorageBackend(tmp_path / "api.db"),
        dispatcher,  # type: ignore[arg-type]
        clock=clock,
        lease_seconds=30,
        max_receives=3,
    )
    module.reset(runtime)
    yield Api(module=module, runtime=runtime, dispatcher=dispatcher, clock=clock)
    module.reset()

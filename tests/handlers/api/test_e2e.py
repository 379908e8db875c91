"""End to end on the AWS stack of ``tests/aws`` (moto's SQS and Scheduler; DynamoDB Local or
SQLite): runs started and resumed through ``pyworkflow.handlers.api.handler`` are driven to
completion by ``pyworkflow.handlers.worker`` through the queue pump. The API builds its runtime from
the environment, as in Lambda."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyworkflow import config
from pyworkflow.core.models import RunStatus
from pyworkflow.dev.pumps import FakeLambdaContext
from tests.aws.conftest import Aws
from tests.handlers.api import workflows as wf
from tests.handlers.api.conftest import http_event


@pytest.fixture
async def api(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """``pyworkflow.handlers.api`` as a fresh container on the test's stack."""
    from pyworkflow.handlers import api as module

    monkeypatch.setenv(config.ENV_MODULE, "tests.aws.workflows,tests.handlers.api.workflows")
    await asyncio.to_thread(module.reset)
    yield module
    await asyncio.to_thread(module.reset)


async def call(api: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request, in a thread: the handler runs its own loop, as in a Lambda container."""
    raw = await asyncio.to_thread(
        api.handler,
        http_event(method, path, body),
        FakeLambdaContext(function_name="pyworkflow-api"),
    )
    return raw["statusCode"], json.loads(raw["body"])


async def test_runs_started_and_resumed_through_the_api(aws: Aws, api: Any) -> None:
    status, started = await call(api, "POST", "/runs", {"workflow": "api_greet", "args": ["E2E"]})
    assert status == 202, started
    run_id = started["run_id"]
    result = await aws.pump_until_done(run_id)
    assert result.invocations == 1
    status, run = await call(api, "GET", f"/runs/{run_id}")
    assert status == 200
    assert run["status"] == "completed" and run["result"] == "HELLO E2E!"
    # The API sent exactly the one start message and touched nothing else.
    assert dict(api._runtime.dispatcher.requests) == {"sqs.SendMessage": 1}

    status, waiting = await call(api, "POST", "/runs", {"workflow": "api_waiter"})
    assert status == 202
    waiter_id = waiting["run_id"]
    await aws.pump(idle_polls=1, wait_seconds=0)
    assert (await aws.run(waiter_id)).status == RunStatus.SUSPENDED
    status, resumed = await call(
        api, "POST", f"/hooks/{wf.TOKENS[waiter_id]}", {"ok": True, "by": "e2e"}
    )
    assert status == 202 and resumed["run_id"] == waiter_id
    await aws.pump_until_done(waiter_id)
    status, run = await call(api, "GET", f"/runs/{waiter_id}")
    assert run["status"] == "completed", run
    assert run["result"] == {"ok": True, "by": "e2e"}
    status, events = await call(api, "GET", f"/runs/{waiter_id}/events")
    assert [e["type"] for e in events["items"]][-2:] == ["hook.received", "workflow.completed"]
    assert await aws.queue_depth(aws.stack.queue_url) == 0

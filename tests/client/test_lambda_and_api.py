"""The Lambda-invoke transport's decoding, and the package's public surface."""

from __future__ import annotations

from typing import Any

import pytest

import pyworkflow.client as client_pkg
from pyworkflow.client import ApiError, Client, Transport, TransportError
from pyworkflow.client.aws import AwsTransport, build_runtime
from pyworkflow.client.embedded import EmbeddedTransport
from pyworkflow.client.http import HttpTransport
from pyworkflow.client.lambda_ import LambdaTransport
from pyworkflow.exceptions import ConfigurationError, HookExpiredError
from tests.client.conftest import FakeLambda


def answering(answer: Any) -> tuple[FakeLambda, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        seen.append(event)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return FakeLambda(handler), seen


async def test_events_and_answers() -> None:
    fake, seen = answering({"ok": True, "result": {"run_id": "run_9", "status": "pending"}})
    async with Client.lambda_("fn", client=fake) as client:
        assert await client.start("client_add", 1, b=2, idempotency_key="k") == "run_9"
    assert seen == [
        {
            "action": "start_run",
            "workflow": "client_add",
            "args": [1],
            "kwargs": {"b": 2},
            "idempotency_key": "k",
        }
    ]

    fake, seen = answering(
        {"ok": True, "result": {"run_id": "run_9", "hook_id": "h", "status": "resumed"}}
    )
    async with Client.lambda_("fn", client=fake) as client:
        await client.resume_hook("whk_1", [1, 2])
        await client.resume_hook_by_name("run_9", "approval", None)
    assert seen == [
        {"action": "resume_hook", "token": "whk_1", "payload": [1, 2]},
        {"action": "resume_hook_by_name", "run_id": "run_9", "name": "approval", "payload": None},
    ]


async def test_errors() -> None:
    fake, _ = answering(
        {
            "ok": False,
            "status": 410,
            "error": {"type": "HookExpiredError", "message": "Hook expired: a"},
        }
    )
    async with Client.lambda_("fn", client=fake) as client:
        with pytest.raises(HookExpiredError, match="^Hook expired: a$") as info:
            await client.resume_hook("whk_1", {})
    assert type(info.value) is HookExpiredError  # as raised in process: no HTTP status on it

    fake, _ = answering(
        {
            "ok": False,
            "status": 400,
            "error": {"type": "UnknownAction", "message": "Unknown action"},
        }
    )
    async with Client.lambda_("fn", client=fake) as client:
        with pytest.raises(ApiError, match="UnknownAction") as api_info:
            await client.health()
    assert api_info.value.status == 400

    fake, _ = answering(RuntimeError("module import failed"))
    async with Client.lambda_("fn", client=fake) as client:
        with pytest.raises(TransportError, match="Unhandled.*module import failed"):
            await client.health()

    fake, _ = answering({"statusCode": 200, "body": "{}"})  # not a direct-invoke answer
    async with Client.lambda_("fn", client=fake) as client:
        with pytest.raises(TransportError, match="unexpected payload"):
            await client.health()


def test_every_transport_is_a_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWORKFLOW_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/q")
    monkeypatch.setenv("PYWORKFLOW_TABLE", "pw")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    transports = [
        EmbeddedTransport(),
        AwsTransport(build_runtime()),
        HttpTransport("http://127.0.0.1:1", sign=False),
        LambdaTransport("fn"),
    ]
    for transport in transports:
        assert isinstance(transport, Transport)
    monkeypatch.delenv("PYWORKFLOW_QUEUE_URL")
    with pytest.raises(ConfigurationError, match="PYWORKFLOW_QUEUE_URL"):
        Client.aws()


def test_public_names() -> None:
    assert client_pkg.__all__ == [
        "Client",
        "SyncClient",
        "Transport",
        "ENV_API_URL",
        "workflow_name",
        "HookResumed",
        "WorkflowInfo",
        "Started",
        "Cancelled",
        "ApiError",
        "TransportError",
    ]
    assert client_pkg.ENV_API_URL == "PYWORKFLOW_API_URL"

"""The HTTP transport on its own: SigV4 signatures checked again on the server's side with
botocore, error bodies mapped back to pyworkflow's exceptions, query strings, from_env."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pyworkflow.client import ApiError, Client, TransportError
from pyworkflow.client.embedded import EmbeddedTransport
from pyworkflow.client.errors import UnknownWorkflowError
from pyworkflow.client.http import HttpTransport, encode_query, region_for
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.exceptions import (
    ConfigurationError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    HookPayloadError,
    InvalidArgumentsError,
    ScheduleNotFoundError,
    WorkflowNotFoundError,
)
from pyworkflow.handlers.api_models import run_view
from tests.client.apiserver import Received, canned, serve

REGION = "eu-west-3"
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
T = datetime(2030, 1, 1, tzinfo=UTC)
RUN = WorkflowRun(
    run_id="run_1",
    workflow_name="client_add",
    status=RunStatus.COMPLETED,
    created_at=T,
    updated_at=T,
    result="3",
)
# as the API answers it (its run view: arguments and result as JSON values)
RUN_JSON = run_view(RUN).model_dump(mode="json")


def expected_signature(received: Received, credentials: Credentials, region: str) -> str:
    """Recompute the signature from what the server received, with botocore."""
    auth = received.headers["Authorization"]
    names = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {n: v for n, v in received.headers.items() if n.lower() in names}
    request = AWSRequest(
        method=received.method,
        url=f"http://{received.headers['Host']}{received.raw_path}",
        data=received.body,
        headers=headers,
    )
    request.context["timestamp"] = received.headers["X-Amz-Date"]
    signer = SigV4Auth(credentials, "execute-api", region)
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def signature_of(received: Received) -> str:
    return received.headers["Authorization"].rsplit("Signature=", 1)[1]


def run_api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers as the API would for run_1: the run, a page of it, or a cancel."""
    path = event["rawPath"]
    body: Any = RUN_JSON
    if path.endswith("/cancel"):
        body = {"run_id": "run_1", "cancelled": True}
    elif path == "/runs":
        body = {"items": [RUN_JSON], "next_cursor": None}
    return {"statusCode": 200, "body": json.dumps(body)}


async def test_signed_requests_verify() -> None:
    async with serve(run_api) as server:
        client = Client.http(server.url, region=REGION, credentials=CREDS)
        async with client:
            assert await client.get_run("run_1") == RUN.model_copy(update={"version": 0})
            await client.list_runs(
                status="running", workflow="client add/ü", limit=5, cursor="a+b="
            )
            assert await client.cancel("run_1", reason="a reason")  # a POST with a body
    assert len(server.requests) == 3
    for received in server.requests:
        auth = received.headers["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert f"/{REGION}/execute-api/aws4_request" in auth
        assert received.headers["X-Amz-Security-Token"] == "session-token"
        assert signature_of(received) == expected_signature(received, CREDS, REGION)
    listing = server.requests[1]
    assert listing.raw_path == (
        "/runs?cursor=a%2Bb%3D&limit=5&status=running&workflow=client%20add%2F%C3%BC"
    )
    # The check can fail: another body, key or region gives another signature.
    tampered = Received(**{**server.requests[2].__dict__, "body": b'{"reason":"other"}'})
    assert signature_of(tampered) != expected_signature(tampered, CREDS, REGION)
    assert signature_of(listing) != expected_signature(listing, CREDS, "us-east-1")
    other = Credentials("AKIDEXAMPLE", "another-secret", "session-token")
    assert signature_of(listing) != expected_signature(listing, other, REGION)


async def test_unsigned_and_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    async with serve(canned(200, RUN_JSON)) as server:
        async with Client.http(server.url, sign=False) as client:
            await client.get_run("run_1")
        async with Client.http(server.url, region=REGION, sign=True) as client:  # default chain
            await client.get_run("run_1")
    unsigned, signed = server.requests
    assert "Authorization" not in unsigned.headers
    assert "X-Amz-Security-Token" not in signed.headers
    assert signature_of(signed) == expected_signature(
        signed, Credentials("AKIDFROMENV", "env-secret"), REGION
    )


async def test_no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    answer = {"run_id": "run_1", "hook_id": "hook_x_1", "status": "resumed"}
    async with serve(canned(202, answer)) as server:
        async with Client.http(server.url, region=REGION, sign=True) as client:
            with pytest.raises(ConfigurationError, match="sign=False"):
                await client.get_run("run_1")
            # The public webhook needs no credentials: the token is one.
            assert (await client.resume_hook("whk_abc", {"ok": True})).run_id == "run_1"
    (hook,) = server.requests
    assert "Authorization" not in hook.headers
    assert hook.raw_path == "/hooks/whk_abc" and json.loads(hook.body) == {"ok": True}


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (404, "WorkflowNotFoundError", WorkflowNotFoundError),
        (404, "HookNotFoundError", HookNotFoundError),
        (409, "HookAlreadyReceivedError", HookAlreadyReceivedError),
        (410, "HookExpiredError", HookExpiredError),
        (422, "HookPayloadError", HookPayloadError),
        (422, "InvalidArgumentsError", InvalidArgumentsError),
        (404, "ScheduleNotFoundError", ScheduleNotFoundError),
        (404, "UnknownWorkflowError", UnknownWorkflowError),
    ],
)
async def test_error_bodies_become_pyworkflow_exceptions(
    status: int, error_type: str, cls: type[Exception]
) -> None:
    message = f"the server's own words about {error_type}"
    body = {"error": {"type": error_type, "message": message}}
    async with serve(canned(status, body)) as server:
        async with Client.http(server.url, sign=False) as client:
            with pytest.raises(cls) as info:
                await client.get_run("run_1")
    assert type(info.value) is cls
    assert str(info.value) == message


async def test_other_errors_are_api_errors() -> None:
    cases: list[tuple[int, Any, str]] = [
        (
            413,
            {"error": {"type": "RequestTooLarge", "message": "limit 262144"}},
            "RequestTooLarge: limit 262144",
        ),
        (
            422,
            {"error": {"type": "ValidationError", "message": "body.workflow: missing"}},
            "ValidationError: body.workflow: missing",
        ),
        (403, {"message": "Forbidden"}, "HTTP 403: Forbidden"),  # API Gateway's own
        (502, b"Bad Gateway", "HTTP 502: Bad Gateway"),
    ]
    for status, body, text in cases:
        async with serve(canned(status, body)) as server:
            async with Client.http(server.url, sign=False) as client:
                with pytest.raises(ApiError) as info:
                    await client.list_workflows()
        assert info.value.status == status and str(info.value) == text
    async with serve(canned(200, b"<html>not the API</html>")) as server:
        async with Client.http(server.url, sign=False) as client:
            with pytest.raises(TransportError, match="not JSON"):
                await client.get_run("run_1")
    async with serve(canned(200, {"some": "other API"})) as server:
        async with Client.http(server.url, sign=False) as client:
            with pytest.raises(TransportError, match="not a WorkflowRun"):
                await client.get_run("run_1")
    url = server.url  # closed now: nothing listens
    async with Client.http(url, sign=False) as client:
        with pytest.raises(TransportError, match="failed"):
            await client.get_run("run_1")


async def test_cancel_of_an_ended_run_is_false() -> None:
    body = {"error": {"type": "RunAlreadyEndedError", "message": "run_1 has already ended"}}
    async with serve(canned(409, body)) as server:
        async with Client.http(server.url, sign=False) as client:
            assert await client.cancel("run_1") is False


def test_region_and_query() -> None:
    url = "https://abc123.execute-api.ap-southeast-2.amazonaws.com/prod"
    assert region_for(url) == "ap-southeast-2"
    assert region_for(url, "eu-north-1") == "eu-north-1"
    assert encode_query({"b": "x y", "a": "é~"}) == "a=%C3%A9~&b=x%20y"
    with pytest.raises(ConfigurationError):
        HttpTransport("ftp://example.com")


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWORKFLOW_API_URL", "http://127.0.0.1:8787")
    transport = Client.from_env().transport
    assert isinstance(transport, HttpTransport) and transport.sign is False
    monkeypatch.setenv("PYWORKFLOW_API_URL", "https://abc.execute-api.us-west-2.amazonaws.com")
    transport = Client.from_env().transport
    assert isinstance(transport, HttpTransport) and transport.sign is True
    assert transport.region == "us-west-2"
    monkeypatch.delenv("PYWORKFLOW_API_URL")
    monkeypatch.setenv("PYWORKFLOW_MODULE", "tests.client.workflows")
    assert isinstance(Client.from_env().transport, EmbeddedTransport)

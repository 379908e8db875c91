"""The local HTTP API (pyworkflow/dev/http_api.py, what ``pyworkflow dev`` serves) refusing requests
before they reach the function: in the API's own error shape ``{"error": {"type", "message"}}``
with a fitting status, never the HTTP library's text/plain (or HTML) error page.

Sent over raw sockets: an HTTP client would refuse to send most of these requests.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyworkflow.dev.http_api import MAX_HEAD_BYTES, HttpApiServer, Route, match_route
from pyworkflow.dev.pumps import FakeLambdaContext
from pyworkflow.dev.template import HttpRouteSpec
from tests.dev import stubs

ROUTES = [
    HttpRouteSpec(name="a", method="ANY", path="/{proxy+}", api="HttpApi", authorizer="AWS_IAM")
]


@pytest.fixture
async def server() -> AsyncIterator[HttpApiServer]:
    stubs.clear()
    server = HttpApiServer(
        handler=stubs.api,
        port=0,
        routes=ROUTES,
        max_body_bytes=1000,
        context_factory=lambda: FakeLambdaContext(remaining=1),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; the status, headers (lower-cased names) and body answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass  # closed with some of the request unread: what came before the reset counts
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def send(server: HttpApiServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(_exchange, server.port, request)


def api_error(answer: tuple[int, dict[str, str], bytes], status: int, type_: str) -> str:
    """The message of an answer in the API's error shape with ``status`` and ``type_``."""
    got, headers, body = answer
    assert got == status, (got, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert set(error) == {"type", "message"} and error["type"] == type_, error
    return str(error["message"])


def request(
    target: str, headers: dict[str, str] | None = None, *, method: str = "GET", body: bytes = b""
) -> bytes:
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize(
    "length",
    [MAX_HEAD_BYTES + 1, 128 * 1024],
    ids=["over API Gateway's limit", "past the HTTP parser's limit"],
)
async def test_an_over_long_request_line_is_a_414_in_the_apis_error_shape(
    server: HttpApiServer, length: int
) -> None:
    message = api_error(await send(server, request("/" + "a" * length)), 414, "UriTooLong")
    assert f"{MAX_HEAD_BYTES} bytes" in message
    assert "aaaa" not in message  # the URL is not echoed (it may hold a hook token)
    assert stubs.EVENTS == []  # the function never saw it


@pytest.mark.parametrize(
    "headers",
    [
        {"X-One": "a" * (MAX_HEAD_BYTES // 2), "X-Two": "b" * (MAX_HEAD_BYTES // 2)},
        {"X-Big": "a" * (128 * 1024)},
    ],
    ids=["together over API Gateway's limit", "one past the HTTP parser's limit"],
)
async def test_over_long_headers_are_a_431_in_the_apis_error_shape(
    server: HttpApiServer, headers: dict[str, str]
) -> None:
    message = api_error(await send(server, request("/x", headers)), 431, "HeadersTooLarge")
    assert f"{MAX_HEAD_BYTES} bytes" in message
    assert stubs.EVENTS == []


async def test_a_request_within_the_limits_reaches_the_function(server: HttpApiServer) -> None:
    target = "/x?q=" + "a" * 4000
    status, _, body = await send(server, request(target, {"X-One": "b" * 4000}))
    assert status == 200, body[:300]
    assert json.loads(body)["event"]["rawQueryString"] == "q=" + "a" * 4000


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /hooks/whk_secret\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"\x16\x03\x01garbage\r\n\r\n",
    ],
    ids=["byte not allowed in a URL", "not HTTP at all"],
)
async def test_a_request_the_http_parser_refuses_is_a_400_in_the_apis_error_shape(
    server: HttpApiServer, raw: bytes
) -> None:
    message = api_error(await send(server, raw), 400, "BadRequest")
    assert "whk_secret" not in message  # the request line is not echoed
    assert stubs.EVENTS == []


async def test_a_body_over_the_payload_limit_is_a_413_in_the_apis_error_shape(
    server: HttpApiServer,
) -> None:
    answer = await send(server, request("/x", method="POST", body=b"x" * 1001))
    assert "1000 bytes" in api_error(answer, 413, "RequestTooLarge")
    assert stubs.EVENTS == []


async def test_a_path_holding_an_encoded_newline_reaches_the_function(
    server: HttpApiServer,
) -> None:
    # It never did: aiohttp's router answered it with a text/plain 404 (gone with the
    # low-level server), then the route's greedy variable ("." in a regex) stopped at "\n".
    status, _, body = await send(server, request("/runs/a%0Ab"))
    assert status == 200, body[:300]
    event: dict[str, Any] = json.loads(body)["event"]
    assert event["rawPath"] == "/runs/a%0Ab"


def test_routes_take_a_newline_in_a_path_as_any_other_character() -> None:
    routes = [
        Route.compile(
            HttpRouteSpec(name=f"r{i}", method="GET", path=path, api="HttpApi", authorizer="NONE")
        )
        for i, path in enumerate(["/health", "/runs/{run_id}", "/ui/{proxy+}"])
    ]
    found = match_route(routes, "GET", "/ui/a\nb")
    assert found is not None and found[1] == {"proxy": "a\nb"}
    found = match_route(routes, "GET", "/runs/a\nb")
    assert found is not None and found[1] == {"run_id": "a\nb"}
    assert match_route(routes, "GET", "/health\n") is None  # not /health

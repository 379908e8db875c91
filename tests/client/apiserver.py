"""A real HTTP server on 127.0.0.1:<free port> that turns each request into an API Gateway HTTP
API event (payload format 2.0) for a Lambda handler, and the handler's answer back into HTTP.

Only what the client tests need: the handler runs in a thread (it owns its event loop, like a
Lambda container, and serves one request at a time), and every request is recorded as
received, so a test can check its SigV4 signature against the exact bytes on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class Received:
    method: str
    raw_path: str  # path and query exactly as sent (percent-encoded)
    headers: dict[str, str]
    body: bytes


@dataclass
class ApiServer:
    url: str
    requests: list[Received] = field(default_factory=list)


def v2_event(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    path, _, query = raw_path.partition("?")
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        **({"queryStringParameters": params} if params else {}),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "clienttest",
            "domainName": "127.0.0.1",
            "domainPrefix": "clienttest",
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            },
        },
        **_body(body),
    }


def _body(body: bytes) -> dict[str, Any]:
    """Text as text, anything else base64-encoded (API Gateway's rule)."""
    if not body:
        return {"isBase64Encoded": False}
    try:
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def to_response(answer: Any) -> web.Response:
    if not (isinstance(answer, dict) and "statusCode" in answer):
        return web.json_response(answer)  # payload v2: a bare value is a 200 JSON body
    body = answer.get("body") or ""
    data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
    headers = {k: str(v) for k, v in (answer.get("headers") or {}).items()}
    return web.Response(status=int(answer["statusCode"]), body=data, headers=headers)


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[ApiServer]:
    """Serve ``handler`` until the block ends."""
    lock = asyncio.Lock()  # one request at a time per "container"
    server = ApiServer(url="")

    async def endpoint(request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        server.requests.append(Received(request.method, request.raw_path, headers, body))
        event = v2_event(request.method, request.raw_path, headers, body)
        async with lock:
            answer = await asyncio.to_thread(handler, event, None)
        return to_response(answer)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def canned(status: int, body: Any) -> Handler:
    """A handler answering every request with ``status`` and ``body`` (JSON unless bytes)."""
    text = body.decode() if isinstance(body, bytes) else json.dumps(body)
    content_type = "text/plain" if isinstance(body, bytes) else "application/json"
    return lambda event, context: {
        "statusCode": status,
        "body": text,
        "headers": {"Content-Type": content_type},
    }

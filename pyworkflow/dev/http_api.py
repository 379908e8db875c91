"""An API Gateway HTTP API on loopback: each HTTP request becomes a payload-format-2.0 event for
a Lambda handler, and the handler's response becomes the HTTP response, as API Gateway does it.

What it reproduces (payload format 2.0, see AWS's "Lambda proxy integrations for HTTP APIs"):
header names lower-cased and repeated headers joined with commas; cookies moved out of the
headers into ``cookies``; repeated query parameters joined with commas; ``rawPath`` /
``rawQueryString`` untouched; a body that is not text is base64-encoded; ``requestContext``
with the method, path, source IP, request id, stage ``$default`` and times. Routes come from the
template: the most specific route matching the request sets ``routeKey`` and
``pathParameters``; none matching is API Gateway's 404 ``{"message":"Not Found"}``.
On the way back a response without ``statusCode`` is taken as a JSON body with status 200,
``isBase64Encoded`` bodies are decoded and ``cookies`` become ``set-cookie`` headers.

What it does not: authorizers are recorded in the event (IAM routes get a local caller
identity) but never enforced, so a local client needs no signing.

The handler runs in ``executor`` (one thread by default: a Lambda container handles one
request at a time, and the handler owns its own event loop).

What API Gateway refuses before the function runs is refused here too, in the API's own error
shape ``{"error": {"type", "message"}}`` (never aiohttp's text/plain or HTML page): a request
line over ``MAX_HEAD_BYTES`` (414 ``UriTooLong``), request line and header values together over
it (431 ``HeadersTooLarge``), a body over ``max_body_bytes`` (413 ``RequestTooLarge``), and what
the HTTP parser cannot read (400 ``BadRequest``). None of these answers or log lines quotes the
request line: it may hold a hook token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from pyworkflow.dev.template import HttpRouteSpec

Handler = Callable[[dict[str, Any], Any], Any]


def port_in_use(host: str, port: int) -> str | None:
    """Why ``port`` on ``host`` cannot be listened on (None: it can, or it is 0)."""
    if not port:
        return None
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the HTTP server binds: a socket left in TIME_WAIT is not "busy"
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return (
                f"port {port} on {host} is in use ({exc.strerror}): stop what "
                "listens there (another pyworkflow dev?), or pass --port N "
                "(--port 0 picks a free port)"
            )
    return None


MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
#: API Gateway's limit on the request line and the header values together (HTTP API quotas:
#: "Total combined size of request line and header values", 10240 bytes).
MAX_HEAD_BYTES = 10240
# aiohttp's own parser limits: far above MAX_HEAD_BYTES, so that the server (not the parser)
# refuses what API Gateway would and can say which part is too long. Past them the parser
# refuses the request, and _JsonErrors tells a request line from a header by the limit the
# parser names: so the two differ.
_PARSER_LINE_BYTES = 64 * 1024
_PARSER_FIELD_BYTES = 32 * 1024
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "+json",
    "+xml",
)
_VARIABLE = re.compile(r"\{([^}/]+?)(\+)?\}")
ACCOUNT_ID = "123456789012"
API_ID = "localapi"


@dataclass(frozen=True)
class Route:
    """A template route compiled for matching."""

    spec: HttpRouteSpec
    pattern: re.Pattern[str] | None  # None: the $default route
    variables: tuple[str, ...]
    literal_chars: int  # more literal text = more specific
    greedy: bool

    @property
    def key(self) -> str:
        return "$default" if self.pattern is None else f"{self.spec.method} {self.spec.path}"

    @classmethod
    def compile(cls, spec: HttpRouteSpec) -> Route:
        if spec.path == "$default":
            return cls(spec, None, (), -1, True)
        parts, names, last, greedy = [], [], 0, False
        for match in _VARIABLE.finditer(spec.path):
            parts.append(re.escape(spec.path[last : match.start()]))
            names.append(match.group(1))
            greedy = greedy or bool(match.group(2))
            parts.append("(.+)" if match.group(2) else "([^/]+)")
            last = match.end()
        parts.append(re.escape(spec.path[last:]))
        literal = len(_VARIABLE.sub("", spec.path))
        # DOTALL and fullmatch: a path may hold a newline (%0A), which "." and "$" would not
        # take as any other character (a greedy variable stopped at it; "/health$" matched
        # "/health\n").
        return cls(spec, re.compile("".join(parts), re.DOTALL), tuple(names), literal, greedy)


def match_route(
    routes: Sequence[Route], method: str, path: str
) -> tuple[Route, dict[str, str]] | None:
    """API Gateway's choice: exact routes before ones with variables, before greedy ones,
    before ``$default``; a method-specific route before ``ANY``."""
    candidates: list[tuple[tuple[int, int, int], Route, dict[str, str]]] = []
    for route in routes:
        if route.spec.method not in ("ANY", method):
            continue
        if route.pattern is None:
            candidates.append(((3, 0, 0), route, {}))
            continue
        found = route.pattern.fullmatch(path)
        if found is None:
            continue
        rank = 2 if route.greedy else (1 if route.variables else 0)
        params = dict(zip(route.variables, found.groups(), strict=True))
        candidates.append(
            ((rank, -route.literal_chars, int(route.spec.method == "ANY")), route, params)
        )
    if not candidates:
        return None
    _, route, params = min(candidates, key=lambda c: c[0])
    return route, params


def _is_text(content_type: str) -> bool:
    content_type = content_type.lower()
    return not content_type or any(t in content_type for t in _TEXT_TYPES)


def _authorizer(route: Route | None) -> dict[str, Any] | None:
    if route is None or route.spec.authorizer == "NONE":
        return None
    if route.spec.authorizer == "AWS_IAM":
        return {
            "iam": {
                "accessKey": "ASIALOCALDEVSTACK0000",
                "accountId": ACCOUNT_ID,
                "callerId": "AIDALOCALDEVSTACK0000",
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/local",
                "userId": "AIDALOCALDEVSTACK0000",
            }
        }
    return {"jwt": {"claims": {}, "scopes": None}}


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    route: Route | None = None,
    path_parameters: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload-format-2.0 event API Gateway would send for this request."""
    now = now or datetime.now(UTC)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    route_key = route.key if route is not None else "$default"
    request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    authorizer = _authorizer(route)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if body:
        if _is_text(merged.get("content-type", "")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


@dataclass
class HttpResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def to_http(response: Any) -> HttpResult:
    """Interpret a handler's return value as API Gateway does for payload format 2.0."""
    if not (isinstance(response, dict) and "statusCode" in response):
        # No statusCode: API Gateway treats the whole value as a JSON body.
        body = json.dumps(response).encode()
        return HttpResult(200, [("content-type", "application/json")], body)
    headers = [(k.lower(), str(v)) for k, v in (response.get("headers") or {}).items()]
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name.lower(), str(v)) for v in values)
    headers.extend(("set-cookie", c) for c in response.get("cookies") or [])
    raw = response.get("body")
    if raw is None:
        body = b""
    elif response.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
    return HttpResult(int(response["statusCode"]), headers, body)


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps({"message": message}).encode(),
        content_type="application/json",
    )


def _api_error(status: int, type_: str, message: str) -> web.Response:
    """A refusal in the API's own error shape, for what never reaches the function."""
    return web.Response(
        status=status,
        content_type="application/json",
        body=json.dumps({"error": {"type": type_, "message": message}}).encode(),
    )


def _head_too_large(request: web.BaseRequest) -> web.Response | None:
    """API Gateway's limit on the request line and header values, as its own 4xx: 414 when
    the request line alone is over it, else 431."""
    version = request.version
    line = len(f"{request.method} {request.raw_path} HTTP/{version.major}.{version.minor}")
    if line > MAX_HEAD_BYTES:
        return _api_error(
            414,
            "UriTooLong",
            f"The request line is {line} bytes; API Gateway takes at most "
            f"{MAX_HEAD_BYTES} bytes of request line and header values together",
        )
    head = line + sum(len(value) for _, value in request.raw_headers)
    if head > MAX_HEAD_BYTES:
        return _api_error(
            431,
            "HeadersTooLarge",
            f"The request line and header values are {head} bytes together; "
            f"API Gateway takes at most {MAX_HEAD_BYTES} bytes",
        )
    return None


class _JsonErrors(RequestHandler):
    """aiohttp's connection handler, answering what its HTTP parser refuses (a line past the
    parser's limits, bytes that are not HTTP) in the API's error shape, where aiohttp answers a
    text/plain or HTML page and logs the request line with a traceback."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: too late for another answer
            raise ConnectionError(
                "Response is sent already, cannot send another response with the error message"
            )
        if isinstance(exc, LineTooLong):
            if exc.args[1] == _PARSER_LINE_BYTES:
                response = _api_error(
                    414,
                    "UriTooLong",
                    "The request line is over "
                    f"{_PARSER_LINE_BYTES} bytes; API Gateway takes at most "
                    f"{MAX_HEAD_BYTES} bytes of request line and header "
                    "values together",
                )
            else:
                response = _api_error(
                    431,
                    "HeadersTooLarge",
                    "A header is over "
                    f"{_PARSER_FIELD_BYTES} bytes; API Gateway takes at most "
                    f"{MAX_HEAD_BYTES} bytes of request line and header "
                    "values together",
                )
        elif status >= 500:  # a failure of the server itself (_handle answers the function's)
            logging.getLogger("pyworkflow.dev").error("HTTP server failed", exc_info=exc)
            response = _error(500, "Internal Server Error")
        else:  # aiohttp's message quotes the request line: named by its kind only
            response = _api_error(
                400,
                "BadRequest",
                f"The request is not HTTP/1.1 the server can read ({type(exc).__name__})",
            )
        if response.status < 500:
            logging.getLogger("pyworkflow.dev").info(
                "refused a request the HTTP parser could not take: %s (%s)",
                response.status,
                type(exc).__name__,
            )
        response.force_close()
        return response


class _Server(web.Server):
    """aiohttp's low-level server, its connections handled by ``_JsonErrors``. No router:
    ``HttpApiServer`` routes as API Gateway does (aiohttp's router answered some paths itself,
    such as one holding an encoded newline, with a text/plain 404)."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Any],
        *,
        client_max_size: int,
        **connection_args: Any,
    ) -> None:
        super().__init__(handler, request_factory=self._request, **connection_args)
        self._connection_args = connection_args
        self._client_max_size = client_max_size

    def __call__(self) -> RequestHandler:
        return _JsonErrors(self, loop=asyncio.get_running_loop(), **self._connection_args)

    def _request(
        self, message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:
        return web.BaseRequest(
            message,
            payload,
            protocol,
            writer,
            task,
            asyncio.get_running_loop(),
            client_max_size=self._client_max_size,
        )


@dataclass
class HttpApiServer:
    """``await start()`` serves ``handler`` on ``host:port`` (0: a free port) until
    ``await stop()``."""

    handler: Handler
    routes: Sequence[HttpRouteSpec] = ()
    # instead of handler in executor: the function's own invoke (its process, under awslambdaric)
    invoke: Callable[[dict[str, Any], Any], Awaitable[Any]] | None = None
    host: str = "127.0.0.1"
    port: int = 8787
    context_factory: Callable[[], Any] | None = None
    executor: Executor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-function")
    )
    on_request: Callable[[str, str, int, float], None] | None = None
    max_body_bytes: int = MAX_PAYLOAD_BYTES
    _runner: web.ServerRunner | None = field(default=None, init=False, repr=False)
    _compiled: list[Route] = field(default_factory=list, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._compiled = [Route.compile(spec) for spec in self.routes]
        server = _Server(
            self._handle,
            client_max_size=self.max_body_bytes,
            access_log=None,
            max_line_size=_PARSER_LINE_BYTES,
            max_field_size=_PARSER_FIELD_BYTES,
        )
        self._runner = web.ServerRunner(server, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        bound: Any = site._server  # the bound socket tells which port 0 became
        if bound is not None and getattr(bound, "sockets", None):
            self.port = int(bound.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        refused = _head_too_large(request)
        if refused is not None:
            return refused
        raw_path = request.raw_path.split("?", 1)[0]
        path = request.path
        route: Route | None = None
        params: dict[str, str] = {}
        if self._compiled:
            found = match_route(self._compiled, request.method, path)
            if found is None:
                return _error(404, "Not Found")
            route, params = found
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            refused = _api_error(
                413,
                "RequestTooLarge",
                f"The request body is over {self.max_body_bytes} bytes, the most this API takes",
            )
            refused.force_close()  # the rest of the body is not read
            return refused
        peer = request.transport.get_extra_info("peername") if request.transport else None
        event = build_event(
            method=request.method,
            raw_path=raw_path,
            raw_query=request.query_string,
            headers=list(request.headers.items()),
            body=body,
            source_ip=peer[0] if peer else "127.0.0.1",
            route=route,
            path_parameters=params,
            host=request.host.split(":", 1)[0] or self.host,
        )
        context = self.context_factory() if self.context_factory else None
        loop = asyncio.get_running_loop()
        try:
            if self.invoke is not None:
                response = await self.invoke(event, context)
            else:
                response = await loop.run_in_executor(self.executor, self.handler, event, context)
            result = to_http(response)
        except Exception:  # noqa: BLE001 - API Gateway answers 500 when the function fails
            logging.getLogger("pyworkflow.dev").exception("API function failed")
            result = HttpResult(
                500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'
            )
        if self.on_request is not None:
            self.on_request(
                request.method, request.path_qs, result.status, time.monotonic() - started
            )
        out = web.Response(status=result.status, body=result.body)
        for name, value in result.headers:
            if name in ("content-length", "transfer-encoding", "connection"):
                continue
            if name == "content-type":
                out.headers["Content-Type"] = value
            else:
                out.headers.add(name, value)
        return out

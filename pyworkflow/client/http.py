"""The HTTP transport: the deployed stack's API (API Gateway HTTP API →
``pyworkflow/handlers/api.py``).

Requests are SigV4-signed for service ``execute-api`` with botocore's signer and the default
credential chain (env, profile, SSO, instance/container role), as the API's IAM authorizer
expects. ``sign=False`` talks to the local stack (``pyworkflow dev``), which checks nothing.
``POST /hooks/{token}`` needs no signature (the token is the credential), so a caller without
AWS credentials can still resume a hook.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from pyworkflow.client._remote import Call, RemoteTransport
from pyworkflow.client.errors import TransportError, error_from_body
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.settings import ENV_AWS_REGION, get_settings

SERVICE = "execute-api"
DEFAULT_TIMEOUT = 30.0
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


def region_for(api_url: str, region: str | None = None) -> str | None:
    """The signing region: given, else the one in an ``execute-api`` host name (the signature
    must name the API's region whatever the environment says), else ``AWS_REGION``."""
    if region:
        return region
    match = _REGION_IN_HOST.search(urlsplit(api_url).netloc)
    if match:
        return match.group(1)
    return get_settings().region


def encode_query(query: dict[str, Any]) -> str:
    """The query string exactly as signed: RFC 3986 encoding, keys sorted (SigV4's canonical
    form, so the URL sent and the URL signed are the same bytes)."""
    pairs = sorted(
        (quote(str(k), safe="-_.~"), quote(str(v), safe="-_.~")) for k, v in query.items()
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign_request(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    *,
    credentials: Any,
    region: str,
) -> dict[str, str]:
    """``headers`` plus SigV4's (``Authorization``, ``X-Amz-Date``, and
    ``X-Amz-Security-Token`` for temporary credentials)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def is_loopback(api_url: str) -> bool:
    """This machine: where the local stack (``pyworkflow dev``) serves, checking no signature."""
    host = urlsplit(api_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpTransport(RemoteTransport):
    """``credentials`` (botocore ``Credentials``) default to the default chain, resolved once
    (in a thread: it may call the instance metadata service) and refreshed by botocore."""

    def __init__(
        self,
        api_url: str,
        *,
        sign: bool = True,
        region: str | None = None,
        credentials: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"API URL {api_url!r} must start with http:// or https://")
        self.api_url = api_url.rstrip("/")
        self.sign = sign
        self.region = region_for(api_url, region)
        self.timeout = timeout
        self.extra_headers = dict(headers or {})
        self._credentials = credentials
        self._credentials_resolved = credentials is not None
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def _http(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            # A session belongs to the loop that made it (a client reused across asyncio.run()
            # calls gets a new one).
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._session_loop = loop
        return self._session

    async def _frozen_credentials(self) -> Any:
        if not self._credentials_resolved:
            import botocore.session

            self._credentials = await asyncio.to_thread(
                lambda: botocore.session.get_session().get_credentials()
            )
            self._credentials_resolved = True
        if self._credentials is None:
            return None
        return await asyncio.to_thread(self._credentials.get_frozen_credentials)

    async def _headers(self, call: Call, url: str, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json", **self.extra_headers}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if not self.sign:
            return headers
        credentials = await self._frozen_credentials()
        if credentials is None:
            if call.action == "resume_hook":
                return headers  # public route: the token is the credential
            raise ConfigurationError(
                "No AWS credentials found to sign the request (env, profile or role); pass "
                "sign=False for the local stack"
            )
        if not self.region:
            raise ConfigurationError(
                f"No region to sign requests to {self.api_url} with: pass region= or set "
                f"{ENV_AWS_REGION}"
            )
        return sign_request(
            call.method, url, body, headers, credentials=credentials, region=self.region
        )

    async def _call(self, call: Call) -> Any:
        url = self.api_url + call.path
        if call.query:
            url += "?" + encode_query(call.query)
        body = json.dumps(call.body, separators=(",", ":")).encode() if call.has_body else None
        headers = await self._headers(call, url, body)
        session = await self._http()
        try:
            async with session.request(
                call.method, URL(url, encoded=True), data=body, headers=headers
            ) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(
                f"{call.method} {url} failed: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw.decode(errors="replace")
        if status >= 400:
            raise error_from_body(answer, status)
        if isinstance(answer, str):
            raise TransportError(
                f"{call.method} {url}: HTTP {status} with a body that is not "
                f"JSON: {answer[:200]!r}",
                status=status,
            )
        return answer

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

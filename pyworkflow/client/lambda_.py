"""The Lambda-invoke transport: the API function invoked directly with the AWS SDK.

Each call is one synchronous ``Invoke`` of the stack's API function with a direct-invoke event
``{"action": "<name>", ...params}``; the function answers ``{"ok": true, "result": ...}`` or
``{"ok": false, "status": <http code>, "error": {"type", "message"}}``. No API Gateway, no
SigV4 of our own: the SDK signs the Invoke, and the caller needs ``lambda:InvokeFunction``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from pyworkflow.client._remote import Call, RemoteTransport
from pyworkflow.client.errors import TransportError, error_from_body


class LambdaTransport(RemoteTransport):
    """``client`` may be any object with an async ``invoke(**kwargs)`` shaped like aioboto3's
    Lambda client (tests pass one that calls the handler in-process); by default one aioboto3
    client is opened on first use and kept."""

    def __init__(
        self,
        function_name: str,
        *,
        region: str | None = None,
        session: Any = None,
        client: Any = None,
        qualifier: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.qualifier = qualifier
        self.region = region
        self._session = session
        self._client = client
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    async def _lambda(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                if self._session is None:
                    import aioboto3

                    self._session = aioboto3.Session(region_name=self.region)
                self._stack = contextlib.AsyncExitStack()
                self._client = await self._stack.enter_async_context(self._session.client("lambda"))
        return self._client

    async def _call(self, call: Call) -> Any:
        event = {**call.params, "action": call.action}
        kwargs: dict[str, Any] = {
            "FunctionName": self.function_name,
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(event).encode(),
        }
        if self.qualifier:
            kwargs["Qualifier"] = self.qualifier
        client = await self._lambda()
        try:
            response = await client.invoke(**kwargs)
        except Exception as exc:
            # botocore's ClientError (no permission, no such function) or a connection error.
            raise TransportError(
                f"Invoke of {self.function_name} ({call.action}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        raw = response.get("Payload", b"")
        if hasattr(raw, "read"):
            raw = await raw.read()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if response.get("FunctionError") or not isinstance(answer, dict) or "ok" not in answer:
            # The function crashed (timeout, import error) instead of answering.
            detail = answer.get("errorMessage") if isinstance(answer, dict) else raw
            raise TransportError(
                f"{self.function_name} did not answer {call.action}: "
                f"{response.get('FunctionError') or 'unexpected payload'}: {detail!r}"[:1000]
            )
        if not answer["ok"]:
            raise error_from_body(answer, answer.get("status"))
        return answer.get("result")

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            self._client = None
            await stack.aclose()

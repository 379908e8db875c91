"""The AWS clients of a transport: one per service, created on first use and kept (a Lambda
container reuses its connections), with a count of the requests made.

Throttling is retried by botocore itself (``RETRIES``: its "standard" mode backs off with jitter
on ``ThrottlingException``, ``RequestThrottled``... and 5xx), with more attempts than its
default 3: in a wake storm a throttled SendMessage or CreateSchedule waits and goes through
instead of failing the drive that made it (which would count against the run's deliveries)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

#: botocore's retry settings for the transport's clients (see the module docstring)
RETRIES = {"mode": "standard", "max_attempts": 10}


class AwsClients:
    """aioboto3 clients by service name, sharing one session, endpoint and request count."""

    def __init__(self, *, session: Any = None, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._session = session
        self._stack: contextlib.AsyncExitStack | None = None
        #: the clients opened so far, by service (bench/ reads their endpoints)
        self.opened: dict[str, Any] = {}
        self._lock: asyncio.Lock | None = None
        #: AWS requests made, by "service.Operation" (read by tests and bench/)
        self.requests: Counter[str] = Counter()

    async def get(self, service: str) -> Any:
        client = self.opened.get(service)
        if client is not None:
            return client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if service not in self.opened:
                if self._session is None:
                    import aioboto3

                    self._session = aioboto3.Session()
                if self._stack is None:
                    self._stack = contextlib.AsyncExitStack()
                from aiobotocore.config import AioConfig

                kwargs: dict[str, Any] = {"config": AioConfig(retries=RETRIES)}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self.opened[service] = await self._stack.enter_async_context(
                    self._session.client(service, **kwargs)
                )
            return self.opened[service]

    async def close(self) -> None:
        """Close the clients (they are recreated if used again)."""
        stack, self._stack, self.opened = self._stack, None, {}
        if stack is not None:
            await stack.aclose()


def is_error(exc: Exception, *codes: str) -> bool:
    """Whether ``exc`` is an AWS error with one of ``codes`` (``ConflictException``...)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    return response.get("Error", {}).get("Code") in codes

"""Client fixtures. The remote transports are tested against the real stack pieces: the AWS
fixtures of ``tests/aws`` (moto's SQS + Scheduler, a fresh queue per test, SQLite storage),
``pyworkflow/handlers/api.py`` served over real HTTP (``apiserver``) or invoked in-process as Lambda
would, and ``pyworkflow/handlers/worker.py`` pumped from the queue to make runs progress.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pyworkflow import config
from pyworkflow.client import Client
from tests.aws.conftest import (  # noqa: F401 - fixtures
    REGION,
    Aws,
    aws,
    aws_env,
    dynamodb_local,
    moto,
    worker,
)
from tests.client.apiserver import serve

MODULE = "tests.client.workflows"


@pytest.fixture
def storage_kind() -> str:
    """SQLite only here: the DynamoDB backend has its own suite, and the API's tests run on it;
    what the client adds is the wire."""
    return "sqlite"


@pytest.fixture
def api(aws_env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: F811
    """``pyworkflow.handlers.api`` as a fresh container, importing the client tests' workflows."""
    monkeypatch.setenv(config.ENV_MODULE, MODULE)
    from pyworkflow.handlers import api as module

    module.reset()
    yield module
    module.reset()


class _Payload:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self) -> bytes:
        return self._data


@dataclass
class FakeLambda:
    """Stands in for aioboto3's Lambda client: ``invoke`` runs the handler in a thread, as a
    synchronous RequestResponse invoke would (moto cannot run Lambda code)."""

    handler: Any
    invocations: int = 0

    async def invoke(
        self,
        *,
        FunctionName: str,
        Payload: bytes,  # noqa: N803 - boto3's names
        InvocationType: str = "RequestResponse",
        **_: Any,
    ) -> dict[str, Any]:
        self.invocations += 1
        event = json.loads(Payload)
        try:
            answer = await asyncio.to_thread(self.handler, event, None)
        except Exception as error:  # noqa: BLE001 - Lambda reports it as a function error
            body = {"errorMessage": str(error), "errorType": type(error).__name__}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": _Payload(json.dumps(body).encode()),
            }
        return {"StatusCode": 200, "Payload": _Payload(json.dumps(answer).encode())}


@pytest.fixture(params=["http", "lambda", "aws"])
async def remote(
    request: pytest.FixtureRequest,
    aws: Aws,  # noqa: F811
    api: Any,
) -> AsyncIterator[Client]:
    """A client over each remote transport, all against the same stack."""
    if request.param == "http":
        async with serve(api.handler) as server:
            # Signed with the test's dummy credentials (the local server checks nothing; the
            # signature itself is checked in test_http_transport).
            async with Client.http(server.url, region=REGION) as client:
                yield client
    elif request.param == "lambda":
        async with Client.lambda_("pyworkflow-api", client=FakeLambda(api.handler)) as client:
            yield client
    else:
        async with Client.aws(storage=aws.storage) as client:
            yield client

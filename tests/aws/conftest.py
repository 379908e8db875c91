"""AWS end-to-end fixtures: a moto server (SQS + Scheduler) for the session, a fresh work
queue, dead-letter queue and schedule group per test, the worker's environment, a client-side
``AwsRuntime`` (what the API/SDK would use to start, cancel and resume runs) and helpers that
pump the queue through ``pyworkflow/handlers/worker.py``.

Every test runs on DynamoDB (AWS's DynamoDB Local, one JVM per session, a fresh table per test)
and on SQLite (a file under tmp_path). Missing Java or npm fails the DynamoDB tests with the
install hint; it never skips them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyworkflow import config
from pyworkflow.core.models import WorkflowRun
from pyworkflow.dev import moto_server
from pyworkflow.dev.pumps import FakeLambdaContext, PumpResult, fire_due_schedules, pump_queue
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from pyworkflow.transport.aws import AwsDispatcher
from tests.aws.ops import AwsOps

REGION = "us-east-1"
MAX_RECEIVES = 3  # the worker fails a run on the 3rd failing delivery ...
MAX_RECEIVE_COUNT = 4  # ... and SQS dead-letters the message after the 4th
_prefixes = itertools.count(1)


@pytest.fixture(scope="session")
def moto() -> Iterator[moto_server.MotoServer]:
    with moto_server.start() as server:
        yield server


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """The session's DynamoDB Local endpoint, started on first use."""
    from pyworkflow.dev.dynamodb_local import DynamoDBLocalError, running

    try:
        with running() as ddb:
            yield ddb.endpoint_url
    except DynamoDBLocalError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(params=["dynamodb", "sqlite"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def aws_env(
    moto: moto_server.MotoServer,
    tmp_path: Path,
    storage_kind: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> moto_server.AwsStack:
    """Dummy credentials, the moto endpoints, a fresh stack and the worker's settings."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_SQS": moto.endpoint_url,
        "AWS_ENDPOINT_URL_SCHEDULER": moto.endpoint_url,
        "POWERTOOLS_METRICS_NAMESPACE": "pyworkflow-test",
        "POWERTOOLS_DEV": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    stack = moto_server.create_stack(
        moto.endpoint_url,
        f"t{next(_prefixes)}",
        region=REGION,
        visibility_timeout=30,
        max_receive_count=MAX_RECEIVE_COUNT,
    )
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(config.ENV_MODULE, "tests.aws.workflows")
    monkeypatch.setenv(config.ENV_MAX_RECEIVES, str(MAX_RECEIVES))
    if storage_kind == "dynamodb":
        monkeypatch.setenv(config.ENV_STORAGE, "dynamodb")
        monkeypatch.setenv(config.ENV_DYNAMODB_TABLE, f"pw-{stack.scheduler_group}")
        monkeypatch.setenv(config.ENV_DYNAMODB_ENDPOINT, request.getfixturevalue("dynamodb_local"))
    else:
        monkeypatch.setenv(config.ENV_STORAGE, "sqlite")
        monkeypatch.setenv(config.ENV_DB_PATH, str(tmp_path / "aws.db"))
    return stack


@pytest.fixture
def worker(aws_env: moto_server.AwsStack) -> Iterator[Any]:
    """``pyworkflow.handlers.worker``, as a fresh container: its runtime is built from the env on
    the first message and closed after the test."""
    from pyworkflow.handlers import worker as module

    module.reset()
    yield module
    module.reset()


@dataclass
class Aws:
    """Everything a test drives the stack with."""

    stack: moto_server.AwsStack
    client: AwsOps  # the API/SDK side: start, cancel, resume hooks
    storage: StorageBackend
    sqs: Any
    scheduler: Any
    handler: Callable[[dict[str, Any], Any], Any]

    async def pump(self, **kwargs: Any) -> PumpResult:
        kwargs.setdefault("queue_arn", self.stack.queue_arn)
        kwargs.setdefault("region", REGION)
        return await pump_queue(self.handler, self.stack.queue_url, sqs=self.sqs, **kwargs)

    async def pump_until_done(self, run_id: str, **kwargs: Any) -> PumpResult:
        """Pump (delayed messages included) until ``run_id`` has ended."""

        async def ended() -> bool:
            run = await self.storage.get_run(run_id)
            return run is not None and run.status.is_terminal

        kwargs.setdefault("idle_polls", 8)
        return await self.pump(stop_when=ended, **kwargs)

    async def fire(self, now: Any) -> list[str]:
        return await fire_due_schedules(
            self.scheduler, self.sqs, now, group=self.stack.scheduler_group
        )

    async def schedules(self) -> list[str]:
        page = await self.scheduler.list_schedules(GroupName=self.stack.scheduler_group)
        return sorted(s["Name"] for s in page.get("Schedules", []))

    async def run(self, run_id: str) -> WorkflowRun:
        run = await self.storage.get_run(run_id)
        assert run is not None
        return run

    async def queue_depth(self, url: str) -> int:
        attrs = (
            await self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )
        )["Attributes"]
        return sum(int(v) for v in attrs.values())


@pytest.fixture
async def aws(aws_env: moto_server.AwsStack, worker: Any, tmp_path: Path) -> AsyncIterator[Aws]:
    import aioboto3

    session = aioboto3.Session()
    storage: StorageBackend
    if os.environ[config.ENV_STORAGE] == "dynamodb":
        from pyworkflow.runtime.storage_factory import dynamodb_backend
        from pyworkflow.settings import get_settings

        storage = dynamodb_backend(get_settings(), create_table=True)
        await storage.ensure_table()
    else:
        storage = SQLiteStorageBackend(tmp_path / "aws.db")
    dispatcher = AwsDispatcher.from_env(session=session)
    client = AwsOps(AwsRuntime(storage, dispatcher))
    async with session.client("sqs") as sqs, session.client("scheduler") as scheduler:
        yield Aws(
            stack=aws_env,
            client=client,
            storage=storage,
            sqs=sqs,
            scheduler=scheduler,
            handler=worker.handler,
        )
    await client.close()
    await storage.close()


def context_running_out(
    after_calls: int, *, plenty: float = 900.0, little: float = 5.0
) -> Callable[[], FakeLambdaContext]:
    """Contexts for successive invocations: the first reports ``plenty`` seconds left for
    ``after_calls`` questions, then ``little``; later invocations have plenty throughout."""
    made = itertools.count()

    def factory() -> FakeLambdaContext:
        if next(made) > 0:
            return FakeLambdaContext(remaining=plenty)
        asked = itertools.count()
        return FakeLambdaContext(remaining=lambda: plenty if next(asked) < after_calls else little)

    return factory

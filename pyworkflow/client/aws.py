"""The AWS-direct transport: the client writes to the stack's DynamoDB table and sends wake-ups
to its work queue itself (``AwsRuntime``'s client side), with no API in between.

For code that already runs with the stack's IAM permissions (another Lambda, a batch job, an
operator's script): one write and one SQS message per start, no API Gateway hop. Runs are driven
by the stack's worker, never here. Only ``PYWORKFLOW_QUEUE_URL`` and the table are needed; the
Scheduler settings matter only to workers, which create timers.
"""

from __future__ import annotations

from typing import Any

from pyworkflow.client._stored import ServiceTransport
from pyworkflow.config import ENV_QUEUE_URL
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.settings import get_settings
from pyworkflow.storage.base import StorageBackend
from pyworkflow.transport.aws import AwsDispatcher


def build_runtime(
    *,
    table: str | None = None,
    queue_url: str | None = None,
    queue_arn: str | None = None,
    scheduler_group: str | None = None,
    scheduler_role_arn: str | None = None,
    region: str | None = None,
    dynamodb_endpoint: str | None = None,
    storage: StorageBackend | None = None,
    session: Any = None,
) -> AwsRuntime:
    """An ``AwsRuntime`` from explicit arguments, each defaulting to its ``PYWORKFLOW_*``
    variable (the same names the stack's functions get)."""
    settings = get_settings()
    url = queue_url or settings.queue_url
    if not url:
        raise ConfigurationError(
            f"The AWS-direct client needs the work queue: pass queue_url= or set {ENV_QUEUE_URL} "
            "(the stack's WorkQueueUrl output)"
        )
    if session is None and region:
        import aioboto3

        session = aioboto3.Session(region_name=region)
    if storage is None:
        from pyworkflow.storage.dynamodb import DynamoDBStorageBackend

        storage = DynamoDBStorageBackend(
            table or settings.table,
            region=region or settings.region,
            endpoint_url=dynamodb_endpoint or settings.dynamodb_endpoint,
            retention_days=settings.retention_days,
            session=session,
        )
    dispatcher = AwsDispatcher(
        url,
        queue_arn=queue_arn or settings.queue_arn or "",
        scheduler_group=scheduler_group or settings.scheduler_group or "",
        scheduler_role_arn=scheduler_role_arn or settings.scheduler_role_arn or "",
        session=session,
    )
    return AwsRuntime(storage, dispatcher)


class AwsTransport(ServiceTransport[AwsRuntime]):
    """Over an ``AwsRuntime``; ``owns_runtime`` says whether ``close()`` closes it."""

    def __init__(self, runtime: AwsRuntime, *, owns_runtime: bool = True) -> None:
        self._runtime = runtime
        self._owns = owns_runtime

    @property
    def runtime(self) -> AwsRuntime:
        return self._runtime

    async def close(self) -> None:
        if self._owns:
            await self._runtime.close()

"""A moto server on loopback for SQS and EventBridge Scheduler, and the resources the worker
needs in it (work queue + dead-letter queue, schedule group, a role ARN).

Why a server and not ``mock_aws``: aioboto3 talks HTTP through aiohttp, which ``mock_aws``
cannot intercept. moto accepts any well-formed role ARN, so no IAM is set up. moto never fires
schedules nor runs Lambda: ``infra.pumps`` does both.

    with start() as moto:
        stack = create_stack(moto.endpoint_url, "t1")
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DEFAULT_REGION = "us-east-1"
FAKE_ROLE_ARN = "arn:aws:iam::123456789012:role/pyworkflow-scheduler"


@dataclass
class MotoServer:
    endpoint_url: str
    server: Any


@contextlib.contextmanager
def start() -> Iterator[MotoServer]:
    """Run a moto server on 127.0.0.1 on a free port until the block ends."""
    import logging

    from moto.server import ThreadedMotoServer

    # werkzeug logs every request on stderr unless told otherwise: the local stack polls.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(endpoint_url=f"http://{host}:{port}", server=server)
    finally:
        server.stop()


@dataclass
class AwsStack:
    """What the worker's environment points at."""

    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    scheduler_group: str
    scheduler_role_arn: str
    visibility_timeout: int
    max_receive_count: int

    def env(self) -> dict[str, str]:
        """The ``PYWORKFLOW_*`` variables of the worker for this stack."""
        from pyworkflow import config

        return {
            config.ENV_QUEUE_URL: self.queue_url,
            config.ENV_QUEUE_ARN: self.queue_arn,
            config.ENV_SCHEDULER_GROUP: self.scheduler_group,
            config.ENV_SCHEDULER_ROLE_ARN: self.scheduler_role_arn,
            config.ENV_VISIBILITY_TIMEOUT: str(self.visibility_timeout),
        }


def create_stack(
    endpoint_url: str,
    prefix: str,
    *,
    region: str = DEFAULT_REGION,
    visibility_timeout: int = 30,
    max_receive_count: int = 6,
) -> AwsStack:
    """Create ``<prefix>-work`` with a redrive to ``<prefix>-dlq`` after ``max_receive_count``
    receives, and the schedule group ``<prefix>-timers``. Synchronous boto3: setup is not the
    code under test, and it runs before any event loop."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)
    scheduler = boto3.client("scheduler", endpoint_url=endpoint_url, region_name=region)
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=f"{prefix}-work", Attributes={
        "VisibilityTimeout": str(visibility_timeout),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": str(max_receive_count)}),
    })["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    group = f"{prefix}-timers"
    scheduler.create_schedule_group(Name=group)
    return AwsStack(queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url,
                    dlq_arn=dlq_arn, scheduler_group=group, scheduler_role_arn=FAKE_ROLE_ARN,
                    visibility_timeout=visibility_timeout, max_receive_count=max_receive_count)

"""A moto server on loopback for SQS, EventBridge Scheduler and S3, and the resources the worker
needs in it, created from ``template.yaml`` (work queue + dead-letter queue with the template's
redrive policy, the timer schedule group, the payload bucket, a role ARN).

Why a server and not ``mock_aws``: aioboto3 talks HTTP through aiohttp, which ``mock_aws``
cannot intercept. moto accepts any well-formed role ARN, so no IAM is set up. moto never fires
schedules nor runs Lambda: ``pyworkflow.dev.pumps`` does both.

    with start() as moto:
        stack = create_stack(moto.endpoint_url, "t1")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyworkflow.dev.template import StackTemplate

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
    blob_bucket: str | None = None  # the template's payload bucket, in moto
    s3_endpoint: str | None = None

    def env(self) -> dict[str, str]:
        """The ``PYWORKFLOW_*`` variables of the worker for this stack (and, with a bucket,
        the S3 endpoint: large payloads must never leave for the real S3)."""
        from pyworkflow import config

        env = {
            config.ENV_QUEUE_URL: self.queue_url,
            config.ENV_QUEUE_ARN: self.queue_arn,
            config.ENV_SCHEDULER_GROUP: self.scheduler_group,
            config.ENV_SCHEDULER_ROLE_ARN: self.scheduler_role_arn,
            config.ENV_VISIBILITY_TIMEOUT: str(self.visibility_timeout),
        }
        if self.blob_bucket and self.s3_endpoint:
            env[config.ENV_BLOB_BUCKET] = self.blob_bucket
            env["AWS_ENDPOINT_URL_S3"] = self.s3_endpoint
        return env


def create_queues(tpl: StackTemplate, endpoint_url: str, *, region: str) -> dict[str, str]:
    """Create the template's SQS queues (redrive targets first) and record their URL / ARN in
    ``tpl`` for later references; returns logical id -> URL."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)
    urls = {}
    for logical_id in tpl.queue_ids():
        spec = tpl.queue_spec(logical_id)
        url = sqs.create_queue(QueueName=spec.name, Attributes=spec.attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        tpl.set_physical(logical_id, Ref=url, Arn=arn, QueueName=spec.name, QueueUrl=url)
        urls[logical_id] = url
    return urls


def create_schedule_groups(tpl: StackTemplate, endpoint_url: str, *, region: str) -> dict[str, str]:
    """Create the template's Scheduler schedule groups; returns logical id -> name."""
    import boto3

    scheduler = boto3.client("scheduler", endpoint_url=endpoint_url, region_name=region)
    groups = tpl.schedule_groups()
    for logical_id, name in groups.items():
        arn = scheduler.create_schedule_group(Name=name)["ScheduleGroupArn"]
        tpl.set_physical(logical_id, Ref=name, Arn=arn)
    return groups


def create_buckets(tpl: StackTemplate, endpoint_url: str, *, region: str) -> dict[str, str]:
    """Create the template's S3 buckets (the payload bucket; its lifecycle and policy have no
    local effect); returns logical id -> name."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    buckets = tpl.buckets()
    for logical_id, name in buckets.items():
        if region == "us-east-1":  # S3 refuses a LocationConstraint naming us-east-1
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        tpl.set_physical(
            logical_id, Ref=name, Arn=f"arn:aws:s3:::{name}", DomainName=f"{name}.s3.amazonaws.com"
        )
    return buckets


def create_stack(
    endpoint_url: str,
    prefix: str,
    *,
    region: str = DEFAULT_REGION,
    visibility_timeout: int = 30,
    max_receive_count: int = 6,
) -> AwsStack:
    """Create template.yaml's ``WorkQueue`` (redrive to ``DeadLetterQueue`` after
    ``max_receive_count`` receives), ``TimerScheduleGroup`` and ``PayloadBucket``, named
    ``<prefix>-<logical id>``.
    The two numbers are the template's parameters, not checked against its ranges (tests want
    a short visibility timeout). Synchronous boto3: setup is not the code under test, and it
    runs before any event loop."""
    from pyworkflow.dev.template import StackTemplate

    tpl = StackTemplate.load(
        parameters={"VisibilityTimeout": visibility_timeout, "MaxReceiveCount": max_receive_count},
        region=region,
        stack_name=prefix,
        check_ranges=False,
    )
    urls = create_queues(tpl, endpoint_url, region=region)
    groups = create_schedule_groups(tpl, endpoint_url, region=region)
    buckets = create_buckets(tpl, endpoint_url, region=region)
    physical = tpl.resolver.physical
    work = tpl.queue_spec("WorkQueue")
    return AwsStack(
        queue_url=urls["WorkQueue"],
        queue_arn=physical["WorkQueue"]["Arn"],
        dlq_url=urls["DeadLetterQueue"],
        dlq_arn=physical["DeadLetterQueue"]["Arn"],
        scheduler_group=groups["TimerScheduleGroup"],
        scheduler_role_arn=FAKE_ROLE_ARN,
        visibility_timeout=work.visibility_timeout,
        max_receive_count=work.max_receive_count or max_receive_count,
        blob_bucket=buckets.get("PayloadBucket"),
        s3_endpoint=endpoint_url,
    )


def record_aws_only(tpl: StackTemplate, region: str) -> None:
    """Values for what exists only on AWS but may be referred to: roles (moto's Scheduler
    takes any role ARN; ``pyworkflow.dev.iam`` creates them by these names), functions, the
    HTTP API."""
    from pyworkflow.dev.template import ACCOUNT_ID

    for logical_id in tpl.role_ids():
        name = tpl.physical_name(logical_id)
        tpl.set_physical(
            logical_id,
            Ref=name,
            RoleId=f"AROA{logical_id.upper()[:17]}",
            Arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
        )
    for logical_id in tpl.function_ids():
        name = tpl.physical_name(logical_id)
        tpl.set_physical(
            logical_id,
            Ref=name,
            Arn=f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}",
        )
    for logical_id in tpl.resources("AWS::Serverless::HttpApi"):
        tpl.set_physical(logical_id, Ref="localapi")

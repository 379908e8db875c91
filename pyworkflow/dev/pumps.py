"""What AWS does between the services, done by hand for a local stack: the SQS → Lambda event
source mapping (``pump_queue``) and EventBridge Scheduler firing one-time schedules
(``fire_due_schedules``). moto stores queues and schedules but never invokes anything.

``pump_queue`` shapes each batch exactly as Lambda's SQS event source does (see
``tests/events/sqs_message.json``), calls the handler in a worker thread (the handler runs its
own event loop, as in a Lambda container), deletes the records it did not report in
``batchItemFailures`` and leaves the others for redelivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

Handler = Callable[[dict[str, Any], Any], Any]

_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")


@dataclass
class FakeLambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read.
    ``remaining`` is the seconds left, or a function returning them (to run out mid-way)."""

    remaining: float | Callable[[], float] = 900.0
    function_name: str = "pyworkflow-worker"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:pyworkflow-worker"
    log_group_name: str = "/aws/lambda/pyworkflow-worker"
    log_stream_name: str = "2030/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        left = self.remaining() if callable(self.remaining) else self.remaining
        return max(0, int(left * 1000))


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """A Lambda SQS event for messages as ``ReceiveMessage`` returned them."""
    records = []
    for m in messages:
        attrs = m.get("Attributes", {})
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attrs.get("SentTimestamp", "0"),
                    "SenderId": attrs.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                    "ApproximateFirstReceiveTimestamp": attrs.get(
                        "ApproximateFirstReceiveTimestamp", "0"
                    ),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": a.get("StringValue"),
                        "binaryValue": a.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": a["DataType"],
                    }
                    for name, a in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


@dataclass
class PumpResult:
    invocations: int = 0
    received: int = 0
    deleted: int = 0
    failed: int = 0
    responses: list[dict[str, Any]] = field(default_factory=list)


async def receive_batch(
    sqs: Any, queue_url: str, *, batch_size: int = 10, wait_seconds: int = 1
) -> list[dict[str, Any]]:
    """One ReceiveMessage with every system attribute (ApproximateReceiveCount included)."""
    response = await sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


async def invoke(
    handler: Handler, messages: list[dict[str, Any]], context: Any, *, queue_arn: str, region: str
) -> dict[str, Any]:
    """Call the handler as Lambda would, in a thread; returns its response. A handler that
    raises fails the whole batch, as on Lambda."""
    event = sqs_event(messages, queue_arn=queue_arn, region=region)
    try:
        response = await asyncio.to_thread(handler, event, context)
    except Exception:  # noqa: BLE001 - Lambda retries the whole batch
        return {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
    return response or {"batchItemFailures": []}


async def settle(
    sqs: Any,
    queue_url: str,
    messages: list[dict[str, Any]],
    response: dict[str, Any],
    *,
    retry_failed_now: bool = True,
) -> tuple[int, int]:
    """Delete the records that succeeded; make the failed ones visible again at once (instead
    of after the visibility timeout) if ``retry_failed_now``. Returns (deleted, failed)."""
    failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed_ids]
    for start in range(0, len(done), 10):
        await sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ],
        )
    if retry_failed_now:
        for m in messages:
            if m["MessageId"] in failed_ids:
                await sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
    return len(done), len(failed_ids)


async def pump_queue(
    handler: Handler,
    queue_url: str,
    *,
    sqs: Any,
    queue_arn: str,
    region: str = "us-east-1",
    context_factory: Callable[[], Any] = FakeLambdaContext,
    batch_size: int = 10,
    wait_seconds: int = 1,
    idle_polls: int = 1,
    max_invocations: int = 200,
    stop_when: Callable[[], Awaitable[bool]] | None = None,
    retry_failed_now: bool = True,
) -> PumpResult:
    """Deliver the queue's messages to ``handler`` batch by batch, until ``idle_polls``
    receives in a row come back empty (each waits up to ``wait_seconds``: delayed messages
    arrive meanwhile), ``stop_when()`` is true, or ``max_invocations`` is reached."""
    result = PumpResult()
    idle = 0
    while result.invocations < max_invocations:
        if stop_when is not None and await stop_when():
            break
        messages = await receive_batch(
            sqs, queue_url, batch_size=batch_size, wait_seconds=wait_seconds
        )
        if not messages:
            idle += 1
            if idle >= idle_polls:
                break
            continue
        idle = 0
        result.received += len(messages)
        response = await invoke(
            handler, messages, context_factory(), queue_arn=queue_arn, region=region
        )
        result.invocations += 1
        result.responses.append(response)
        deleted, failed = await settle(
            sqs, queue_url, messages, response, retry_failed_now=retry_failed_now
        )
        result.deleted += deleted
        result.failed += failed
    return result


def parse_at(expression: str, timezone: str = "UTC") -> datetime | None:
    """The time of a one-time ``at(...)`` expression (None for rate/cron schedules)."""
    match = _AT.match(expression.strip())
    if match is None:
        return None
    local = datetime.fromisoformat(match.group(1))
    return local.replace(tzinfo=UTC if timezone in ("", "UTC") else ZoneInfo(timezone))


def queue_url_of(arn: str) -> tuple[str, str]:
    """(queue name, account) of an SQS queue ARN."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {arn}")
    return parts[5], parts[4]


async def fire_due_schedules(
    scheduler: Any, sqs: Any, now: datetime, *, group: str | None = None
) -> list[str]:
    """Fire every one-time schedule whose time has come: send its target's Input to its target
    queue and delete it if ``ActionAfterCompletion`` is DELETE. Returns the names fired."""
    fired: list[str] = []
    kwargs: dict[str, Any] = {"GroupName": group} if group else {}
    summaries: list[dict[str, Any]] = []
    while True:
        page = await scheduler.list_schedules(**kwargs)
        summaries.extend(page.get("Schedules", []))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    urls: dict[str, str] = {}
    for summary in summaries:
        if summary.get("State", "ENABLED") != "ENABLED":
            continue
        schedule = await scheduler.get_schedule(
            Name=summary["Name"], GroupName=summary.get("GroupName", "default")
        )
        when = parse_at(
            schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone") or "UTC"
        )
        if when is None or when > now:
            continue
        target = schedule["Target"]
        if target["Arn"] not in urls:
            name, account = queue_url_of(target["Arn"])
            urls[target["Arn"]] = (
                await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            )["QueueUrl"]
        await sqs.send_message(QueueUrl=urls[target["Arn"]], MessageBody=target.get("Input", ""))
        if schedule.get("ActionAfterCompletion") == "DELETE":
            await scheduler.delete_schedule(
                Name=schedule["Name"], GroupName=schedule.get("GroupName", "default")
            )
        fired.append(schedule["Name"])
    return fired


# --- continuous polling, for the local stack ---------------------------------------------------
Invoker = Callable[[dict[str, Any], Any], Awaitable[Any]]


def failed_ids(
    messages: list[dict[str, Any]], response: Any, *, report_batch_item_failures: bool
) -> set[str]:
    """Which messages Lambda leaves on the queue after an invocation that returned ``response``.

    Without ReportBatchItemFailures a normal return deletes the whole batch. With it, the
    listed ``itemIdentifier``s stay; a response Lambda cannot read (an identifier empty or not
    in the batch) fails the whole batch, as AWS documents."""
    every = {m["MessageId"] for m in messages}
    if not report_batch_item_failures or not response:
        return set()
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    ids: set[str] = set()
    for failure in failures if isinstance(failures, list) else [None]:
        ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not ident or ident not in every:
            return every
        ids.add(ident)
    return ids


@dataclass
class SqsEventSource:
    """Lambda's SQS event source mapping, polling until stopped: receive up to ``batch_size``
    messages (waiting up to ``batching_window`` seconds to fill a batch), invoke, delete what
    succeeded. Failed messages are left alone, so they come back after the queue's visibility
    timeout, and SQS (moto does it on receive) moves a message to the dead-letter queue once
    its receive count reaches the redrive policy's ``maxReceiveCount``."""

    invoke: Invoker  # runs the function (in its "container" thread)
    sqs: Any
    queue_url: str
    queue_arn: str
    region: str = "us-east-1"
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = True
    context_factory: Callable[[], Any] = FakeLambdaContext
    wait_seconds: int = 1
    # told of each delivered batch: the messages, the ids that failed, the invoke's seconds
    on_delivery: Callable[[list[dict[str, Any]], set[str], float], None] | None = None
    stats: PumpResult = field(default_factory=PumpResult)
    _invoking: bool = field(default=False, init=False, repr=False)

    async def poll_once(self) -> int:
        """One receive → invoke → settle; returns how many messages were delivered."""
        messages = await receive_batch(
            self.sqs, self.queue_url, batch_size=self.batch_size, wait_seconds=self.wait_seconds
        )
        if messages and self.batching_window > 0 and len(messages) < self.batch_size:
            deadline = asyncio.get_running_loop().time() + self.batching_window
            while len(messages) < self.batch_size:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                messages += await receive_batch(
                    self.sqs,
                    self.queue_url,
                    batch_size=self.batch_size - len(messages),
                    wait_seconds=max(0, min(20, int(left))),
                )
        if not messages:
            return 0
        event = sqs_event(messages, queue_arn=self.queue_arn, region=self.region)
        self._invoking = True
        started = asyncio.get_running_loop().time()
        try:
            try:
                response = await self.invoke(event, self.context_factory())
                failed = failed_ids(
                    messages, response, report_batch_item_failures=self.report_batch_item_failures
                )
            except Exception:  # noqa: BLE001 - a function error fails the whole batch
                response, failed = None, {m["MessageId"] for m in messages}
            deleted, _ = await settle(
                self.sqs,
                self.queue_url,
                messages,
                {"batchItemFailures": [{"itemIdentifier": i} for i in failed]},
                retry_failed_now=False,
            )
        finally:
            self._invoking = False
        if self.on_delivery is not None:
            self.on_delivery(messages, failed, asyncio.get_running_loop().time() - started)
        self.stats.invocations += 1
        self.stats.received += len(messages)
        self.stats.deleted += deleted
        self.stats.failed += len(failed)
        if isinstance(response, dict):
            self.stats.responses = [*self.stats.responses[-99:], response]
        return len(messages)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set. A receive in progress is abandoned at once (its messages
        come back after the visibility timeout); an invocation in progress is finished."""
        while not stop.is_set():
            poll = asyncio.ensure_future(self.poll_once())
            stopping = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if poll in done:
                stopping.cancel()
                poll.result()
                continue
            # Stopping: only cut a receive short, never an invocation that has begun.
            if self._invoking:
                with contextlib.suppress(Exception):
                    await poll
            else:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poll
            return


def message_label(body: str) -> str:
    """What a work-queue message is about, for a console line: a run and why, or a tick."""
    try:
        data = json.loads(body)
    except ValueError:
        return "message"
    if not isinstance(data, dict):
        return "message"
    if "run_id" in data:
        return f"{data['run_id']} ({data.get('reason', 'wake')})"
    if "schedule_id" in data:
        return f"tick of schedule {data['schedule_id']}"
    return "message"


def delivery_reporter(
    function: str, event: Callable[[str], None]
) -> Callable[[list[dict[str, Any]], set[str], float], None]:
    """An ``SqsEventSource.on_delivery`` telling ``event`` one line per delivered message."""

    def report(messages: list[dict[str, Any]], failed: set[str], seconds: float) -> None:
        for message in messages:
            outcome = "failed" if message["MessageId"] in failed else "ok"
            event(
                f"SQS        {message_label(message.get('Body', ''))} → {function} "
                f"{outcome} ({seconds * 1000:.0f} ms for {len(messages)} message(s))"
            )

    return report

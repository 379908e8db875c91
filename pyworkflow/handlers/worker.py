"""The worker Lambda: an SQS batch of wake-up messages → drive each named run.

Thin on purpose: the logic is ``pyworkflow.runtime.aws.AwsRuntime.drive_message``. This module
only keeps the per-container state (one event loop, one runtime, so one boto client of each
kind per process, reused across invocations), turns records into calls, and reports partial
batch failures, logs (with the run id) and EMF metrics through Powertools.

Environment: ``PYWORKFLOW_MODULE`` (module(s) defining the workflows), ``PYWORKFLOW_QUEUE_URL``,
``PYWORKFLOW_QUEUE_ARN``, ``PYWORKFLOW_SCHEDULER_GROUP``, ``PYWORKFLOW_SCHEDULER_ROLE_ARN``,
``PYWORKFLOW_VISIBILITY_TIMEOUT``, ``PYWORKFLOW_MAX_RECEIVES`` (default 5, keep it below the
dead-letter redrive's maxReceiveCount), ``PYWORKFLOW_SQS_DELAY_MAX_SECONDS``,
``PYWORKFLOW_STORAGE=dynamodb`` and the storage's own settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pyworkflow.config import import_modules
from pyworkflow.core.models import RunStatus
from pyworkflow.runtime.aws import AwsRuntime, PoisonMessageError
from pyworkflow.settings import get_settings
from pyworkflow.transport.messages import (
    BucketTick,
    MalformedMessageError,
    ScheduleTick,
    parse_message,
)

logger = Logger(service=get_settings().service_name or "pyworkflow-worker")
metrics = Metrics(namespace=get_settings().metrics_namespace or "pyworkflow")
# Report failed records instead of raising when all of a batch fail: SQS retries exactly those.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# One loop per container, kept across invocations: aioboto3 clients belong to the loop that
# opened them, and reopening them on every invocation would cost a TLS handshake each time.
_loop = asyncio.new_event_loop()
_runtime: AwsRuntime | None = None
_modules_imported = False


def _import_workflows() -> None:
    """Import the user's workflows once per cold start. A failed import is logged, not fatal:
    runs of other workflows still go on, and runs of the missing ones fail with that reason
    after ``PYWORKFLOW_MAX_RECEIVES`` deliveries instead of crashing every invocation."""
    global _modules_imported
    if _modules_imported:
        return
    _modules_imported = True
    spec = get_settings().module or ""
    if spec:
        try:
            import_modules(spec)
        except Exception:  # noqa: BLE001 - reported per run by the executor
            logger.exception("could not import the workflow module(s) %s", spec)


def get_runtime() -> AwsRuntime:
    """The container's runtime, built from the environment on first use."""
    global _runtime
    _import_workflows()
    if _runtime is None:
        _runtime = AwsRuntime.from_env()
    return _runtime


def reset(runtime: AwsRuntime | None = None) -> None:
    """Drop the container's runtime (closing its clients) and optionally install another: for
    tests, which play many "containers" in one process. Call it outside any running loop."""
    global _runtime, _modules_imported
    old, _runtime = _runtime, runtime
    _modules_imported = False
    if old is not None:
        _loop.run_until_complete(old.close())


def _time_left(lambda_context: Any) -> Callable[[], float] | None:
    """Seconds left in this invocation, from Lambda's context (None outside Lambda)."""
    if lambda_context is None:
        return None

    def time_left() -> float:
        return float(lambda_context.get_remaining_time_in_millis()) / 1000

    return time_left


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    """One message: drive its run. Raising marks the record failed (SQS redelivers it)."""
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        message = parse_message(record.body)
    except MalformedMessageError as exc:
        # Retrying cannot fix it: acknowledge it, loudly.
        logger.error(
            "dropping malformed message", extra={"message_id": record.message_id, "error": str(exc)}
        )
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=1)
        return
    runtime = get_runtime()
    if isinstance(message, ScheduleTick):  # a schedule's EventBridge tick: start what is due
        started = _loop.run_until_complete(runtime.schedules.fire(message))
        if started:
            metrics.add_metric(
                name="ScheduledRunsStarted", unit=MetricUnit.Count, value=len(started)
            )
        logger.info("schedule tick", extra={"schedule_id": message.schedule_id, "started": started})
        return
    time_left = _time_left(lambda_context)
    if isinstance(message, BucketTick):  # a due bucket: wake its runs, 10 a request
        woken = _loop.run_until_complete(runtime.wake_bucket(message, time_left=time_left))
        if woken:
            metrics.add_metric(name="RunsWokenByBucket", unit=MetricUnit.Count, value=woken)
        logger.info("due bucket", extra={"bucket": str(message.due_bucket), "woken": woken})
        return
    logger.append_keys(run_id=message.run_id)
    try:
        try:
            outcome = _loop.run_until_complete(
                runtime.drive_message(
                    message.model_dump(), time_left=time_left, receive_count=receive_count
                )
            )
        except PoisonMessageError:
            logger.error(
                "poison message: run marked failed, message to the dead-letter queue",
                extra={"receive_count": receive_count},
            )
            metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
            raise
        except Exception:
            logger.exception(
                "drive failed; the message will be delivered again",
                extra={"receive_count": receive_count},
            )
            raise
        stats = outcome.stats
        for name, value in (
            ("RunsStarted", stats.runs_started),
            ("StepsExecuted", stats.steps_executed),
            ("EventsReplayed", stats.events_replayed),
        ):
            if value:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if not outcome.noop and outcome.status == RunStatus.COMPLETED:
            metrics.add_metric(name="RunsCompleted", unit=MetricUnit.Count, value=1)
        elif not outcome.noop and outcome.status == RunStatus.FAILED:
            metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
        logger.info(
            "message done",
            extra={"reason": message.reason, "noop": outcome.noop, "status": str(outcome.status)},
        )
    finally:
        logger.remove_keys(["run_id"])


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (SQS event source with ``ReportBatchItemFailures``). A scheduled
    invoke with ``{"pyworkflow": "sweep"}`` wakes every run that is due, and fires every
    schedule that is due, instead."""
    if event.get("pyworkflow") == "sweep":
        woken = _loop.run_until_complete(get_runtime().sweep())
        metrics.add_metric(name="RunsSwept", unit=MetricUnit.Count, value=len(woken))
        logger.info("sweep", extra={"woken": len(woken)})
        return {"woken": woken}
    metrics.add_metric(
        name="MessagesReceived", unit=MetricUnit.Count, value=len(event.get("Records", []))
    )
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )

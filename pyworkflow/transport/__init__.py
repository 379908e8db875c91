"""Wake-up delivery: how a run gets driven again, now or at a time, and nothing else.

``protocol.Dispatcher`` is what the executor calls (wake, wake_at, start_child, forget);
``messages`` is the wire format the worker parses (a run's wake-up, a schedule's tick).
Implementations: ``aws.AwsDispatcher`` composes ``sqs.SqsQueue`` (wake-ups, and waits up to
SQS's ``DelaySeconds`` limit) with ``scheduler.SchedulerTimers`` (longer waits, as one-time
EventBridge Scheduler schedules); the embedded runtime delivers on this process's event loop
with ``local.LoopDelivery``.

The transport knows runs only by id: it imports no runtime, service or entry point (an
import-linter contract in ``pyproject.toml`` says so).
"""

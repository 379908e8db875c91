"""The deployable stack end to end on one machine: requests over real HTTP to the API function
behind the HTTP API shim; the worker fed by the work queue with Lambda's SQS semantics; timers
through EventBridge Scheduler schedules fired by the stack; redelivery and the dead-letter
queue. Nothing is called in-process except to plant a poison message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from pyworkflow.core.clock import new_id
from pyworkflow.dev.stack import LocalStack
from tests.e2e import workflows as wf
from tests.e2e.conftest import MAX_RECEIVE_COUNT, SCHEDULER_CLOCK, Api, until


def _client(stack: LocalStack, service: str) -> Any:
    assert stack.info is not None
    endpoint = stack.info.dynamodb_endpoint if service == "dynamodb" else stack.info.moto_endpoint
    return boto3.client(service, endpoint_url=endpoint, region_name=stack.info.region)


def _timer_schedules(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.info is not None
    group = stack.info.schedule_groups["TimerScheduleGroup"]
    return list(_client(stack, "scheduler").list_schedules(GroupName=group)["Schedules"])


def _schedules_of(stack: LocalStack, run_id: str) -> list[str]:
    scheduler = _client(stack, "scheduler")
    names = []
    for summary in _timer_schedules(stack):
        detail = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
        if json.loads(detail["Target"]["Input"]).get("run_id") == run_id:
            names.append(summary["Name"])
    return names


def test_health_and_workflows(api: Api) -> None:
    assert api.ok("GET", "/health") == {"status": "ok"}
    names = {w["name"] for w in api.ok("GET", "/workflows")["items"]}
    assert {"e2e_add", "e2e_sleeper", "e2e_approval", "e2e_chain"} <= names


def test_start_a_run_and_see_it_complete(api: Api) -> None:
    started = api.ok("POST", "/runs", {"workflow": "e2e_add", "args": [2, 3]}, expect=202)
    run = api.wait(started["run_id"], "completed")
    assert run["result"] == 6
    assert "lease_owner" not in run and "version" not in run
    events = api.ok("GET", f"/runs/{run['run_id']}/events")["items"]
    types = [e["type"] for e in events]
    assert types[0] == "workflow.started" and types[-1] == "workflow.completed"
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    listed = api.ok("GET", "/runs?workflow=e2e_add&limit=50")["items"]
    assert run["run_id"] in {r["run_id"] for r in listed}
    # The same idempotency key gives the same run.
    key = new_id("idem")
    first = api.ok(
        "POST", "/runs", {"workflow": "e2e_add", "args": [1, 1], "idempotency_key": key}, expect=202
    )
    again = api.ok(
        "POST", "/runs", {"workflow": "e2e_add", "args": [1, 1], "idempotency_key": key}, expect=202
    )
    assert first["run_id"] == again["run_id"]


def test_bad_requests_are_4xx_not_5xx(api: Api) -> None:
    status, body = api.call("POST", "/runs", {"workflow": "no_such_workflow"})
    assert 400 <= status < 500 and body["error"]["type"]
    status, body = api.call("GET", f"/runs/{new_id('run')}")
    assert status == 404 and body["error"]["message"]


def test_sleep_is_woken_by_a_fired_scheduler_schedule(stack: LocalStack, api: Api) -> None:
    run_id = api.ok("POST", "/runs", {"workflow": "e2e_sleeper", "args": [3]}, expect=202)["run_id"]
    # The sleep is longer than PYWORKFLOW_SQS_DELAY_MAX_SECONDS (0): a one-time Scheduler
    # schedule, not a delayed message, wakes the run.
    schedules = until(
        lambda: _schedules_of(stack, run_id), 30, what="the sleep's Scheduler schedule"
    )
    assert len(schedules) == 1
    waiting = api.run(run_id)
    assert waiting["status"] in ("suspended", "completed")
    run = api.wait(run_id, "completed")
    assert run["result"] == "woke with 3"
    # The schedule fired into the work queue and deleted itself (ActionAfterCompletion).
    assert _schedules_of(stack, run_id) == []
    types = [e["type"] for e in api.ok("GET", f"/runs/{run_id}/events")["items"]]
    assert "sleep.started" in types and "sleep.completed" in types


def test_hook_resumed_through_the_public_webhook(api: Api) -> None:
    run_id = api.ok("POST", "/runs", {"workflow": "e2e_approval", "args": ["o-7"]}, expect=202)[
        "run_id"
    ]
    token = until(lambda: wf.token_of(run_id), 30, what="the hook's token")
    api.wait(run_id, "suspended")
    resumed = api.ok("POST", f"/hooks/{token}", {"approved": True}, expect=202)
    assert resumed["run_id"] == run_id
    run = api.wait(run_id, "completed")
    assert run["result"] == {"order": "o-7", "approved": True}
    # The token is spent, and never appears in the run's history.
    status, _ = api.call("POST", f"/hooks/{token}", {"approved": False})
    assert status in (404, 409, 410)
    events = json.dumps(api.ok("GET", f"/runs/{run_id}/events"))
    assert token not in events
    status, _ = api.call("POST", "/hooks/whk_not_a_real_token", {})
    assert status == 404


def test_cancel_a_sleeping_run(stack: LocalStack, api: Api) -> None:
    run_id = api.ok("POST", "/runs", {"workflow": "e2e_sleeper", "args": [3600]}, expect=202)[
        "run_id"
    ]
    until(lambda: _schedules_of(stack, run_id), 30, what="the sleep's Scheduler schedule")
    api.wait(run_id, "suspended")
    cancelled = api.ok("POST", f"/runs/{run_id}/cancel", {"reason": "changed my mind"}, expect=202)
    assert cancelled == {"run_id": run_id, "cancelled": True}
    run = api.wait(run_id, "cancelled")
    assert run["status"] == "cancelled"
    # Its hour-long timer is gone, and cancelling again changes nothing.
    until(lambda: _schedules_of(stack, run_id) == [], 30, what="the timer to be deleted")
    status, again = api.call("POST", f"/runs/{run_id}/cancel", {})
    assert (status, again) in ((202, {"run_id": run_id, "cancelled": False}), (409, again)), (
        status,
        again,
    )
    assert api.run(run_id)["status"] == "cancelled"


def test_continue_as_new_chain(api: Api) -> None:
    first = api.ok("POST", "/runs", {"workflow": "e2e_chain", "args": [0, 2]}, expect=202)["run_id"]

    def finished_chain() -> list[dict[str, Any]] | None:
        items = api.ok("GET", f"/runs/{first}/chain")["items"]
        return items if items and items[-1]["status"] == "completed" else None

    chain = until(finished_chain, 60, what="the chain to finish")
    assert [r["status"] for r in chain] == ["continued_as_new", "continued_as_new", "completed"]
    assert chain[0]["run_id"] == first
    assert chain[-1]["result"] == 2
    for older, newer in zip(chain, chain[1:], strict=False):
        assert older["continued_to_run_id"] == newer["run_id"]
        assert newer["continued_from_run_id"] == older["run_id"]
    # Any run of the chain shows the whole chain.
    assert [r["run_id"] for r in api.ok("GET", f"/runs/{chain[-1]['run_id']}/chain")["items"]] == [
        r["run_id"] for r in chain
    ]


def test_poison_message_goes_to_the_dlq_and_fails_its_run(stack: LocalStack, api: Api) -> None:
    """A run whose workflow no function defines: every delivery fails; the worker marks the run
    failed with the reason on delivery MaxReceiveCount - 1, and SQS moves the message to the
    dead-letter queue after MaxReceiveCount."""
    import asyncio

    from pyworkflow.core.events import Event, EventType
    from pyworkflow.core.models import WorkflowRun
    from pyworkflow.storage.dynamodb import DynamoDBStorageBackend
    from pyworkflow.transport.aws import AwsDispatcher

    assert stack.info is not None
    info = stack.info
    run_id = new_id("run")
    now = datetime.now(UTC)

    async def plant() -> None:
        storage = DynamoDBStorageBackend(
            info.tables["WorkflowTable"], endpoint_url=info.dynamodb_endpoint
        )
        try:
            await storage.create_run(
                WorkflowRun(
                    run_id=run_id, workflow_name="nowhere.defined", created_at=now, updated_at=now
                ),
                [
                    Event(
                        event_id=new_id("evt"),
                        run_id=run_id,
                        type=EventType.WORKFLOW_STARTED,
                        timestamp=now,
                        sequence=1,
                        data={"workflow_name": "nowhere.defined", "args": [], "kwargs": {}},
                    )
                ],
            )
        finally:
            await storage.close()

    asyncio.run(plant())
    sqs = _client(stack, "sqs")
    body = AwsDispatcher.body(run_id, "start")
    sqs.send_message(QueueUrl=info.queues["WorkQueue"], MessageBody=body)

    run = api.wait(run_id, "failed")
    assert run["error_type"] == "PoisonMessageError"
    assert f"gave up after {MAX_RECEIVE_COUNT - 1} deliveries" in run["error"]
    assert "nowhere.defined" in run["error"]
    events = api.ok("GET", f"/runs/{run_id}/events")["items"]
    assert events[-1]["type"] == "workflow.failed"

    def dead_letters() -> list[str]:
        found = sqs.receive_message(
            QueueUrl=info.queues["DeadLetterQueue"],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [m["Body"] for m in found.get("Messages", [])]

    assert until(dead_letters, 60, what="the message in the DLQ") == [body]
    # Nothing of it left on the work queue.
    attrs = sqs.get_queue_attributes(
        QueueUrl=info.queues["WorkQueue"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert sum(int(v) for v in attrs.values()) == 0


def test_recurring_schedule_fires_through_eventbridge_scheduler(
    stack: LocalStack, api: Api
) -> None:
    """POST /schedules makes a recurring rate() schedule in EventBridge Scheduler; the stack
    fires its next occurrence (the scheduler clock is moved a minute on) into the work queue,
    and the worker starts the run. Needs the API's schedule routes to go through
    ``AwsRuntime.schedules`` (which creates the EventBridge schedule), not storage alone."""
    created = api.ok(
        "POST",
        "/schedules",
        {"workflow": "e2e_ticked", "args": ["every minute"], "spec": {"interval": "1m"}},
        expect=201,
    )
    schedule_id = created["schedule_id"]
    scheduler = _client(stack, "scheduler")
    mine = []
    for summary in _timer_schedules(stack):
        detail = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
        if schedule_id in detail["Target"]["Input"]:
            mine.append(detail)
    assert [d["ScheduleExpression"] for d in mine] == ["rate(1 minute)"]
    before = {r["run_id"] for r in api.ok("GET", "/runs?workflow=e2e_ticked&limit=50")["items"]}
    try:
        SCHEDULER_CLOCK.offset = timedelta(seconds=61)

        def ticked_run() -> dict[str, Any] | None:
            runs = api.ok("GET", "/runs?workflow=e2e_ticked&limit=50")["items"]
            done = [r for r in runs if r["status"] == "completed" and r["run_id"] not in before]
            return done[0] if done else None

        run = until(ticked_run, 60, what="a run started by the schedule")
    finally:
        SCHEDULER_CLOCK.offset = timedelta()
    assert run["result"] == "tick every minute"
    api.ok("DELETE", f"/schedules/{schedule_id}")
    remaining = [s for s in _timer_schedules(stack) if s["Name"] == mine[0]["Name"]]
    assert remaining == []

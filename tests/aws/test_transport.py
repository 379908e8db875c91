"""``pyworkflow.transport.aws.AwsDispatcher`` against moto's server: wake-ups are SQS messages,
waits up to SQS's 900 s ride on ``DelaySeconds``, longer ones become one-time Scheduler
schedules that send the same wake-up; ``forget`` deletes a pending one."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pyworkflow.core.clock import ManualClock
from pyworkflow.core.models import WorkflowRun
from pyworkflow.dev import moto_server
from pyworkflow.transport.aws import AwsDispatcher
from pyworkflow.transport.messages import WakeMessage, parse_message
from pyworkflow.transport.protocol import Dispatcher
from pyworkflow.transport.scheduler import at_expression, schedule_name
from pyworkflow.transport.sqs import SQS_MAX_DELAY_SECONDS
from pyworkflow.transport.storm import DEFAULT_LEAD_SECONDS, scheduler_fire_time
from tests.aws.conftest import REGION

_prefixes = itertools.count(1)


@pytest.fixture
def stack(
    moto: moto_server.MotoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[moto_server.AwsStack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("PYWORKFLOW_SQS_DELAY_MAX_SECONDS", raising=False)
    yield moto_server.create_stack(moto.endpoint_url, f"tr{next(_prefixes)}", region=REGION)


class Sent:
    """The SendMessage calls of an SQS client, as made (moto does not echo DelaySeconds)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self._send = client.send_message
        client.send_message = self

    async def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return await self._send(**kwargs)


@pytest.fixture
async def transport(
    stack: moto_server.AwsStack, moto: moto_server.MotoServer
) -> AsyncIterator[tuple[AwsDispatcher, Sent, Any, ManualClock]]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    dispatcher = AwsDispatcher(
        stack.queue_url,
        queue_arn=stack.queue_arn,
        scheduler_group=stack.scheduler_group,
        scheduler_role_arn=stack.scheduler_role_arn,
        endpoint_url=moto.endpoint_url,
        clock=clock,
    )
    sent = Sent(await dispatcher.clients.get("sqs"))
    scheduler = await dispatcher.clients.get("scheduler")
    try:
        yield dispatcher, sent, scheduler, clock
    finally:
        await dispatcher.close()


async def schedules(scheduler: Any, group: str) -> list[str]:
    page = await scheduler.list_schedules(GroupName=group)
    return sorted(s["Name"] for s in page.get("Schedules", []))


def test_it_is_a_dispatcher(stack: moto_server.AwsStack) -> None:
    dispatcher: Dispatcher = AwsDispatcher(
        stack.queue_url,
        queue_arn=stack.queue_arn,
        scheduler_group=stack.scheduler_group,
        scheduler_role_arn=stack.scheduler_role_arn,
    )
    assert dispatcher.sqs_delay_max == SQS_MAX_DELAY_SECONDS  # type: ignore[attr-defined]


async def test_wake_sends_one_undelayed_message(transport: Any) -> None:
    dispatcher, sent, _, _ = transport
    await dispatcher.wake("run_a", reason="start")
    assert len(sent.calls) == 1 and "DelaySeconds" not in sent.calls[0]
    assert parse_message(sent.calls[0]["MessageBody"]) == WakeMessage(
        run_id="run_a", reason="start"
    )
    assert dict(dispatcher.requests) == {"sqs.SendMessage": 1}


@pytest.mark.parametrize(("seconds", "delay"), [(1.2, 2), (899.5, 900), (900.0, 900)])
async def test_a_wait_up_to_900_seconds_is_a_delayed_message(
    transport: Any, seconds: float, delay: int
) -> None:
    dispatcher, sent, scheduler, clock = transport
    await dispatcher.wake_at("run_a", clock.now() + timedelta(seconds=seconds), key="run_a:7")
    assert [c["DelaySeconds"] for c in sent.calls] == [delay]  # rounded up: never early
    body = json.loads(sent.calls[0]["MessageBody"])
    assert body == {"run_id": "run_a", "reason": "timer", "key": "run_a:7"}
    assert await schedules(scheduler, dispatcher.scheduler_group) == []
    assert dict(dispatcher.requests) == {"sqs.SendMessage": 1}


async def test_a_due_wait_is_an_undelayed_message(transport: Any) -> None:
    dispatcher, sent, _, clock = transport
    await dispatcher.wake_at("run_a", clock.now() - timedelta(seconds=5), key="run_a:7")
    assert len(sent.calls) == 1 and "DelaySeconds" not in sent.calls[0]


async def test_a_wait_beyond_900_seconds_is_one_scheduler_schedule(transport: Any) -> None:
    dispatcher, sent, scheduler, clock = transport
    when = clock.now() + timedelta(seconds=900.5)
    await dispatcher.wake_at("run_a", when, key="run_a:7")
    await dispatcher.wake_at("run_a", when, key="run_a:7")  # a retried suspension: no second
    assert sent.calls == []
    name = schedule_name("run_a:7")
    assert await schedules(scheduler, dispatcher.scheduler_group) == [name]
    schedule = await scheduler.get_schedule(Name=name, GroupName=dispatcher.scheduler_group)
    # It fires early (the lead, on a whole minute: Scheduler fires within the minute it is
    # given) and names the wait, so the worker it wakes re-arms the rest on SQS.
    early = scheduler_fire_time(when, clock.now(), DEFAULT_LEAD_SECONDS)
    assert early is not None and early <= when - timedelta(seconds=DEFAULT_LEAD_SECONDS)
    assert schedule["ScheduleExpression"] == at_expression(early)
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == dispatcher.queue_arn
    assert parse_message(schedule["Target"]["Input"]) == WakeMessage(
        run_id="run_a", reason="timer", key="run_a:7"
    )
    assert dict(dispatcher.requests) == {"scheduler.CreateSchedule": 2}

    now = clock.now()
    run = WorkflowRun(
        run_id="run_a", workflow_name="w", created_at=now, updated_at=now, wake_key="run_a:7"
    )
    await dispatcher.forget(run)
    assert await schedules(scheduler, dispatcher.scheduler_group) == []
    assert await dispatcher.delete_schedule("run_a:7") is False  # gone already


async def test_the_threshold_is_a_setting(transport: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dispatcher, sent, scheduler, clock = transport
    dispatcher.sqs_delay_max = 60
    await dispatcher.wake_at("run_a", clock.now() + timedelta(seconds=61), key="run_a:8")
    assert sent.calls == []
    assert await schedules(scheduler, dispatcher.scheduler_group) == [schedule_name("run_a:8")]

"""Crash, recover, check on the AWS runtime: ``pyworkflow/handlers/worker.py`` fed one SQS message
at a time (moto), storage on DynamoDB Local or SQLite, timers as EventBridge schedules fired by hand
on a manual clock.

A crash inside the worker kills its "container": the message is not deleted, so SQS delivers it
again after the visibility timeout; the clock jumps past the run lease (which is shorter than
that timeout, see ``lease_for_visibility``) and a new container takes the message. A crash on the
client side (start, hook resume: the API) fails the call, and the caller retries it. The
deployed stack's periodic sweep and Scheduler are played when the queue is empty.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pyworkflow.core.clock import ManualClock
from pyworkflow.core.models import RunStatus
from pyworkflow.dev.pumps import FakeLambdaContext, receive_batch, settle, sqs_event
from pyworkflow.exceptions import HookAlreadyReceivedError, HookError
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.runtime.faults import Faults, InjectedCrash, inject
from pyworkflow.transport.aws import AwsDispatcher
from tests.aws.conftest import REGION, Aws
from tests.aws.ops import AwsOps
from tests.faults import workflows as wf
from tests.faults.harness import HOOK_PAYLOAD, Family, family

MAX_ROUNDS = 300
REDELIVERY_SECONDS = 60  # > the lease of the fixture's 30 s visibility timeout


@dataclass
class AwsOutcome:
    run_id: str | None
    crashes: list[str] = field(default_factory=list)
    messages: int = 0
    stuck: bool = False


class AwsDriver:
    def __init__(
        self, aws: Aws, worker: Any, faults: Faults, clock: ManualClock, session: Any
    ) -> None:
        self.aws = aws
        self.worker = worker
        self.faults = faults
        self.clock = clock
        self.client = AwsOps(
            inject(
                AwsRuntime(
                    aws.storage, AwsDispatcher.from_env(session=session, clock=clock), clock=clock
                ),
                faults,
            )
        )
        self.container: AwsRuntime | None = None
        self.delivered: set[str] = set()

    async def new_container(self) -> None:
        if self.container is not None:
            LIVE_OWNERS.discard(self.container.executor.owner)
        self.container = inject(AwsRuntime.from_env(clock=self.clock), self.faults)
        await asyncio.to_thread(self.worker.reset, self.container)

    async def close(self) -> None:
        await asyncio.to_thread(self.worker.reset)
        await self.client.dispatcher.close()

    async def run(self, key: str, workflow: Any = wf.reference) -> AwsOutcome:
        out = AwsOutcome(run_id=None)
        await self.new_container()
        queue = self.aws.stack.queue_url
        for _ in range(MAX_ROUNDS):
            try:
                if out.run_id is None:
                    out.run_id = await self.client.start(workflow, key, idempotency_key=key)
                    continue
                messages = await receive_batch(self.aws.sqs, queue, batch_size=1, wait_seconds=0)
                if messages:
                    out.messages += 1
                    await self._deliver(messages)
                    continue
                fam = await family(self.aws.storage, out.run_id)
                if all(r.status.is_terminal for r in fam.runs):
                    return out
                if await self._deliver_hooks(fam) or await self.aws.fire(self.clock.now()):
                    continue
                if await self.client.sweep():
                    continue
                if not self._advance_to_next_timer(fam):
                    out.stuck = True
                    return out
            except InjectedCrash as crash:  # the client's call died: its caller retries
                out.crashes.append(crash.label)
        out.stuck = True
        return out

    async def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages, queue_arn=self.aws.stack.queue_arn, region=REGION)
        try:
            response = await asyncio.to_thread(self.worker.handler, event, FakeLambdaContext())
        except InjectedCrash:
            # The container died mid-message: nothing deleted; the message comes back after
            # the visibility timeout, by which time the run's lease has expired.
            self.clock.advance(REDELIVERY_SECONDS)
            for m in messages:
                await self.aws.sqs.change_message_visibility(
                    QueueUrl=self.aws.stack.queue_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            await self.new_container()
            raise
        await settle(self.aws.sqs, self.aws.stack.queue_url, messages, response)

    async def _deliver_hooks(self, fam: Family) -> bool:
        sent = False
        for run in fam.runs:
            if run.status != RunStatus.SUSPENDED or run.run_id in self.delivered:
                continue
            if not await self.aws.storage.list_hooks(run_id=run.run_id):
                continue
            token = wf.TOKENS.get(run.run_id)
            try:
                if token is not None:
                    await self.client.resume_hook(token, HOOK_PAYLOAD)
                else:  # the token never reached on_created: an operator resumes it by name
                    await self.client.resume_hook_by_name(run.run_id, "approval", HOOK_PAYLOAD)
            except HookAlreadyReceivedError:
                pass
            except HookError:
                if token is None:
                    continue
                try:  # a token of an earlier attempt's hook: by name
                    await self.client.resume_hook_by_name(run.run_id, "approval", HOOK_PAYLOAD)
                except HookAlreadyReceivedError:
                    pass
            self.delivered.add(run.run_id)
            sent = True
        return sent

    def _advance_to_next_timer(self, fam: Family) -> bool:
        waits = [
            r.wake_at for r in fam.runs if r.status == RunStatus.SUSPENDED and r.wake_at is not None
        ]
        if not waits:
            return False
        self.clock.advance(max(1.0, (min(waits) - self.clock.now()).total_seconds() + 1))
        return True

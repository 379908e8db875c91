"""The AWS-direct transport: the client writes to the stack's DynamoDB table and sends wake-ups
to its work queue itself (``AwsRuntime``'s client side), with no API in between.

For code that already runs with the stack's IAM permissions (another Lambda, a batch job, an
operator's script): one write and one SQS message per start, no API Gateway hop. Runs are driven
by the stack's worker, never here. Only ``PYWORKFLOW_QUEUE_URL`` and the table are needed; the
Scheduler settings matter only to workers, which create timers.
"""

from __future__ import annotations

import os
from typing import Any, cast

from pyworkflow.client._stored import StoredTransport, hook_resumed, resolve_workflow
from pyworkflow.client.models import HookResumed
from pyworkflow.config import (
    ENV_QUEUE_ARN,
    ENV_QUEUE_URL,
    ENV_SCHEDULER_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
)
from pyworkflow.core.models import Schedule
from pyworkflow.exceptions import ConfigurationError, HookNotFoundError
from pyworkflow.runtime import schedules
from pyworkflow.runtime.aws import AwsDispatcher, AwsRuntime
from pyworkflow.storage.base import StorageBackend


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
    url = queue_url or os.environ.get(ENV_QUEUE_URL)
    if not url:
        raise ConfigurationError(
            f"The AWS-direct client needs the work queue: pass queue_url= or set {ENV_QUEUE_URL} "
            "(the stack's WorkQueueUrl output)")
    if session is None and region:
        import aioboto3

        session = aioboto3.Session(region_name=region)
    if storage is None:
        from pyworkflow.storage.dynamodb import DynamoDBStorageBackend

        storage = DynamoDBStorageBackend(table, region=region, endpoint_url=dynamodb_endpoint,
                                         session=session)
    dispatcher = AwsDispatcher(
        url,
        queue_arn=queue_arn or os.environ.get(ENV_QUEUE_ARN, ""),
        scheduler_group=scheduler_group or os.environ.get(ENV_SCHEDULER_GROUP, ""),
        scheduler_role_arn=scheduler_role_arn or os.environ.get(ENV_SCHEDULER_ROLE_ARN, ""),
        session=session,
    )
    return AwsRuntime(storage, dispatcher)


class _UnleasedCreates:
    """The executor, except that the runs it creates are not leased to it: the schedules
    module creates a claimed run leased to the process that will drive it, but here a worker
    drives it, and would leave a run leased to someone else alone until the lease expired."""

    def __init__(self, executor: Any) -> None:
        self._executor = executor

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return await self._executor.create(*args, **{**kwargs, "lease": False})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._executor, name)


class _Queueing:
    """What the schedules module's claim helpers need from a runtime: storage, clock and
    executor (to create runs). Nothing runs in this process, so nothing is active here."""

    def __init__(self, runtime: AwsRuntime) -> None:
        self.storage = runtime.storage
        self.clock = runtime.clock
        self.executor = _UnleasedCreates(runtime.executor)

    def is_active(self, run_id: str) -> bool:
        return False

    def interrupt(self, run_id: str) -> None:
        return None


class AwsTransport(StoredTransport):
    """Over an ``AwsRuntime``; ``owns_runtime`` says whether ``close()`` closes it."""

    def __init__(self, runtime: AwsRuntime, *, owns_runtime: bool = True) -> None:
        self.runtime = runtime
        self._owns = owns_runtime

    @property
    def storage(self) -> StorageBackend:
        return self.runtime.storage

    async def start(self, workflow: str, args: list[Any], kwargs: dict[str, Any], *,
                    idempotency_key: str | None = None) -> str:
        defn = resolve_workflow(workflow)
        return await self.runtime.start(defn.wrapper, *args, idempotency_key=idempotency_key,
                                        **kwargs)

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        return await self.runtime.cancel(run_id, reason)

    async def resume_hook(self, token: str, payload: Any) -> HookResumed:
        return hook_resumed(await self.runtime.resume_hook(token, payload))

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> HookResumed:
        own = getattr(self.runtime, "resume_hook_by_name", None)
        if own is not None:  # once AwsRuntime has it, that is the one place for the logic
            return hook_resumed(await own(run_id, name, payload))
        from pyworkflow.runtime.api import deliver_hook
        from pyworkflow.runtime.aws import _WakeInsteadOfDrive

        hook = await self.storage.find_hook(run_id, name=name)
        if hook is None:
            raise HookNotFoundError(f"{name!r} on run {run_id}")
        adapter = cast(Any, _WakeInsteadOfDrive(self.runtime))
        return hook_resumed(await deliver_hook(adapter, hook, payload))

    async def trigger_schedule(self, schedule_id: str) -> str:
        """As ``schedules.trigger_schedule`` (the same compare-and-set claim, so the run counts
        towards the overlap policy), but the run is started by a wake-up message: on AWS the
        worker drives runs, never the caller. handlers/api_ops.py does the same; both should
        call one runtime function once pyworkflow.runtime has it."""
        rt = self.runtime
        queueing = cast(Any, _Queueing(rt))

        async def claim(current: Schedule) -> tuple[Schedule | None, Any]:
            schedules._require_live(current)
            defn = schedules._definition(current)
            plan = await schedules._refresh(queueing, current, defn)
            schedules._check_arguments(current, defn)
            plan.claim(f"sched:{current.schedule_id}:trigger:{current.version}")
            return current.model_copy(update=plan.record_updates(current, rt.clock.now())), plan

        stored, plan = await schedules._cas(rt.storage, schedule_id, claim)
        for run_id in await schedules._carry_out(queueing, stored, plan):
            await rt.dispatcher.wake(run_id, reason="schedule")
        return str(plan.starts[0][0])

    async def close(self) -> None:
        if self._owns:
            await self.runtime.close()

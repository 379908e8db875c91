"""``Client``: one API for runs, hooks and schedules, whatever carries the requests.

    client = Client.embedded()                      # this process, local storage
    client = Client.aws(table="pw", queue_url=url)  # the stack's table + queue, directly
    client = Client.http("https://….execute-api.eu-west-1.amazonaws.com")   # SigV4-signed
    client = Client.lambda_("my-stack-ApiFunction")  # direct Lambda invoke
    client = Client.from_env()                      # PYWORKFLOW_API_URL → http, else embedded

    run_id = await client.start(order, "o-1")
    run = await client.wait(run_id, timeout=60)
    print(run.status, run.get_result())

Every transport raises the same exceptions (``WorkflowNotFoundError``, ``HookExpiredError``...)
and returns the same models (``WorkflowRun``, ``Event``, ``Schedule``, ``Page``). ``Client.sync()``
gives the same methods for code without an event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyworkflow.client.models import HookResumed, WorkflowInfo
from pyworkflow.client.transport import Transport
from pyworkflow.core.events import Event
from pyworkflow.core.models import (
    OverlapPolicy,
    Page,
    RunStatus,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
    WorkflowRun,
)
from pyworkflow.settings import get_settings
from pyworkflow.storage.base import StorageBackend

if TYPE_CHECKING:
    from pyworkflow.client.sync import SyncClient

# ENV_API_URL: the deployed (or local) stack's API; set, ``Client.from_env()`` talks HTTP to it.


def workflow_name(workflow: str | Callable[..., Any]) -> str:
    """The registered name of a ``@workflow`` function (or the name itself)."""
    if isinstance(workflow, str):
        return workflow
    name = getattr(workflow, "__workflow_name__", None)
    if not isinstance(name, str):
        raise TypeError(f"{workflow!r} is not a workflow: pass a @workflow function or its name")
    return name


class Client:
    """Start, inspect, cancel and resume runs, and manage schedules, over one ``Transport``."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # --- constructors ------------------------------------------------------------------------
    @classmethod
    def embedded(cls, storage: StorageBackend | None = None) -> Client:
        """Runs in this process on ``storage`` (default: the configured one, SQLite)."""
        from pyworkflow.client.embedded import EmbeddedTransport

        return cls(EmbeddedTransport(storage))

    @classmethod
    def aws(
        cls,
        *,
        table: str | None = None,
        queue_url: str | None = None,
        region: str | None = None,
        dynamodb_endpoint: str | None = None,
        storage: StorageBackend | None = None,
        session: Any = None,
        **dispatcher: Any,
    ) -> Client:
        """The stack's table and work queue, through boto3 (``PYWORKFLOW_TABLE``,
        ``PYWORKFLOW_QUEUE_URL``... when not given). ``dispatcher`` may add ``queue_arn``,
        ``scheduler_group``, ``scheduler_role_arn``."""
        from pyworkflow.client.aws import AwsTransport, build_runtime

        return cls(
            AwsTransport(
                build_runtime(
                    table=table,
                    queue_url=queue_url,
                    region=region,
                    dynamodb_endpoint=dynamodb_endpoint,
                    storage=storage,
                    session=session,
                    **dispatcher,
                )
            )
        )

    @classmethod
    def http(
        cls,
        api_url: str,
        *,
        sign: bool | None = None,
        region: str | None = None,
        credentials: Any = None,
        timeout: float | None = None,
    ) -> Client:
        """The stack's HTTP API, SigV4-signed (IAM auth) unless ``sign=False``; by default a
        loopback URL (``pyworkflow dev``) is not signed, so it needs no AWS credentials, unless
        ``credentials`` are given."""
        from pyworkflow.client.http import DEFAULT_TIMEOUT, HttpTransport, is_loopback

        if sign is None:
            sign = credentials is not None or not is_loopback(api_url)

        return cls(
            HttpTransport(
                api_url,
                sign=sign,
                region=region,
                credentials=credentials,
                timeout=timeout or DEFAULT_TIMEOUT,
            )
        )

    @classmethod
    def lambda_(
        cls,
        function_name: str,
        *,
        region: str | None = None,
        session: Any = None,
        client: Any = None,
    ) -> Client:
        """The stack's API function, invoked directly (needs ``lambda:InvokeFunction``)."""
        from pyworkflow.client.lambda_ import LambdaTransport

        return cls(LambdaTransport(function_name, region=region, session=session, client=client))

    @classmethod
    def from_env(cls) -> Client:
        """``PYWORKFLOW_API_URL`` set: HTTP to it, signed unless it is a loopback address (the
        local stack). Otherwise embedded, with ``PYWORKFLOW_MODULE`` imported so workflows can
        be started by name."""
        settings = get_settings()
        url = settings.api_url or ""
        if url:
            return cls.http(url)
        from pyworkflow.config import import_modules

        if settings.module:
            import_modules(settings.module)
        return cls.embedded()

    def sync(self) -> SyncClient:
        """The same methods, blocking, for code without an event loop."""
        from pyworkflow.client.sync import SyncClient

        return SyncClient(self)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- runs --------------------------------------------------------------------------------
    async def start(
        self,
        workflow: str | Callable[..., Any],
        /,
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Start ``workflow(*args, **kwargs)``; returns the run id. With an
        ``idempotency_key`` used before, returns that run's id instead of starting another."""
        return await self.transport.start(
            workflow_name(workflow), list(args), kwargs, idempotency_key=idempotency_key
        )

    async def get_run(self, run_id: str) -> WorkflowRun:
        """The run (``WorkflowNotFoundError`` if none); ``run.get_result()`` decodes its
        result."""
        return await self.transport.get_run(run_id)

    async def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | Callable[..., Any] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Runs newest first; pass ``page.next_cursor`` back for the next page."""
        return await self.transport.list_runs(
            status=RunStatus(status) if status is not None else None,
            workflow=workflow_name(workflow) if workflow is not None else None,
            limit=limit,
            cursor=cursor,
        )

    async def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        """The run's history, in order (only the events after sequence ``after``: pass the last
        one seen to follow a run)."""
        return await self.transport.events(run_id, after=after)

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        """Every run of ``run_id``'s continue-as-new chain, oldest first."""
        return await self.transport.chain(run_id)

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        """Request cancellation; False if the run had already ended. The run ends
        ``cancelled`` once it reaches its next await (``wait`` for it)."""
        return await self.transport.cancel(run_id, reason)

    async def wait(
        self,
        run_id: str,
        timeout: float | None = 60.0,
        *,
        poll: float = 0.05,
        max_poll: float = 2.0,
        backoff: float = 1.5,
    ) -> WorkflowRun:
        """Poll until the run ends (any terminal status, ``continued_as_new`` included: follow
        ``continued_to_run_id`` for the next run). Polls start every ``poll`` seconds and grow
        by ``backoff`` up to ``max_poll``. ``TimeoutError`` after ``timeout`` seconds names the
        run and its last status; ``timeout=None`` waits for ever."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = max(poll, 0.001)
        while True:
            run = await self.transport.get_run(run_id)
            if run.status.is_terminal:
                return run
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"run {run_id} ({run.workflow_name}) did not end within {timeout}s; "
                        f"last status: {run.status.value}"
                    )
                await asyncio.sleep(min(delay, left))
            else:
                await asyncio.sleep(delay)
            delay = min(delay * backoff, max(max_poll, poll))

    # --- hooks -------------------------------------------------------------------------------
    async def resume_hook(self, token: str, payload: Any = None) -> HookResumed:
        """Deliver ``payload`` to the hook ``token`` was given for and wake its run."""
        return await self.transport.resume_hook(token, payload)

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any = None) -> HookResumed:
        """Deliver ``payload`` to ``run_id``'s newest hook named ``name`` (operators never see
        tokens)."""
        return await self.transport.resume_hook_by_name(run_id, name, payload)

    async def fail_hook(self, token: str, error: Any, message: str | None = None) -> HookResumed:
        """Fail the hook ``token`` was given for: the run's ``await hook(...)`` raises
        ``HookFailedError``. ``error``: an exception, an error type (with ``message``) or
        ``{"error_type": ..., "message": ...}``."""
        from pyworkflow.core.hook import hook_error

        return await self.transport.fail_hook(token, *hook_error(error, message))

    async def fail_hook_by_name(
        self, run_id: str, name: str, error: Any, message: str | None = None
    ) -> HookResumed:
        """``fail_hook`` for ``run_id``'s newest hook named ``name``."""
        from pyworkflow.core.hook import hook_error

        return await self.transport.fail_hook_by_name(run_id, name, *hook_error(error, message))

    async def heartbeat_hook(self, token: str) -> HookResumed:
        """Keep a hook with a ``heartbeat_timeout`` alive (its deadline moves on)."""
        return await self.transport.heartbeat_hook(token)

    # --- workflows ---------------------------------------------------------------------------
    async def list_workflows(self) -> list[WorkflowInfo]:
        """The workflows the other side has registered."""
        return await self.transport.list_workflows()

    async def health(self) -> dict[str, Any]:
        return await self.transport.health()

    # --- schedules ---------------------------------------------------------------------------
    async def create_schedule(
        self,
        workflow: str | Callable[..., Any],
        spec: ScheduleSpec,
        /,
        *args: Any,
        overlap_policy: OverlapPolicy | str = OverlapPolicy.SKIP,
        schedule_id: str | None = None,
        **kwargs: Any,
    ) -> Schedule:
        """A schedule starting ``workflow(*args, **kwargs)`` on ``spec`` (cron, interval or
        calendar)."""
        return await self.transport.create_schedule(
            workflow_name(workflow),
            ScheduleSpec.model_validate(spec),
            list(args),
            kwargs,
            overlap_policy=OverlapPolicy(overlap_policy),
            schedule_id=schedule_id,
        )

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule (``ScheduleNotFoundError`` if it never existed)."""
        return await self.transport.get_schedule(schedule_id)

    async def list_schedules(
        self,
        *,
        workflow: str | Callable[..., Any] | None = None,
        status: ScheduleStatus | str | None = None,
        limit: int = 100,
    ) -> list[Schedule]:
        return await self.transport.list_schedules(
            workflow=workflow_name(workflow) if workflow is not None else None,
            status=ScheduleStatus(status) if status is not None else None,
            limit=limit,
        )

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        spec: ScheduleSpec | None = None,
        overlap_policy: OverlapPolicy | str | None = None,
    ) -> Schedule:
        return await self.transport.update_schedule(
            schedule_id,
            spec=spec,
            overlap_policy=OverlapPolicy(overlap_policy) if overlap_policy is not None else None,
        )

    async def delete_schedule(self, schedule_id: str) -> None:
        """Soft delete: the record stays, status ``deleted``, and never fires again."""
        await self.transport.delete_schedule(schedule_id)

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self.transport.pause_schedule(schedule_id)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self.transport.resume_schedule(schedule_id)

    async def trigger_schedule(self, schedule_id: str) -> str:
        """Start a run of the schedule now, whatever its next fire time; the run's id."""
        return await self.transport.trigger_schedule(schedule_id)

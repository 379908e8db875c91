"""``SyncClient``: the ``Client`` methods, blocking, for scripts, notebooks and sync frameworks.

The async client runs on a private event loop in a daemon thread that lives as long as the
``SyncClient``; each call is submitted to it with ``run_coroutine_threadsafe``, so any number of
threads may share one ``SyncClient``. One loop for the client's whole life matters: aiohttp
sessions and aioboto3 clients belong to the loop that opened them, and the embedded transport's
background drives (a resumed sleep, a woken hook) keep running between calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from pyworkflow.client.models import HookResumed, WorkflowInfo
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

if TYPE_CHECKING:  # client.py makes SyncClients (Client.sync): no import back at run time
    from pyworkflow.client.client import Client

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="pyworkflow-client", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError(
                "SyncClient called from its own loop (inside a workflow or a "
                "callback it runs): use the async Client there"
            )
        if self.loop.is_closed():
            coro.close()
            raise RuntimeError("SyncClient is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C while waiting: stop the call too
            raise

    def stop(self) -> None:
        async def cancel_rest() -> None:
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(cancel_rest(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class SyncClient:
    """Blocking twin of ``Client`` (same methods, same arguments, same exceptions)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._loop = _LoopThread()
        self._closed = False

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro)

    def close(self) -> None:
        """Close the client's connections and stop the private loop (background drives of
        the embedded transport stop too; ``pyworkflow worker`` resumes them when due)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self.client.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs --------------------------------------------------------------------------------
    def start(
        self,
        workflow: str | Callable[..., Any],
        /,
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> str:
        return self._run(
            self.client.start(workflow, *args, idempotency_key=idempotency_key, **kwargs)
        )

    def get_run(self, run_id: str) -> WorkflowRun:
        return self._run(self.client.get_run(run_id))

    def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | Callable[..., Any] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        return self._run(
            self.client.list_runs(status=status, workflow=workflow, limit=limit, cursor=cursor)
        )

    def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        return self._run(self.client.events(run_id, after=after))

    def chain(self, run_id: str) -> list[WorkflowRun]:
        return self._run(self.client.chain(run_id))

    def cancel(self, run_id: str, reason: str | None = None) -> bool:
        return self._run(self.client.cancel(run_id, reason))

    def wait(
        self,
        run_id: str,
        timeout: float | None = 60.0,
        *,
        poll: float = 0.05,
        max_poll: float = 2.0,
        backoff: float = 1.5,
    ) -> WorkflowRun:
        return self._run(
            self.client.wait(run_id, timeout, poll=poll, max_poll=max_poll, backoff=backoff)
        )

    # --- hooks -------------------------------------------------------------------------------
    def resume_hook(self, token: str, payload: Any = None) -> HookResumed:
        return self._run(self.client.resume_hook(token, payload))

    def resume_hook_by_name(self, run_id: str, name: str, payload: Any = None) -> HookResumed:
        return self._run(self.client.resume_hook_by_name(run_id, name, payload))

    def fail_hook(self, token: str, error: Any, message: str | None = None) -> HookResumed:
        return self._run(self.client.fail_hook(token, error, message))

    def fail_hook_by_name(
        self, run_id: str, name: str, error: Any, message: str | None = None
    ) -> HookResumed:
        return self._run(self.client.fail_hook_by_name(run_id, name, error, message))

    def heartbeat_hook(self, token: str) -> HookResumed:
        return self._run(self.client.heartbeat_hook(token))

    # --- workflows ---------------------------------------------------------------------------
    def list_workflows(self) -> list[WorkflowInfo]:
        return self._run(self.client.list_workflows())

    def health(self) -> dict[str, Any]:
        return self._run(self.client.health())

    # --- schedules ---------------------------------------------------------------------------
    def create_schedule(
        self,
        workflow: str | Callable[..., Any],
        spec: ScheduleSpec,
        /,
        *args: Any,
        overlap_policy: OverlapPolicy | str = OverlapPolicy.SKIP,
        schedule_id: str | None = None,
        **kwargs: Any,
    ) -> Schedule:
        return self._run(
            self.client.create_schedule(
                workflow,
                spec,
                *args,
                overlap_policy=overlap_policy,
                schedule_id=schedule_id,
                **kwargs,
            )
        )

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self._run(self.client.get_schedule(schedule_id))

    def list_schedules(
        self,
        *,
        workflow: str | Callable[..., Any] | None = None,
        status: ScheduleStatus | str | None = None,
        limit: int = 100,
    ) -> list[Schedule]:
        return self._run(self.client.list_schedules(workflow=workflow, status=status, limit=limit))

    def update_schedule(
        self,
        schedule_id: str,
        *,
        spec: ScheduleSpec | None = None,
        overlap_policy: OverlapPolicy | str | None = None,
    ) -> Schedule:
        return self._run(
            self.client.update_schedule(schedule_id, spec=spec, overlap_policy=overlap_policy)
        )

    def delete_schedule(self, schedule_id: str) -> None:
        self._run(self.client.delete_schedule(schedule_id))

    def pause_schedule(self, schedule_id: str) -> Schedule:
        return self._run(self.client.pause_schedule(schedule_id))

    def resume_schedule(self, schedule_id: str) -> Schedule:
        return self._run(self.client.resume_schedule(schedule_id))

    def trigger_schedule(self, schedule_id: str) -> str:
        return self._run(self.client.trigger_schedule(schedule_id))

"""What the HTTP and the Lambda-invoke transports share: every operation is one API call, named
twice (an HTTP route and a direct-invoke action) with the same JSON answer either way.

Subclasses implement ``_call``; everything here only builds the request and validates the
answer into the core models, so both transports read runs, events and schedules identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from pyworkflow.client.errors import TransportError
from pyworkflow.client.models import (
    Cancelled,
    HookResumed,
    ScheduleCreateRequest,
    ScheduleUpdateRequest,
    Started,
    StartRequest,
    WorkflowInfo,
)
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
from pyworkflow.exceptions import RunAlreadyEndedError

M = TypeVar("M", bound=BaseModel)


@dataclass
class Call:
    """One API operation: its direct-invoke ``action`` and its HTTP route.

    ``params`` are the action's fields; over HTTP they travel as the path (already in ``path``),
    the ``query`` and the ``body``.
    """

    action: str
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    has_body: bool = False

    @classmethod
    def with_body(
        cls, action: str, method: str, path: str, ids: dict[str, Any], body: dict[str, Any]
    ) -> Call:
        """A call with a JSON object body: over HTTP ``ids`` travel in the path, ``body`` as the
        body; as a direct invoke both are the action's fields."""
        return cls(action, method, path, params={**ids, **body}, body=body, has_body=True)


def seg(value: str) -> str:
    """One path segment, percent-encoded (ids and hook names may hold any character)."""
    return quote(value, safe="")


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def _run(answer: Any) -> WorkflowRun:
    """A run from the API's view (arguments and result as JSON values)."""
    if not isinstance(answer, dict):
        return _as(WorkflowRun, answer)  # says what is wrong with the answer
    try:
        return WorkflowRun.from_json_values(answer)
    except (ValidationError, TypeError, ValueError) as error:
        raise TransportError(f"The API's answer is not a WorkflowRun: {str(error)[:500]}") from None


def _as(model: type[M], answer: Any) -> M:
    """``answer`` as ``model``; an answer of another shape (a URL that is not a pyworkflow API,
    a server of another version) is a ``TransportError`` saying so, not a bare pydantic one."""
    try:
        return model.model_validate(answer)
    except ValidationError as error:
        raise TransportError(
            f"The API's answer is not a {model.__name__}: {str(error)[:500]}"
        ) from None


def _items(answer: Any) -> list[Any]:
    if isinstance(answer, dict):
        return list(answer.get("items") or [])
    return list(answer or [])


class RemoteTransport:
    """The ``Transport`` methods as API calls."""

    async def _call(self, call: Call) -> Any:
        """Send ``call`` and return the decoded JSON answer; raise the mapped exception for an
        error answer."""
        raise NotImplementedError

    # --- runs --------------------------------------------------------------------------------
    async def start(
        self,
        workflow: str,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> str:
        body = _dump(
            StartRequest(
                workflow=workflow, args=args, kwargs=kwargs, idempotency_key=idempotency_key
            )
        )
        answer = await self._call(
            Call("start_run", "POST", "/runs", params=body, body=body, has_body=True)
        )
        return _as(Started, answer).run_id

    async def get_run(self, run_id: str) -> WorkflowRun:
        answer = await self._call(
            Call("get_run", "GET", f"/runs/{seg(run_id)}", params={"run_id": run_id})
        )
        return _run(answer)

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        query = {
            k: v
            for k, v in {
                "status": status.value if status else None,
                "workflow": workflow,
                "limit": limit,
                "cursor": cursor,
            }.items()
            if v is not None
        }
        answer = await self._call(Call("list_runs", "GET", "/runs", params=query, query=query))
        return Page(
            items=[_run(r) for r in _items(answer)],
            next_cursor=answer.get("next_cursor") if isinstance(answer, dict) else None,
        )

    async def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        query = {"after": after} if after else {}
        answer = await self._call(
            Call(
                "get_events",
                "GET",
                f"/runs/{seg(run_id)}/events",
                params={"run_id": run_id, **query},
                query=query,
            )
        )
        return [_as(Event, e) for e in _items(answer)]

    async def chain(self, run_id: str) -> list[WorkflowRun]:
        answer = await self._call(
            Call("get_chain", "GET", f"/runs/{seg(run_id)}/chain", params={"run_id": run_id})
        )
        return [_run(r) for r in _items(answer)]

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        body = {"reason": reason} if reason is not None else {}
        try:
            answer = await self._call(
                Call.with_body(
                    "cancel_run", "POST", f"/runs/{seg(run_id)}/cancel", {"run_id": run_id}, body
                )
            )
        except RunAlreadyEndedError:
            # The API answers 409 for a run that already ended; the client's answer is False,
            # as the embedded transport's.
            return False
        return _as(Cancelled, answer).cancelled

    # --- hooks -------------------------------------------------------------------------------
    async def resume_hook(self, token: str, payload: Any) -> HookResumed:
        # The body is the payload itself: what a third-party webhook would POST.
        answer = await self._call(
            Call(
                "resume_hook",
                "POST",
                f"/hooks/{seg(token)}",
                params={"token": token, "payload": payload},
                body=payload,
                has_body=True,
            )
        )
        return _as(HookResumed, answer)

    async def resume_hook_by_name(self, run_id: str, name: str, payload: Any) -> HookResumed:
        answer = await self._call(
            Call(
                "resume_hook_by_name",
                "POST",
                f"/runs/{seg(run_id)}/hooks/{seg(name)}",
                params={"run_id": run_id, "name": name, "payload": payload},
                body=payload,  # the payload itself, as for POST /hooks/{token}
                has_body=True,
            )
        )
        return _as(HookResumed, answer)

    async def fail_hook(self, token: str, error_type: str, message: str) -> HookResumed:
        # Signed like every route but the webhook: failing a hook is an API call, as AWS's
        # SendDurableExecutionCallbackFailure is.
        body = {"error_type": error_type, "message": message}
        answer = await self._call(
            Call.with_body("fail_hook", "POST", f"/hooks/{seg(token)}/fail", {"token": token}, body)
        )
        return _as(HookResumed, answer)

    async def fail_hook_by_name(
        self, run_id: str, name: str, error_type: str, message: str
    ) -> HookResumed:
        body = {"error_type": error_type, "message": message}
        answer = await self._call(
            Call.with_body(
                "fail_hook_by_name",
                "POST",
                f"/runs/{seg(run_id)}/hooks/{seg(name)}/fail",
                {"run_id": run_id, "name": name},
                body,
            )
        )
        return _as(HookResumed, answer)

    async def heartbeat_hook(self, token: str) -> HookResumed:
        answer = await self._call(
            Call(
                "heartbeat_hook", "POST", f"/hooks/{seg(token)}/heartbeat", params={"token": token}
            )
        )
        return _as(HookResumed, answer)

    # --- workflows and schedules -------------------------------------------------------------
    async def list_workflows(self) -> list[WorkflowInfo]:
        answer = await self._call(Call("list_workflows", "GET", "/workflows"))
        return [_as(WorkflowInfo, w) for w in _items(answer)]

    async def create_schedule(
        self,
        workflow: str,
        spec: ScheduleSpec,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        overlap_policy: OverlapPolicy,
        schedule_id: str | None,
    ) -> Schedule:
        body = _dump(
            ScheduleCreateRequest(
                workflow=workflow,
                spec=spec,
                args=args,
                kwargs=kwargs,
                overlap_policy=overlap_policy,
                schedule_id=schedule_id,
            )
        )
        answer = await self._call(
            Call("create_schedule", "POST", "/schedules", params=body, body=body, has_body=True)
        )
        return _as(Schedule, answer)

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._schedule_call("get_schedule", "GET", schedule_id)

    async def list_schedules(
        self, *, workflow: str | None = None, status: ScheduleStatus | None = None, limit: int = 100
    ) -> list[Schedule]:
        query = {
            k: v
            for k, v in {
                "workflow": workflow,
                "status": status.value if status else None,
                "limit": limit,
            }.items()
            if v is not None
        }
        answer = await self._call(
            Call("list_schedules", "GET", "/schedules", params=query, query=query)
        )
        return [_as(Schedule, s) for s in _items(answer)]

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        spec: ScheduleSpec | None = None,
        overlap_policy: OverlapPolicy | None = None,
    ) -> Schedule:
        body = _dump(ScheduleUpdateRequest(spec=spec, overlap_policy=overlap_policy))
        answer = await self._call(
            Call.with_body(
                "update_schedule",
                "PATCH",
                f"/schedules/{seg(schedule_id)}",
                {"schedule_id": schedule_id},
                body,
            )
        )
        return _as(Schedule, answer)

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._call(
            Call(
                "delete_schedule",
                "DELETE",
                f"/schedules/{seg(schedule_id)}",
                params={"schedule_id": schedule_id},
            )
        )

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self._schedule_call("pause_schedule", "POST", schedule_id, "/pause")

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self._schedule_call("resume_schedule", "POST", schedule_id, "/resume")

    async def trigger_schedule(self, schedule_id: str) -> str:
        answer = await self._call(
            Call.with_body(
                "trigger_schedule",
                "POST",
                f"/schedules/{seg(schedule_id)}/trigger",
                {"schedule_id": schedule_id},
                {},
            )
        )
        return _as(Started, answer).run_id

    async def _schedule_call(
        self, action: str, method: str, schedule_id: str, suffix: str = ""
    ) -> Schedule:
        call = Call(
            action,
            method,
            f"/schedules/{seg(schedule_id)}{suffix}",
            params={"schedule_id": schedule_id},
        )
        if method == "POST":
            call.body, call.has_body = {}, True
        return _as(Schedule, await self._call(call))

    async def health(self) -> dict[str, Any]:
        answer = await self._call(Call("health", "GET", "/health"))
        return dict(answer) if isinstance(answer, dict) else {"status": answer}

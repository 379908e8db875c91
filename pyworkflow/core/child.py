"""``start_child_workflow``: run another workflow as a child, with its own run and history.

The child's run id is derived from the parent's run id and the op number, so a parent replayed
after a crash finds the same child instead of starting a second one. With
``wait_for_completion=True`` the parent suspends until the child ends and records its outcome;
otherwise it gets a handle and the child lives on its own (``parent_close_policy="cancel"`` makes
the child end with its parent instead).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from pyworkflow.core import context as _ctx
from pyworkflow.core.events import EventType
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.core.registry import get_workflow_by_func, not_registered_message
from pyworkflow.core.serde import from_jsonable
from pyworkflow.exceptions import (
    ChildWorkflowFailedError,
    ConfigurationError,
    MaxNestingDepthError,
    SuspensionSignal,
    WorkflowNotFoundError,
)

PARENT_CLOSE_POLICIES = ("abandon", "cancel")


class _StorageOnly:
    """What a handle built the way pyworkflow-engine builds one (``_storage=``) reads through:
    it can read the run; cancelling needs a runtime, which core cannot reach."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    async def get_run(self, run_id: str) -> WorkflowRun | None:
        run: WorkflowRun | None = await self.storage.get_run(run_id)
        return run

    async def cancel_run(self, run_id: str, reason: str | None) -> None:
        raise ConfigurationError(
            "This ChildWorkflowHandle was built from a storage only: cancel the child with "
            f"pyworkflow.cancel_workflow({run_id!r})"
        )


class ChildWorkflowHandle:
    """A started child run, for fire-and-forget children.

    Has pyworkflow-engine's attributes: ``child_id`` (here the child's run id: children are
    named by their parent's op, so the run id is already deterministic), ``child_run_id``,
    ``child_workflow_name``, ``parent_run_id`` and ``_storage``; and is built its way,
    ``ChildWorkflowHandle(child_id, child_run_id, child_workflow_name, parent_run_id, storage)``.
    A running parent passes ``None`` as the storage and its ``journal`` instead.
    """

    def __init__(
        self,
        child_id: str,
        child_run_id: str,
        child_workflow_name: str,
        parent_run_id: str,
        _storage: Any,
        *,
        journal: Any = None,
    ) -> None:
        if journal is None and _storage is None:
            raise TypeError("ChildWorkflowHandle needs a journal or _storage")
        self.child_id = child_id
        self.child_run_id = child_run_id
        self.child_workflow_name = child_workflow_name
        self.parent_run_id = parent_run_id
        self._journal = journal if journal is not None else _StorageOnly(_storage)

    @property
    def _storage(self) -> Any:
        return self._journal.storage

    async def _run(self) -> WorkflowRun:
        run: WorkflowRun | None = await self._journal.get_run(self.child_run_id)
        if run is None:
            raise WorkflowNotFoundError(self.child_run_id)
        return run

    async def get_status(self) -> RunStatus:
        return (await self._run()).status

    async def is_running(self) -> bool:
        return not (await self._run()).status.is_terminal

    async def is_terminal(self) -> bool:
        return (await self._run()).status.is_terminal

    async def result(self, timeout: float | None = None, poll_interval: float = 0.05) -> Any:
        """Wait for the child to end and return its result (``ChildWorkflowFailedError`` if it
        failed or was cancelled; ``TimeoutError`` after ``timeout`` seconds)."""

        async def wait() -> WorkflowRun:
            while True:
                run = await self._run()
                if run.status.is_terminal:
                    return run
                await asyncio.sleep(poll_interval)

        run = await asyncio.wait_for(wait(), timeout)
        if run.status == RunStatus.COMPLETED:
            return run.get_result()
        if run.status == RunStatus.CONTINUED_AS_NEW:
            chain_end = run
            while chain_end.continued_to_run_id:
                self.child_run_id = chain_end.continued_to_run_id
                chain_end = await asyncio.wait_for(wait(), timeout)
            return chain_end.get_result()
        raise ChildWorkflowFailedError(
            run.run_id, run.workflow_name, run.error or run.status.value, run.error_type
        )

    async def cancel(self, reason: str | None = None) -> bool:
        run = await self._run()
        if run.status.is_terminal:
            return False
        await self._journal.cancel_run(self.child_run_id, reason)
        return True

    def __repr__(self) -> str:
        return f"ChildWorkflowHandle({self.child_run_id!r}, {self.child_workflow_name!r})"


async def start_child_workflow(
    workflow_func: Callable[..., Any],
    *args: Any,
    wait_for_completion: bool = True,
    parent_close_policy: str = "abandon",
    **kwargs: Any,
) -> Any:
    """Start ``workflow_func`` as a child run. Returns its result (``wait_for_completion=True``)
    or a ``ChildWorkflowHandle``. Children nest at most 3 deep.

    ``name="..."`` labels the operation in the history (``child_name``), ``runs show`` and the
    web UI, as ``sleep(name=)`` does; it is not part of the operation's identity. A child
    workflow that takes a ``name`` argument itself (or ``**kwargs``) gets it as before: the
    label is only taken when the child could not accept it."""
    ctx = _ctx.require("start_child_workflow()")
    defn = get_workflow_by_func(workflow_func)
    if defn is None:
        raise ValueError(not_registered_message(workflow_func))
    label = kwargs.pop("name", None) if "name" in kwargs and not _takes_name(defn.func) else None
    if label is not None and not isinstance(label, str):
        raise TypeError(f"start_child_workflow() name must be a string, got {label!r}")
    if parent_close_policy not in PARENT_CLOSE_POLICIES:
        raise ValueError(f"parent_close_policy must be one of {PARENT_CLOSE_POLICIES}")

    op, rec = await ctx.begin("child", defn.name)
    ctx.check_cancellation(rec)
    if (
        rec is not None
        and rec.terminal is not None
        and rec.terminal.type != EventType.CHILD_WORKFLOW_STARTED
    ):
        return _outcome(rec.terminal.type, rec.terminal.data, defn)

    if rec is None:
        if ctx.run.nesting_depth >= MaxNestingDepthError.MAX_DEPTH:
            raise MaxNestingDepthError(ctx.run.nesting_depth)
        # the op's path, not its number: inside a fan-out a branch's numbers depend on timing
        child_run_id = f"{ctx.run_id}-c{ctx.path_of(op)}"
        await ctx.journal.start_child(
            defn.name, child_run_id, args, kwargs, op, parent_close_policy, wait_for_completion
        )
        data: dict[str, Any] = {
            "op": op,
            "name": defn.name,
            "child_run_id": child_run_id,
            "wait": wait_for_completion,
            "parent_close_policy": parent_close_policy,
        }
        if label is not None:
            data["child_name"] = label
        await ctx.record(EventType.CHILD_WORKFLOW_STARTED, data)
    else:
        started = ctx.opening(rec, EventType.CHILD_WORKFLOW_STARTED)
        child_run_id = started.data["child_run_id"]

    if not wait_for_completion:
        return ChildWorkflowHandle(
            child_run_id, child_run_id, defn.name, ctx.run_id, None, journal=ctx.journal
        )

    child = await ctx.journal.get_run(child_run_id)
    while (
        child is not None
        and child.status == RunStatus.CONTINUED_AS_NEW
        and child.continued_to_run_id
    ):
        child = await ctx.journal.get_run(child.continued_to_run_id)
    if child is None or not child.status.is_terminal:
        ctx.awaits_child = True
        opened = rec.first(EventType.CHILD_WORKFLOW_STARTED) if rec is not None else None
        since = opened.timestamp if opened is not None else ctx.now()
        if ctx.child_wait_since is None or since < ctx.child_wait_since:
            ctx.child_wait_since = since
        raise await ctx.suspension(
            SuspensionSignal("child", wake_at=None, op=op, child_run_id=child_run_id)
        )
    type_, data = _child_event(child, op, defn.name)
    await ctx.record(type_, data)
    return _outcome(type_, data, defn)


def _takes_name(func: Callable[..., Any]) -> bool:
    """Whether ``func`` accepts a ``name`` keyword (then ``name=`` is its argument)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True  # cannot tell: keep 0.1.9's behaviour, pass it on
    return any(
        (p.name == "name" and p.kind != p.POSITIONAL_ONLY) or p.kind == p.VAR_KEYWORD
        for p in params
    )


def _child_event(child: WorkflowRun, op: int, name: str) -> tuple[EventType, dict[str, Any]]:
    base = {"op": op, "name": name, "child_run_id": child.run_id}
    if child.status == RunStatus.COMPLETED:
        return EventType.CHILD_WORKFLOW_COMPLETED, {**base, "result": child.get_result()}
    if child.status == RunStatus.CANCELLED:
        return EventType.CHILD_WORKFLOW_CANCELLED, {**base, "error": child.error or "cancelled"}
    return EventType.CHILD_WORKFLOW_FAILED, {
        **base,
        "error": child.error or child.status.value,
        "error_type": child.error_type,
    }


def _outcome(type_: EventType, data: dict[str, Any], defn: Any) -> Any:
    if type_ == EventType.CHILD_WORKFLOW_COMPLETED:
        return from_jsonable(data.get("result"), defn.hints.get("return"))
    raise ChildWorkflowFailedError(
        data.get("child_run_id", ""),
        defn.name,
        data.get("error", "failed"),
        data.get("error_type"),
    )

"""Named operations (issue 17, item 3): ``sleep(name=)``, ``start_child_workflow(name=)``,
``parallel(name=, names=)`` and ``map(name=, item_name=)`` label their operations in the history
and in the timeline (``runs show``, the web UI) without being part of their identity, as AWS's
durable functions name every operation."""

from __future__ import annotations

import pytest

import pyworkflow
from pyworkflow import (
    get_workflow_events,
    get_workflow_run,
    sleep,
    start,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.core.events import EventType
from pyworkflow.runtime.replay import replay_history
from pyworkflow.runtime.timeline import build_timeline


@step
async def double(x: int) -> int:
    return 2 * x


@workflow
async def named_kid(x: int) -> int:
    return await double(x)


@workflow
async def greeter(name: str) -> str:
    return f"hello {name}"


@workflow
async def named_flow() -> dict:
    await sleep(0, name="cool_off")
    kid = await start_child_workflow(named_kid, 2, name="billing")
    greeting = await start_child_workflow(greeter, name="ada")  # the child's own argument
    both = await pyworkflow.parallel(double(1), double(2), name="checks", names=["card", "stock"])
    items = await pyworkflow.map(
        double, [5, 6], name="sizes", item_name=lambda item, index: f"size-{index}-{item}"
    )
    return {"kid": kid, "greeting": greeting, "both": both.results, "items": items.results}


async def test_labels_are_recorded_in_the_history(storage) -> None:
    run_id = await start(named_flow)
    run = await get_workflow_run(run_id)
    assert run.get_result() == {
        "kid": 4,
        "greeting": "hello ada",
        "both": [2, 4],
        "items": [10, 12],
    }
    events = await get_workflow_events(run_id)
    sleeps = [e.data.get("sleep_name") for e in events if e.type == EventType.SLEEP_STARTED]
    children = [
        e.data.get("child_name") for e in events if e.type == EventType.CHILD_WORKFLOW_STARTED
    ]
    fan_outs = [
        (e.data.get("label"), e.data.get("item_names"))
        for e in events
        if e.type == EventType.PARALLEL_STARTED
    ]
    assert sleeps == ["cool_off"]
    assert children == ["billing", None]  # greeter takes name= itself: no label
    assert fan_outs == [("checks", ["card", "stock"]), ("sizes", ["size-0-5", "size-1-6"])]


async def test_the_timeline_shows_labels_and_item_names(storage) -> None:
    run_id = await start(named_flow)
    tl = build_timeline(await get_workflow_events(run_id))
    titles = [o.title for o in tl.operations if o.path is None]
    assert titles[:3] == ["cool_off (sleep)", "billing (named_kid)", "greeter"]
    items = [(o.path, o.item) for o in tl.operations if o.path is not None]
    assert [item for _, item in items] == ["card", "stock", "size-0-5", "size-1-6"]


async def test_labels_are_not_part_of_an_operations_identity(storage) -> None:
    run_id = await start(named_flow)
    history = await get_workflow_events(run_id)
    relabelled = [
        e.model_copy(update={"data": {**e.data, "sleep_name": "renamed"}})
        if e.type == EventType.SLEEP_STARTED
        else e
        for e in history
    ]
    report = await replay_history(relabelled)
    assert (report.ok, report.ending.value) == (True, "returned"), report.detail


@workflow
async def wrong_names_flow() -> object:
    return await pyworkflow.parallel(double(1), double(2), names=["only one"])


async def test_parallel_needs_one_name_per_branch(storage) -> None:
    with pytest.raises(ValueError, match="one per branch"):
        await start(wrong_names_flow)

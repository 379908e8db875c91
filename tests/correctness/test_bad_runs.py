"""One bad run never takes a worker down (audit behaviour 2): a value the store cannot hold
fails its step once, with an error naming the step and the value's problem, and a worker pass
goes on serving every other due run whatever one drive raises."""

import pytest

from pyworkflow import RunStatus, get_workflow_events, get_workflow_run, hook, step, workflow
from pyworkflow.api import resume_hook_by_name
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.exceptions import SerializationError
from pyworkflow.runtime.local import get_runtime
from pyworkflow.runtime.worker import run_once

CALLS: list[str] = []
UNDECODABLE = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")


@step(max_retries=3, retry_delay=0)
async def br_read_file() -> str:
    CALLS.append("read")
    return UNDECODABLE


@step
async def br_fine(x: int) -> int:
    CALLS.append("fine")
    return x + 1


@workflow
async def br_undecodable() -> str:
    return await br_read_file()


@workflow
async def br_good(x: int) -> int:
    return await br_fine(x)


async def _created(workflow_fn, *args):
    """A run stored but not driven yet: what a worker pass finds due."""
    rt = get_runtime()
    run, _ = await rt.executor.create(get_workflow_by_func(workflow_fn), args, {})
    return run.run_id


async def test_an_unstorable_step_result_fails_that_step_once_and_the_worker_serves_the_rest(
    storage,
):
    CALLS.clear()
    bad = await _created(br_undecodable)
    good = await _created(br_good, 1)
    rt = get_runtime()
    first = await run_once(rt)
    second = await run_once(rt)
    assert first.errors == [] and second.errors == []
    assert CALLS.count("read") == 1  # not retried, not re-run by the next pass
    run = await get_workflow_run(bad)
    assert run.status == RunStatus.FAILED
    assert "step 'br_read_file'" in run.error and "lone surrogate" in run.error
    run.error.encode("utf-8")
    events = await get_workflow_events(bad)
    assert [e.type.value for e in events] == ["workflow.started", "step.failed", "workflow.failed"]
    assert (await get_workflow_run(good)).get_result() == 2


class _Exploding:
    """A storage whose reads of one run's history always fail (a corrupt item, a bug)."""

    def __init__(self, inner, run_id: str) -> None:
        self.inner, self.run_id = inner, run_id

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def get_events(self, run_id, **kwargs):
        if run_id == self.run_id:
            raise RuntimeError("this run's history cannot be read")
        return await self.inner.get_events(run_id, **kwargs)


async def test_a_run_whose_drive_raises_does_not_stop_a_worker_pass(storage):
    CALLS.clear()
    bad = await _created(br_good, 10)
    goods = [await _created(br_good, i) for i in range(3)]
    rt = get_runtime()
    rt.storage = rt.executor.storage = _Exploding(storage, bad)
    stats = await run_once(rt)
    assert [e.split(":")[0] for e in stats.errors] == [f"run {bad}"]
    assert "cannot be read" in stats.errors[0]
    assert [(await get_workflow_run(g)).get_result() for g in goods] == [1, 2, 3]


@workflow
async def br_waits() -> object:
    return await hook("note")


async def test_an_unstorable_hook_payload_is_refused_and_the_hook_stays_pending(storage):
    from pyworkflow import start

    run_id = await start(br_waits)
    with pytest.raises(SerializationError) as info:
        await resume_hook_by_name(run_id, "note", {"text": UNDECODABLE})
    assert info.value.path == "['text']"
    hooks = await storage.list_hooks(run_id=run_id)
    assert [h.status.value for h in hooks] == ["pending"]
    await resume_hook_by_name(run_id, "note", {"text": "café"})
    assert (await get_workflow_run(run_id)).get_result() == {"text": "café"}


async def test_an_unstorable_argument_is_refused_before_anything_is_written(storage):
    from pyworkflow import start
    from pyworkflow.exceptions import InvalidArgumentsError

    with pytest.raises(InvalidArgumentsError, match="Argument 'x' of workflow 'br_good'"):
        await start(br_good, UNDECODABLE)
    assert (await storage.list_runs_page()).items == []


async def test_a_token_holding_text_no_token_can_hold_is_an_invalid_token(storage):
    from pyworkflow.api import resume_hook
    from pyworkflow.exceptions import InvalidTokenError

    for token in ("whk_\ud800", "whk_é"):
        with pytest.raises(InvalidTokenError):
            await resume_hook(token, {})

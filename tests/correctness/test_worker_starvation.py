"""No starvation (audit behaviour 4): due runs a worker cannot drive — their workflow is not in
its modules, or their drive fails — do not hide the others. A pass pages past them and drives
every run it can; the skipped runs keep their status (never "running" without a lease)."""

from datetime import timedelta

from pyworkflow import RunStatus, step, workflow
from pyworkflow.core.models import WorkflowRun
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.runtime.local import get_runtime
from pyworkflow.runtime.worker import PAGE, run_once


@step
async def ws_add(x: int) -> int:
    return x + 1


@workflow
async def ws_known(x: int) -> int:
    return await ws_add(x)


async def _unknown_runs(storage, clock, n: int) -> list[WorkflowRun]:
    """Runs of a workflow this worker does not define, due before anything else."""
    old = clock.now() - timedelta(hours=1)
    return [
        await storage.create_run(
            WorkflowRun(
                run_id=f"run_unknown_{i:04d}",
                workflow_name="defined_elsewhere",
                created_at=old,
                updated_at=old,
                input_args="[]",
                input_kwargs="{}",
            ),
            [],
        )
        for i in range(n)
    ]


async def _known_runs(n: int) -> list[str]:
    rt = get_runtime()
    defn = get_workflow_by_func(ws_known)
    return [(await rt.executor.create(defn, (i,), {}))[0].run_id for i in range(n)]


async def test_runs_of_workflows_not_in_the_workers_modules_do_not_hide_the_others(storage, clock):
    unknown = await _unknown_runs(storage, clock, PAGE + 50)  # more than a page of them first
    clock.advance(1)
    known = await _known_runs(5)
    stats = await run_once(get_runtime())
    results = [(await storage.get_run(r)).get_result() for r in known]
    assert results == [1, 2, 3, 4, 5]
    assert stats.skipped == len(unknown)
    assert [e for e in stats.errors if "defined_elsewhere" in e] == [stats.errors[0]]
    for before in unknown[:3] + unknown[-3:]:
        after = await storage.get_run(before.run_id)
        assert after.status == RunStatus.PENDING and after.lease_owner is None
        assert after.version == before.version  # untouched: left for a worker that has it


class _Unreadable:
    """A storage whose reads of some runs' histories always fail."""

    def __init__(self, inner, bad: set[str]) -> None:
        self.inner, self.bad = inner, bad

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def get_events(self, run_id, **kwargs):
        if run_id in self.bad:
            raise OSError("unreadable")
        return await self.inner.get_events(run_id, **kwargs)


async def test_runs_whose_drive_fails_do_not_hide_the_others(storage, clock):
    failing = await _known_runs(PAGE + 20)
    clock.advance(1)
    known = await _known_runs(3)
    rt = get_runtime()
    rt.storage = rt.executor.storage = _Unreadable(storage, set(failing))
    stats = await run_once(rt)
    assert [(await storage.get_run(r)).get_result() for r in known] == [1, 2, 3]
    assert len(stats.errors) == len(failing)
    stuck = await storage.get_run(failing[0])
    # it was taken and its drive failed: running under a lease that will lapse, then retried
    assert stuck.status == RunStatus.RUNNING and stuck.lease_expires_at > clock.now()

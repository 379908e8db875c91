"""Engine bugs the deterministic simulation (tests/simulation) found beyond the audit's list,
each reduced to a small standalone test that failed before its fix:

A: a waited-for child driven inline (embedded) from a fan-out branch runs in the branch's
   context, so its ops are numbered as the parent's branch ops; its history then fails replay.
B: an early stop (min_successful) in a later execution computes the fan-out's end from the ops
   taken in *this* execution: ops a skipped branch recorded earlier collide with the next ops.
C: ``ConcurrencyError`` (the history moved under a zombie execution) is an ``Exception``: user
   code's ``except Exception`` swallows it and the zombie runs the next steps again.
D: an early stop cancels a branch while it writes (a store with real I/O): the batch it took is
   lost, the next write leaves a gap, the execution restarts and runs a step a second time.
E: ``drive(steal=True)`` that loses the compare-and-set retries with ``steal`` still set and
   takes the run from the live worker that just won it: both run the step.
F: embedded: a child's process dies between the child's ending and waking its parent; nothing
   re-notifies the parent (worker passes only see due runs), which waits forever.
G: a process dies between storing a hook's record and recording ``hook.created``; the next
   execution stores a second record (new token, given to ``on_created``). The run reads the
   newest record of its hook id by ``created_at``; when both have the same time (the clock did
   not move: a coarse or manual clock) the memory backend returns the *older* one, so a payload
   sent with the token ``on_created`` got never reaches the run, which waits forever.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

import pyworkflow
from pyworkflow import FatalError, hook, sleep, start_child_workflow, step, workflow
from pyworkflow.api import resume_hook_by_name
from pyworkflow.core.clock import ManualClock
from pyworkflow.core.models import RunStatus
from pyworkflow.core.registry import get_workflow_by_func
from pyworkflow.runtime.executor import LIVE_OWNERS
from pyworkflow.runtime.faults import Faults, InjectedCrash, inject
from pyworkflow.runtime.local import LocalRuntime, install_runtime
from pyworkflow.runtime.replay import replay_history
from pyworkflow.runtime.worker import run_once
from pyworkflow.storage.memory import InMemoryStorageBackend

RAN: Counter[str] = Counter()
GATE: dict[str, asyncio.Event] = {}
TOKENS: list[str] = []


class QuietRuntime(LocalRuntime):
    """No in-process wake-ups: runs move when a test drives them or a worker pass does."""

    def spawn(self, run_id: str) -> None:
        return None

    async def wake_at(self, run_id: str, when: Any, *, key: str = "") -> None:
        return None


class SlowStore(InMemoryStorageBackend):
    """Calls take a moment, as with any networked store: other tasks run meanwhile."""

    async def get_run(self, run_id: str) -> Any:
        await asyncio.sleep(0)
        return await super().get_run(run_id)

    async def update_run(self, run: Any, *, expected_version: int) -> Any:
        await asyncio.sleep(0)
        return await super().update_run(run, expected_version=expected_version)

    async def append_events(self, run_id: str, events: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return await super().append_events(run_id, events, **kwargs)


async def start(rt: LocalRuntime, wf: Any, *args: Any) -> str:
    defn = get_workflow_by_func(wf)
    assert defn is not None
    run, history = await rt.executor.create(defn, args, {}, lease=True)
    await rt.drive_created(run, history)
    return run.run_id


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    RAN.clear()
    GATE.clear()
    TOKENS.clear()
    owners = set(LIVE_OWNERS)
    yield
    LIVE_OWNERS.intersection_update(owners)


# --- A ------------------------------------------------------------------------------------------
@step(name="nb_add")
async def add(x: int) -> int:
    return x + 1


@workflow(name="nb_a_child")
async def a_child(x: int) -> int:
    return await add(x)


async def a_branch(x: int) -> int:
    return await start_child_workflow(a_child, x)  # type: ignore[no-any-return]


@workflow(name="nb_a_parent")
async def a_parent() -> list[Any]:
    return (await pyworkflow.map(a_branch, [1, 2])).raise_if_failed()


async def test_a_child_started_in_a_branch_has_a_history_of_its_own() -> None:
    rt = QuietRuntime(InMemoryStorageBackend(), clock=ManualClock())
    run_id = await start(rt, a_parent)
    child = (await rt.storage.list_runs_page(parent_run_id=run_id)).items[0]
    assert child.status == RunStatus.COMPLETED
    events = await rt.storage.get_events(child.run_id)
    assert all("path" not in e.data for e in events), [e.data for e in events]
    assert (await replay_history(events)).ok


# --- B ------------------------------------------------------------------------------------------
@step(name="nb_b_item")
async def b_item() -> str:
    return "item"


@step(name="nb_b_after")
async def b_after() -> str:
    return "after"


async def b_sleeper() -> str:
    await sleep(100)
    return "slept"


async def b_waiter() -> str:
    return str((await hook("nb_b_go"))["go"])


async def b_stepper() -> str:
    await b_item()
    await sleep(50)
    return "stepped"


@workflow(name="nb_b_first_of_three")
async def b_first_of_three() -> str:
    res = await pyworkflow.parallel(
        b_sleeper(), b_waiter(), b_stepper(), min_successful=1, max_concurrency=1
    )
    return f"{res.completion_reason.value} {await b_after()}"


async def test_an_early_stop_in_a_later_execution_keeps_the_ops_after_it() -> None:
    rt = QuietRuntime(InMemoryStorageBackend(), clock=ManualClock())
    install_runtime(rt)
    run_id = await start(rt, b_first_of_three)
    # first execution: the three branches park (sleep, hook, sleep after a step)
    await resume_hook_by_name(run_id, "nb_b_go", {"go": 1}, storage=rt.storage)
    run = await rt.storage.get_run(run_id)
    assert run is not None
    assert run.status == RunStatus.COMPLETED, (run.status, run.error)


# --- C ------------------------------------------------------------------------------------------
@step(name="nb_c_step")
async def c_step(name: str) -> str:
    RAN[name] += 1
    if name == "one" and RAN[name] == 1:
        await GATE["c"].wait()  # the first worker freezes here (a GC pause, a stopped VM)
    return name


@workflow(name="nb_c_forgiving")
async def c_forgiving() -> list[str]:
    out = []
    for name in ("one", "two"):
        try:
            out.append(await c_step(name))
        except Exception as exc:  # what user code does around a step
            out.append(type(exc).__name__)
    return out


async def test_a_zombie_execution_stops_at_its_first_failed_write() -> None:
    clock = ManualClock()
    store = InMemoryStorageBackend()
    frozen = QuietRuntime(store, clock=clock, lease_seconds=60)
    other = QuietRuntime(store, clock=clock, lease_seconds=60)
    GATE["c"] = asyncio.Event()
    zombie = asyncio.create_task(start(frozen, c_forgiving))
    for _ in range(100):  # until it is frozen in its first step
        await asyncio.sleep(0)
    assert RAN["one"] == 1
    clock.advance(61)  # its lease expires while it is frozen
    run_id = (await store.list_runs_page()).items[0].run_id
    assert (await other.drive(run_id)).status == RunStatus.COMPLETED
    GATE["c"].set()
    await zombie
    assert RAN["two"] == 1, dict(RAN)


# --- D ------------------------------------------------------------------------------------------
@step(name="nb_d_quick")
async def d_quick() -> int:
    RAN["quick"] += 1
    return 1


@step(name="nb_d_fails")
async def d_fails() -> int:
    raise FatalError("no")


@step(name="nb_d_second")
async def d_second() -> int:
    RAN["second"] += 1
    return 2


async def d_branch() -> int:
    try:
        await d_fails()
    except FatalError:
        pass
    return await d_second()


@workflow(name="nb_d_first_of_two")
async def d_first_of_two() -> str:
    res = await pyworkflow.parallel(d_quick(), d_branch(), min_successful=1)
    return res.completion_reason.value


async def test_an_early_stop_during_a_write_runs_no_step_twice() -> None:
    rt = QuietRuntime(SlowStore(), clock=ManualClock())
    run_id = await start(rt, d_first_of_two)
    run = await rt.storage.get_run(run_id)
    assert run is not None and run.status == RunStatus.COMPLETED
    assert RAN["second"] <= 1, dict(RAN)


# --- E ------------------------------------------------------------------------------------------
@step(name="nb_e_step")
async def e_step() -> str:
    RAN["e"] += 1
    for _ in range(5):
        await asyncio.sleep(0)
    return "done"


@workflow(name="nb_e_once")
async def e_once() -> str:
    return await e_step()  # type: ignore[no-any-return]


async def test_two_workers_stealing_a_dead_workers_run_run_its_step_once() -> None:
    clock = ManualClock()
    store = SlowStore()
    dead = QuietRuntime(store, clock=clock)
    defn = get_workflow_by_func(e_once)
    assert defn is not None
    run, _ = await dead.executor.create(defn, (), {}, lease=True)  # then its process died
    LIVE_OWNERS.discard(dead.executor.owner)
    a, b = QuietRuntime(store, clock=clock), QuietRuntime(store, clock=clock)
    await asyncio.gather(run_once(a), run_once(b))
    final = await store.get_run(run.run_id)
    assert final is not None and final.status == RunStatus.COMPLETED
    assert RAN["e"] == 1, dict(RAN)


# --- F ------------------------------------------------------------------------------------------
@workflow(name="nb_f_child")
async def f_child() -> str:
    await sleep(10)
    return "child done"


@workflow(name="nb_f_parent")
async def f_parent() -> str:
    return await start_child_workflow(f_child)  # type: ignore[no-any-return]


async def test_a_parent_learns_of_its_child_ending_after_a_crash() -> None:
    clock = ManualClock()
    store = InMemoryStorageBackend()
    first = inject(
        QuietRuntime(store, clock=clock),
        Faults(crash_on="after append_events(sleep.completed,workflow.completed)"),
    )
    run_id = await start(first, f_parent)  # the child sleeps; the parent waits for it
    clock.advance(10)
    with pytest.raises(InjectedCrash):
        await run_once(first)  # the child ends; its process dies before waking the parent
    LIVE_OWNERS.discard(first.executor.owner)
    second = QuietRuntime(store, clock=clock)
    for _ in range(3):
        await run_once(second)
        clock.advance(60)
    parent = await store.get_run(run_id)
    assert parent is not None
    assert parent.status == RunStatus.COMPLETED, parent.status


# --- G ------------------------------------------------------------------------------------------


async def g_remember(token: str) -> None:
    TOKENS.append(token)


@workflow(name="nb_g_waits")
async def g_waits() -> int:
    return int((await hook("nb_g_go", on_created=g_remember))["n"])


async def test_a_hook_created_again_after_a_crash_takes_the_new_token() -> None:
    from pyworkflow.core.hook import hash_token
    from pyworkflow.service.hooks import deliver_hook

    clock = ManualClock()  # it does not move between the crash and the next execution
    store = InMemoryStorageBackend()
    first = inject(QuietRuntime(store, clock=clock), Faults(crash_on="after create_hook"))
    with pytest.raises(InjectedCrash):
        await start(first, g_waits)
    LIVE_OWNERS.discard(first.executor.owner)
    second = QuietRuntime(store, clock=clock)
    await run_once(second)  # steals the dead process's run, stores the hook again
    assert len(TOKENS) == 1
    found = await store.get_hook_by_hash(hash_token(TOKENS[0]))
    assert found is not None
    await deliver_hook(second, found, {"n": 5})
    run = (await store.list_runs_page()).items[0]
    assert run.status == RunStatus.COMPLETED, run.status

"""The simulator can fail: break the engine on purpose (monkeypatch) and watch the invariant
checker name the damage within a few seeds."""

from __future__ import annotations

from typing import Any

import pytest

from pyworkflow.core import step as step_module
from pyworkflow.core.context import ExecutionContext
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.retry import rebuild_error as real_rebuild_error
from pyworkflow.runtime.executor import Executor
from pyworkflow.runtime.local import LocalRuntime
from tests.simulation import runner
from tests.simulation.program import CI_FEATURES
from tests.simulation.runner import SeedReport, check_seed

# A crashed execution's fan-out branches never run: Python warns when it collects them.
pytestmark = pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")

SEEDS = range(40)


def first_failure(expected: str, config: str | None = None) -> SeedReport:
    """The first seed whose report names ``expected``."""
    for seed in SEEDS:
        report = check_seed(seed, config, CI_FEATURES)
        if any(expected in p for p in report.problems):
            return report
    raise AssertionError(f"no seed of {SEEDS} reported {expected!r}")


def test_a_step_result_recorded_twice_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ExecutionContext.record

    async def record_twice(
        self: ExecutionContext, type_: EventType, data: dict[str, Any], **kwargs: Any
    ) -> Event:
        event = await real(self, type_, data, **kwargs)
        if type_ == EventType.STEP_COMPLETED:
            await real(self, type_, data, **kwargs)
        return event

    monkeypatch.setattr(ExecutionContext, "record", record_twice)
    first_failure("more than one terminal event")


def test_an_event_after_the_ending_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Executor._after_terminal

    async def append_after(self: Executor, run: Any, history: list[Event], **kwargs: Any) -> None:
        events = await self.storage.get_events(run.run_id)
        late = Event(
            event_id=f"late-{run.run_id}",
            run_id=run.run_id,
            type=EventType.STEP_COMPLETED,
            timestamp=self.clock.now(),
            sequence=len(events) + 1,
            data={"op": 999, "name": "late"},
        )
        await self.storage.append_events(run.run_id, [late])
        await real(self, run, history, **kwargs)

    monkeypatch.setattr(Executor, "_after_terminal", append_after)
    first_failure("events after its ending")


def test_a_replay_that_diverges_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recorded step failure comes back as another exception type on replay (recorded data
    carries its op; a fresh failure's does not): the workflow's outcome for that instruction
    changes between the run and its replay."""

    def drifting(data: dict[str, Any], step_name: str) -> Exception:
        error = real_rebuild_error(data, step_name)
        replayed = "op" in data
        return KeyError(str(error)) if replayed and isinstance(error, RuntimeError) else error

    monkeypatch.setattr(step_module, "rebuild_error", drifting)
    first_failure("replay diverged")


def test_a_step_run_twice_without_a_fault_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = step_module._call

    async def call_twice(defn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            await real(defn, args, kwargs)
        except Exception:  # noqa: BLE001, S110 - the second call decides
            pass
        return await real(defn, args, kwargs)

    monkeypatch.setattr(step_module, "_call", call_twice)
    first_failure("executed again")


def test_a_lost_wake_up_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ended children never tell their waiting parents, and the embedded runtime's check of
    parents waiting for children is off: nothing else wakes them."""
    real = Executor._after_terminal
    real_init = LocalRuntime.__init__

    async def mute(self: Executor, run: Any, history: list[Event], **kwargs: Any) -> None:
        await real(self, run, history, notify_parent=False)

    def no_check(self: LocalRuntime, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.executor.child_check = None

    monkeypatch.setattr(Executor, "_after_terminal", mute)
    monkeypatch.setattr(LocalRuntime, "__init__", no_check)
    first_failure("neither ended nor provably waiting", config="memory")


def test_a_result_that_differs_under_faults_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison with the fault-free run: a faulty run whose result changed is named."""
    real = runner.simulate

    def tampered(seed: int, config: str, plan: Any, features: Any = CI_FEATURES) -> Any:
        result = real(seed, config, plan, features)
        if plan.faulty:
            results = {i: ["failed", "Tampered"] for i in result.results}
            return runner.SimResult(**{**result.__dict__, "results": results})
        return result

    monkeypatch.setattr(runner, "simulate", tampered)
    report = first_failure("differs from the fault-free")
    assert report.faulty.plan.faulty

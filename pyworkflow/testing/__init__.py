"""Testing kit: run workflows on virtual time, in memory, from a test.

    from pyworkflow.testing import WorkflowEnvironment

    async def test_trial_reminder():
        async with WorkflowEnvironment() as env:
            run_id = await env.start(trial, "u-1")        # sleeps 14 days: instant
            assert await env.result(run_id) == "reminded"
            assert [s.name for s in await env.steps(run_id)] == ["signup", "remind"]
            await env.replay(run_id)                      # still replays with today's code

With pytest, the ``workflow_env`` fixture gives each test an open environment: it is registered
by installing pyworkflow (a ``pytest11`` entry point), or by ``pytest_plugins =
["pyworkflow.testing.plugin"]`` in a conftest at the rootdir or in a test module.
"""

# pyworkflow-engine's way to test a workflow's logic without a run (also pyworkflow.MockContext;
# it lives in core so that importing pyworkflow never loads this testing kit)
from pyworkflow.core.mock_context import MockContext
from pyworkflow.testing.env import (
    DEFAULT_START,
    WorkflowBlockedError,
    WorkflowEnvironment,
    WorkflowRunFailedError,
)
from pyworkflow.testing.helpers import StepAttempt, StepOutcome, filter_events, step_attempts
from pyworkflow.testing.runtime import Timer, TimeSkippingRuntime

__all__ = [
    # the environment
    "WorkflowEnvironment",
    "DEFAULT_START",
    "Timer",
    "TimeSkippingRuntime",
    "MockContext",
    # errors
    "WorkflowBlockedError",
    "WorkflowRunFailedError",
    # inspecting histories
    "StepAttempt",
    "StepOutcome",
    "step_attempts",
    "filter_events",
]

"""Testing a workflow with pyworkflow.testing: the order-processing demo, on virtual time.

    python -m pytest examples/test_with_testing_kit.py -q

The workflow under test is ``process_order`` from ``order_processing.py``, unchanged: a payment
step that fails once and is retried 1 s later, a ``sleep("2s")``, then an approval hook that
times out after an hour. The ``workflow_env`` fixture gives each test a fresh environment:
in-memory storage and a clock that only moves when every run is waiting, straight to the next
timer. An hour-long timeout expires at once, and every time below is exact.

What to copy into your own tests:

* ``env.start(...)`` runs the workflow until it waits; ``env.result(run_id)`` skips time until it
  ends (and raises the run's exception if it failed);
* ``env.wait_for_hook(run_id, name)`` skips time until the run waits on that hook, then
  ``env.resume_hook(run_id, name, payload)`` answers it without needing the token;
* ``env.now`` is virtual time; ``env.steps(run_id)`` lists step attempts, with retries;
* ``env.replay(run_id)`` checks the recorded history still replays against today's code: run
  it in CI so a change that would break in-flight runs fails a test, not production.

The fixture comes from pyworkflow's pytest plugin: registered automatically once pyworkflow is
installed; the ``pytest_plugins`` line below loads it when it is not (e.g. ``PYTHONPATH=.``).
Async tests need pytest-asyncio (this repository sets ``asyncio_mode = "auto"``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from order_processing import executions, process_order, tokens

from pyworkflow import HookExpiredError
from pyworkflow.testing import StepOutcome, WorkflowEnvironment

pytest_plugins = ["pyworkflow.testing.plugin"]

ITEMS = [{"sku": "widget", "qty": 2, "price": 9.5}, {"sku": "gadget", "qty": 1, "price": 24.0}]


@pytest.fixture(autouse=True)
def _fresh_counters():
    executions.clear()  # the demo's payment step fails on its first call in the process
    tokens.clear()


async def test_an_approved_order_ships(workflow_env: WorkflowEnvironment):
    env = workflow_env
    t0 = env.now
    run_id = await env.start(process_order, "order-1", ITEMS)

    # the retry (1 s) and the sleep (2 s) pass at once; then the run waits for the approver
    hook = await env.wait_for_hook(run_id, "approval")
    assert env.now == t0 + timedelta(seconds=3)
    assert hook.expires_at == env.now + timedelta(hours=1)
    assert tokens["order-1"] == await env.hook_token(run_id, "approval")  # what on_created got

    await env.sleep("20m")  # the approver takes twenty minutes
    await env.resume_hook(run_id, "approval", {"approved": True, "approver": "dana"})
    result = await env.result(run_id)
    assert result == {"order_id": "order-1", "status": "shipped", "charge_id": "ch-order-1",
                      "tracking": "TRACK-ORDER-1", "approved_by": "dana"}
    assert env.now == t0 + timedelta(seconds=3, minutes=20)

    charges = await env.steps(run_id, "charge_payment")
    assert [(c.attempt, c.outcome, c.at - t0) for c in charges] == [
        (1, StepOutcome.RETRYING, timedelta(0)),
        (2, StepOutcome.COMPLETED, timedelta(seconds=1)),
    ]
    assert executions["validate_order"] == 1  # replays returned the recorded result
    await env.replay(run_id)


async def test_a_rejected_order_is_not_shipped(workflow_env: WorkflowEnvironment):
    env = workflow_env
    run_id = await env.start(process_order, "order-2", ITEMS)
    await env.wait_for_hook(run_id, "approval")
    await env.resume_hook(run_id, "approval", {"approved": False, "approver": "eve"})
    assert await env.result(run_id) == {"order_id": "order-2", "status": "rejected", "by": "eve"}
    assert await env.steps(run_id, "ship_order") == []


async def test_an_unanswered_approval_times_out_after_an_hour(workflow_env: WorkflowEnvironment):
    env = workflow_env
    t0 = env.now
    run_id = await env.start(process_order, "order-3", ITEMS)
    with pytest.raises(HookExpiredError):
        await env.result(run_id)  # nobody approves: the hour passes in no time
    assert env.now == t0 + timedelta(seconds=3, hours=1)
    assert "hook.expired" in await env.event_types(run_id)

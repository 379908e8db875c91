"""pyworkflow-engine 0.1.9's 16 local examples run unchanged on pyworkflow.

Each example is taken from 0.1.9's sdist (the ``engine_sdist`` fixture) as it is, copied into a
temporary directory (some write ``workflow_data/`` next to themselves or in the current
directory) and run there as a script, with this repository first on PYTHONPATH. Each must exit 0
and print a few lines that do not depend on time or random ids.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# example (under examples/local/) -> lines its output must contain
EXAMPLES: dict[str, list[str]] = {
    "durable/01_basic_workflow.py": [
        "Status: completed",
        'Result: {"order_id":"order-123","status":"processed","charged":99.99,"notified":true}',
        "=== Event Log (5 events) ===",
    ],
    "durable/02_file_storage.py": [
        "Status: completed",
        'Result: {"order_id":"order-456","status":"processed","charged":149.99,"notified":true}',
    ],
    "durable/03_retries.py": [
        "✓ API call successful on attempt 3!",
        "✓ Workflow completed successfully!",
        "Final status: completed",
    ],
    "durable/04_long_running.py": [
        "Workflow status after sleep: suspended",
        "Result: {'batch_id': 'batch-001', 'status': 'completed', 'items': 1000}",
        "Final status: completed",
    ],
    "durable/05_event_log.py": ["Result: 20", "Result: 25", "Status: completed"],
    "durable/06_idempotency.py": [
        "run_id_1 == run_id_2: True",
        "Workflow re-executed: False",
        "Execution count: 2 (incremented!)",
    ],
    "durable/07_hooks.py": [
        "Received: approved=True, reviewer=jane.doe@example.com",
        'Result: {"order_id":"ORDER-002","status":"fulfilled"}',
        'Result: {"order_id":"ORDER-003","status":"cancelled","reason":"Insufficient inventory"}',
    ],
    "durable/08_cancellation.py": [
        "[Workflow] Cancellation detected! Reason: Customer cancelled order",
        "Final status: cancelled",
        "Cancellation result: False",
    ],
    "durable/09_child_workflows.py": ["Status: completed", "Child Workflows (3 total):"],
    "durable/10_child_workflow_patterns.py": [
        "[Level1] Completed nested workflow demo",
        "[ParallelParent] All children completed",
    ],
    "durable/11_continue_as_new.py": [
        "Workflow chain has 4 runs:",
        'Result: "Completed! Processed 30 total items"',
        'Final result: "Polling complete after 4 polls"',
    ],
    "durable/12_schedules.py": [
        "metrics-30s-interval: paused",
        "Triggered run: run_",
        "=== Final Schedule Stats ===",
    ],
    "durable/13_step_context.py": [
        "[notify] Order order-456 completed!",
        "Status: completed",
        # run.context holds the step context, as 0.1.9's storage.update_run_context kept it
        "Stored context: {'workspace_id': 'ws-123', 'user_id': 'user-789'",
    ],
    "transient/01_quick_tasks.py": [
        "Sending notification for order order-123...",
        "Workflow completed: run_",
    ],
    "transient/02_retries.py": [
        "Total attempts: 3",
        "✗ Workflow failed with FatalError: Negative values not allowed",
    ],
    "transient/03_sleep.py": ["Woke up from sleep!", "Total time: 3.0 seconds"],
}

# Seconds each may take: 12_schedules runs its LocalScheduler for 65 s by design.
TIMEOUTS = {"durable/12_schedules.py": 180}

# Local examples that cannot run here, and why. Empty: all of them run.
CANNOT_RUN: dict[str, str] = {}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def test_the_examples_list_is_every_local_example(engine_sdist):
    local = engine_sdist / "examples" / "local"
    found = {str(path.relative_to(local)) for path in local.glob("*/[0-9]*.py") if path.is_file()}
    assert found == set(EXAMPLES) | set(CANNOT_RUN)
    assert len(found) == 16


def test_examples_import_this_repositorys_pyworkflow(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import pyworkflow; print(pyworkflow.__file__)"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(done.stdout.strip()).is_relative_to(REPO_ROOT)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_engine_example_runs_unchanged(engine_sdist, tmp_path, example):
    source = engine_sdist / "examples" / "local" / example
    script = tmp_path / source.name
    shutil.copyfile(source, script)
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=TIMEOUTS.get(example, 120),
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{example} did not finish in {timeout.timeout}s:\n{timeout.stdout!r}")
    output = done.stdout
    assert done.returncode == 0, f"{example} exited {done.returncode}:\n{output}\n{done.stderr}"
    missing = [line for line in EXAMPLES[example] if line not in output]
    assert not missing, f"{example} did not print {missing}:\n{output}"

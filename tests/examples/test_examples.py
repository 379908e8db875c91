"""Run every example as a user would (a subprocess, from the repo root) and check what it prints."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPTS = [
    "order_processing",
    "batch_continue_as_new",
    "child_workflows",
    "cancellation",
    "fan_out",
    "patching",
]
# Not yet listed in examples/README.md (the lead's): checked for the public API, not the README.


def run_example(name: str, db: Path) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYWORKFLOW_DB", "PYWORKFLOW_STORAGE", "PYWORKFLOW_MODULE")
    }
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--db", str(db)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert db.exists(), f"{name} did not use --db {db}"
    return proc.stdout


def line_index(out: str, pattern: str) -> int:
    """Index of the first output line matching ``pattern`` (a regex); fails if none does."""
    for i, line in enumerate(out.splitlines()):
        if re.search(pattern, line):
            return i
    pytest.fail(f"no line matches {pattern!r} in:\n{out}")


def event_types(out: str) -> list[str]:
    """The ``type`` column of an event log printed as 'seq  type  name'."""
    return re.findall(
        r"^\s+\d+\s+((?:workflow|step|sleep|hook|cancellation|child_workflow)\.\w+)",
        out,
        flags=re.M,
    )


def test_order_processing(tmp_path):
    db = tmp_path / "orders.db"
    out = run_example("order_processing", db)
    # the flaky step ran twice, everything else once despite several replays
    assert re.search(r"validate_order\s+ran 1 time", out)
    assert re.search(r"reserve_inventory\s+ran 1 time", out)
    assert re.search(r"charge_payment\s+ran 2 time", out)
    assert re.search(r"ship_order\s+ran 1 time", out)
    assert re.search(r"The workflow function ran [2-9] times", out)
    # the retry suspended the run; the script resumed the hook
    assert line_index(out, r"start\(\) returned run_\S+: status suspended") < line_index(
        out, r"charge_payment: attempt 2"
    )
    assert line_index(out, r"calling resume_hook") < line_index(out, r"step ship_order")
    assert "resume_hook -> resumed" in out
    types = event_types(out)
    assert types == [
        "workflow.started",
        "step.completed",
        "step.completed",
        "step.retrying",
        "step.completed",
        "sleep.started",
        "sleep.completed",
        "hook.created",
        "hook.received",
        "step.completed",
        "workflow.completed",
    ]
    assert re.search(r"^\s+4\s+step\.retrying\s+charge_payment", out, flags=re.M)
    assert re.search(r"^Run run_\w+: status completed$", out, flags=re.M)
    assert "Result: {'order_id': 'order-1001', 'status': 'shipped'" in out
    assert "'approved_by': 'dana'" in out
    assert re.search(rf"pyworkflow --db {re.escape(str(db))} runs logs run_\w+", out)


def test_batch_continue_as_new(tmp_path):
    db = tmp_path / "batch.db"
    out = run_example("batch_continue_as_new", db)
    rows = re.findall(r"^\s+(\d+)\s+(run_\w+)\s+(\w+)\s+(\d+)\s+(\d+):", out, flags=re.M)
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("1", "continued_as_new", "0"),
        ("2", "continued_as_new", "4"),
        ("3", "continued_as_new", "8"),
        ("4", "completed", "12"),
    ]
    assert len({r[1] for r in rows}) == 4
    assert all(int(r[4]) <= 4 for r in rows)  # every run's history starts empty
    for batch in ("record-00 .. record-03", "record-04 .. record-07", "record-08 .. record-09"):
        assert out.count(f"processed {batch}") == 1
    assert re.search(r"^Run run_\w+ \(last of the chain\): status completed$", out, flags=re.M)
    assert "Result: {'total_processed': 10, 'batches': 3}" in out
    assert re.search(rf"--db {re.escape(str(db))} runs chain {rows[0][1]}", out)


def test_child_workflows(tmp_path):
    db = tmp_path / "children.db"
    out = run_example("child_workflows", db)
    assert "parent checkout: child returned {'auth': 'auth-0001', 'amount': 25.0}" in out
    assert re.search(r"caught ChildWorkflowFailedError from run_\w+-c0: 'card declined'", out)
    summary = dict(re.findall(r"^\s+(\d (?:parent|child))\s+run_\S+\s+(\w+)", out, flags=re.M))
    assert summary == {
        "1 parent": "completed",
        "1 child": "completed",
        "2 parent": "completed",
        "2 child": "failed",
        "3 parent": "completed",
        "3 child": "completed",
        "4 parent": "completed",
        "4 child": "cancelled",
    }
    assert "'status': 'payment_failed', 'error': 'card declined'" in out
    # the abandoned child was still waiting when its parent completed, and finished later
    assert re.search(
        r"parent run_\w+: status completed; child run_\w+-c0: status "
        r"(pending|running|suspended)",
        out,
    )
    assert re.search(r"status completed, result 'sent', finished \d+\.\ds after its parent", out)
    # the policy-"cancel" child ran its cleanup, then was cancelled because its parent ended
    assert line_index(out, r"child cleanup: follow-up for o-4 skipped") < line_index(
        out, r"child run_\w+-c0: status cancelled \(reason: parent run_\w+ completed\)"
    )
    assert re.search(r"^Run run_\w+: status completed$", out, flags=re.M)
    assert "Result: {'order_id': 'o-1', 'status': 'paid', 'auth': 'auth-0001'}" in out


def test_cancellation(tmp_path):
    db = tmp_path / "cancel.db"
    out = run_example("cancellation", db)
    assert out.count("step reserve_inventory: reserved 3 unit(s)") == 1  # replay did not rerun it
    assert line_index(out, r"run run_\w+ is suspended") < line_index(
        out, r"CancellationError raised at the sleep \(reason: 'customer cancelled the order'\)"
    )
    cleanup = line_index(
        out,
        r"cleanup step release_inventory: released res-o-77 "
        r"\(run status meanwhile: running\)",
    )
    assert cleanup < line_index(out, r"cancel_workflow returned True; run run_\w+ is now cancelled")
    assert event_types(out) == [
        "workflow.started",
        "step.completed",
        "sleep.started",
        "cancellation.requested",
        "step.completed",
        "workflow.cancelled",
    ]
    assert re.search(r"^\s+5\s+step\.completed\s+release_inventory", out, flags=re.M)
    assert re.search(
        r"cancel_workflow\(run_\w+\) returned False; it is still completed "
        r"with result 'done'",
        out,
    )
    assert "step charge_payment" not in out
    assert re.search(r"^Run run_\w+: status cancelled$", out, flags=re.M)
    assert re.search(rf"pyworkflow --db {re.escape(str(db))} runs logs run_\w+", out)


def test_fan_out(tmp_path):
    db = tmp_path / "fan_out.db"
    out = run_example("fan_out", db)
    assert "map -> 7 succeeded, failed: #6 FatalError: cannot decode corrupt7.png" in out
    assert re.search(r"at most [1-3] resize steps ran at once", out)
    counts = re.findall(r"^\s+(resize|upload|send) .+ ran (\d+) time", out, flags=re.M)
    assert len(counts) == 8 + 7 + 2 and all(n == "1" for _, n in counts)
    assert re.search(r"^8 items -> 8 events for them", out, flags=re.M)
    assert re.search(r"^Run run_\w+: status completed$", out, flags=re.M)
    assert "'thumbnails': 7" in out and "'note': 'done'" in out and "'failed': [6]" in out


def test_patching(tmp_path):
    db = tmp_path / "patching.db"
    out = run_example("patching", db)
    assert (
        "replay of run A against 2-plain: NONDETERMINISM at operation #1: history sleep "
        "'sleep', code step 'fraud_check'"
    ) in out
    assert "replay of run A against version 2: ok (waiting)" in out
    assert "step fraud_check(A)" not in out and out.count("step fraud_check(B)") == 1
    assert re.search(
        r"Run A run_\w+: status completed, version 1, result \['res-A', "
        r"'shipped-A'\], patch.applied recorded: False",
        out,
    )
    assert re.search(
        r"Run B run_\w+: status completed, version 2, result \['res-B', 'clear', "
        r"'shipped-B'\], patch.applied recorded: True",
        out,
    )


def test_testing_kit_example(tmp_path):
    """examples/test_with_testing_kit.py is a test file: it passes when run as users run it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYWORKFLOW_DB", "PYWORKFLOW_STORAGE", "PYWORKFLOW_MODULE", "PYTEST_ADDOPTS")
    }
    env.update(PYTHONPATH=str(ROOT), PYWORKFLOW_DB=str(tmp_path / "unused.db"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-o",
            "addopts=",
            "-q",
            "-p",
            "no:cacheprovider",
            str(EXAMPLES / "test_with_testing_kit.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b3 passed\b", proc.stdout), proc.stdout
    assert not (tmp_path / "unused.db").exists()  # the kit never touched the SQLite default


@pytest.mark.parametrize("name", SCRIPTS)
def test_examples_use_only_the_public_api(name):
    tree = ast.parse((EXAMPLES / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyworkflow"):
            assert node.module == "pyworkflow", f"{name} imports from {node.module}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name == "pyworkflow" or not alias.name.startswith("pyworkflow.")


def test_readme_lists_every_example_with_its_command():
    readme = (EXAMPLES / "README.md").read_text()
    for name in SCRIPTS:
        assert f"`python examples/{name}.py`" in readme

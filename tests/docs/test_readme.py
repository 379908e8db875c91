"""README.md runs as written. Every fenced block is listed here with how it is checked: run by
a test below, run by another named test, or (deploying to AWS) why it cannot run on this
machine. A block added, removed or edited fails ``test_every_readme_block_is_accounted_for``
until this list says how the new text is checked."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", README, re.S)]


def digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def block(first_line: str) -> str:
    (found,) = [body for _, body in blocks() if body.startswith(first_line)]
    return found


# (language, first line of the block, how it is checked); DIGESTS pins each block's text
ACCOUNTED = [
    (
        "bash",
        "python3 -m venv .venv && .venv/bin/pip install -q -e . &&",
        "test_the_demo_command_runs",
    ),
    ("bash", "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'", ".ci/run runs it"),
    ("python", "import asyncio", "test_the_workflow_snippet_runs"),
    (
        "python",
        "# Hooks: fail, heartbeat, a recorded submitter",
        "tests/runtime/test_hook_outcomes.py, test_named_operations.py (the same calls)",
    ),
    ("python", "from typing import Annotated", "test_the_retry_and_condition_snippet_runs"),
    ("python", "# Fan-out: completion policies", "test_the_fan_out_snippet_runs"),
    ("python", "from datetime import timedelta", "test_the_testing_snippet_passes"),
    (
        "python",
        "# Instrumentation: a plugin of your own, and OpenTelemetry spans",
        "test_the_instrumentation_snippet_runs",
    ),
    ("bash", "pyworkflow -m myapp.workflows workflows list", "test_the_cli_block_runs"),
    ("bash", "pyworkflow init hello", "tests/package/test_scaffold.py (the same steps, literally)"),
    ("bash", "curl -s -X POST localhost:8787/runs", "tests/package/test_scaffold.py, tests/e2e"),
    ("bash", "sam build && sam deploy", "deploys to an AWS account: none reachable here"),
    ("python", "from pyworkflow.client import Client", "tests/client (Client.http on the API)"),
]
DIGESTS = {
    "python3 -m venv .venv && .venv/bin/pip install -q -e . &&": "3e3fc13b58c1",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'": "5a5d2501d6b8",
    "import asyncio": "a915f66f5ca1",
    "# Hooks: fail, heartbeat, a recorded submitter": "d6503613c20c",
    "from typing import Annotated": "2b26c705cdc0",
    "# Fan-out: completion policies": "f54b72b419be",
    "from datetime import timedelta": "8e719e2279fb",
    "# Instrumentation: a plugin of your own, and OpenTelemetry spans": "668ba44779e9",
    "pyworkflow -m myapp.workflows workflows list": "ffb9e51e28fe",
    "pyworkflow init hello": "37c9b5066dc7",
    "curl -s -X POST localhost:8787/runs": "1aad5aeed93d",
    "sam build && sam deploy": "34d764295be7",
    "from pyworkflow.client import Client": "06f47acb6b88",
}


def test_every_readme_block_is_accounted_for() -> None:
    firsts = [first for _, first, _ in ACCOUNTED]
    found = []
    for lang, body in blocks():
        match = [first for first in firsts if body.startswith(first)]
        found.append((lang, match[0] if match else body.splitlines()[0]))
    assert found == [(lang, first) for lang, first, _ in ACCOUNTED]
    # an edited block must be looked at again: its digest is pinned
    assert {first: digest(block(first)) for first in firsts} == DIGESTS


def test_no_link_leaves_the_repository() -> None:
    targets = re.findall(r"\]\(([^)]+)\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://", "#", "mailto:"))]
    missing = [t for t in local if not (REPO / t.split("#")[0]).exists()]
    assert missing == []
    assert "../" not in " ".join(local)


def test_the_test_command_states_its_needs() -> None:
    tests_part = README.split("Set up and run the tests", 1)[1][:1500]
    assert "Java 17" in tests_part and "npm" in tests_part and "chromium" in tests_part.lower()
    assert "source .venv/bin/activate" in README


def _user_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWORKFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PYWORKFLOW_DB"] = str(tmp_path / "readme.db")
    return env


def _python(
    cwd: Path, home: Path, *args: str, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    """Run this Python as a user would, in ``cwd``, with the user environment of ``home``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_user_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def myapp(tmp_path: Path) -> Path:
    """The README's workflow saved as myapp/workflows.py, as its testing snippet says."""
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "workflows.py").write_text(block("import asyncio"))
    return tmp_path


def test_the_demo_command_runs(tmp_path: Path) -> None:
    command = block("python3 -m venv .venv && .venv/bin/pip install -q -e . &&").strip()
    demo = command.split("&&")[-1].strip()
    assert demo == ".venv/bin/python examples/order_processing.py"  # the venv: .ci/run's
    done = _python(
        REPO,
        tmp_path,
        str(REPO / "examples" / "order_processing.py"),
        "--db",
        str(tmp_path / "demo.db"),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_retry_and_condition_snippet_runs(tmp_path: Path) -> None:
    (tmp_path / "ship.py").write_text(block("from typing import Annotated"))
    done = _python(tmp_path, tmp_path, "ship.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "suspended"  # waiting between two checks


def test_the_instrumentation_snippet_runs(tmp_path: Path) -> None:
    (tmp_path / "invoice.py").write_text(
        block("# Instrumentation: a plugin of your own, and OpenTelemetry spans")
    )
    done = subprocess.run(
        [sys.executable, "invoice.py"],
        cwd=tmp_path,
        env=_user_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == (
        "['execution invoice', 'step charge', 'step charge #1', 'workflow invoice']"
    )


def test_the_fan_out_snippet_runs(tmp_path: Path) -> None:
    (tmp_path / "quotes.py").write_text(block("# Fan-out: completion policies"))
    done = subprocess.run(
        [sys.executable, "quotes.py"],
        cwd=tmp_path,
        env=_user_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # two quotes were enough; slow-co's failure (25 %) was tolerated
    assert done.stdout.strip().splitlines()[-1] == "min_successful_reached: 10"


def test_the_workflow_snippet_runs(myapp: Path) -> None:
    done = _python(myapp, myapp, "myapp/workflows.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "suspended"


def test_the_testing_snippet_passes(myapp: Path) -> None:
    (myapp / "test_order.py").write_text(block("from datetime import timedelta"))
    done = _python(
        myapp,
        myapp,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_mode=auto",
        "test_order.py",
        timeout=300,
    )
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr


def test_the_cli_block_runs(myapp: Path) -> None:
    # the day-long sleep made one second, so that the worker line finds the run due
    workflows = myapp / "myapp" / "workflows.py"
    workflows.write_text(workflows.read_text().replace('sleep("1d")', 'sleep("1s")'))
    env = _user_env(myapp)
    run_id = None
    for line in block("pyworkflow -m myapp.workflows workflows list").strip().splitlines():
        command = line.split("  #")[0].strip()
        if run_id:
            command = command.replace("RUN_ID", run_id)
        if command.endswith(" worker"):
            time.sleep(1.5)  # the sleep is over: the worker must resume the run
            worker = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=myapp,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            time.sleep(4)
            worker.send_signal(signal.SIGINT)  # "Ctrl-C stops"
            out, _ = worker.communicate(timeout=60)
            assert worker.returncode == 0, out
            continue
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=myapp,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        if "workflows run order" in command:
            found = re.search(r"run_[0-9a-f]{16}", done.stdout)
            assert found, done.stdout
            run_id = found.group(0)
            assert "suspended" in done.stdout
    assert run_id is not None
    status = subprocess.run(
        ["bash", "-c", f"pyworkflow -o json runs status {run_id}"],
        cwd=myapp,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert '"status": "completed"' in status.stdout, status.stdout + status.stderr

"""``import pyworkflow`` is what every Lambda cold start pays: it must not load the testing kit,
the local stack, the Lambda handlers, the CLI or test tools."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = (
    "pyworkflow.testing",
    "pyworkflow.dev",
    "pyworkflow.handlers",
    "pyworkflow.cli",
    "pytest",
    "moto",
    "yaml",
)


def test_importing_pyworkflow_loads_no_testing_kit_dev_stack_or_cli():
    script = "import json, sys, pyworkflow; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []


def test_import_pyworkflow_loads_names_on_first_use():
    script = (
        "import json, sys, pyworkflow\n"
        "before = sorted(m for m in sys.modules if m.startswith('pyworkflow.'))\n"
        "from pyworkflow import workflow, step\n"
        "after = sorted(m for m in sys.modules if m.startswith('pyworkflow.'))\n"
        "print(json.dumps([before, after, callable(pyworkflow.start), 'start' in dir(pyworkflow)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    before, after, start_callable, listed = json.loads(done.stdout)
    assert before == []  # nothing of the engine, the runtime or storage yet
    assert "pyworkflow.core.workflow" in after and "pyworkflow.runtime.executor" not in after
    assert start_callable and listed


def test_a_run_without_tracing_never_loads_opentelemetry():
    script = (
        "import asyncio, json, sys, pyworkflow\n"
        "from pyworkflow.storage import InMemoryStorageBackend\n"
        "@pyworkflow.step\n"
        "async def one() -> int:\n"
        "    return 1\n"
        "@pyworkflow.workflow(name='no_tracing')\n"
        "async def flow() -> int:\n"
        "    return await one()\n"
        "pyworkflow.configure(storage=InMemoryStorageBackend())\n"
        "asyncio.run(pyworkflow.start(flow))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('opentelemetry'))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYWORKFLOW_OTEL"}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True, env=env)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []

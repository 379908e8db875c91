"""``import pyworkflow`` is what every Lambda cold start pays: it must not load the testing kit,
the local stack, the Lambda handlers, the CLI or test tools."""

import json
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

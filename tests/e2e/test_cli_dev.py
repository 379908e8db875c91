"""``pyworkflow dev`` as a user runs it: a process that prints where everything is, serves the
API, and stops cleanly on Ctrl-C (no traceback, nothing left running)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.e2e.conftest import Api, until

REPO = Path(__file__).resolve().parents[2]


def _default_sigint() -> None:
    # A background test runner may ignore SIGINT, and children inherit that: restore it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_pyworkflow_dev_prints_urls_serves_and_stops_on_ctrl_c(
    dynamodb_endpoint: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "PYWORKFLOW_DB": str(tmp_path / "cli.db"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pyworkflow.cli import main; main()",
            "-m",
            "tests.e2e.workflows",
            "dev",
            "--template",
            str(REPO / "template.yaml"),
            "--port",
            "0",
            "--dynamodb-endpoint",
            dynamodb_endpoint,
            "--param",
            "MaxReceiveCount=3",
            # every timer through EventBridge Scheduler (the README's quick way to see it)
            "--env",
            "PYWORKFLOW_SQS_DELAY_MAX_SECONDS=0",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True
    )
    reader.start()
    try:
        until(
            lambda: any("Ctrl-C stops" in line for line in lines) or process.poll() is not None,
            120,
            what="pyworkflow dev to come up",
        )
        assert process.poll() is None, "".join(lines) + process.stderr.read()
        text = "".join(lines)
        api_url = re.search(r"API:\s+(http://127\.0\.0\.1:\d+)", text)
        assert api_url is not None, text
        for label in (
            "DynamoDB:",
            "WorkflowTable:",
            "moto (SQS, Scheduler):",
            "WorkQueue:",
            "DeadLetterQueue:",
            "TimerScheduleGroup:",
            "curl -s -X POST",
        ):
            assert label in text, (label, text)
        assert dynamodb_endpoint in text
        assert f"the data is in your DynamoDB at {dynamodb_endpoint}" in text  # the banner
        api = Api(api_url.group(1))
        run_id = api.ok("POST", "/runs", {"workflow": "e2e_add", "args": [20, 1]}, expect=202)[
            "run_id"
        ]
        assert api.wait(run_id, "completed")["result"] == 22
        until(
            lambda: any(f"/runs/{run_id}" in line for line in lines), 10, what="the request lines"
        )
        # the machinery, one line each: the queue delivering the run's start to the worker
        # (printed once the invocation returns: possibly after the run shows completed)
        delivered = until(
            lambda: [line for line in lines if line.startswith("SQS") and run_id in line],
            10,
            what="the delivery line",
        )
        assert delivered and "(start) → WorkerFunction ok" in delivered[0], "".join(lines)
        # ... and a durable sleep: a Scheduler schedule fires into the work queue
        sleeper = api.ok("POST", "/runs", {"workflow": "e2e_sleeper", "args": [1]}, expect=202)
        api.wait(sleeper["run_id"], "completed")
        assert any(line.startswith("Scheduler") and "fired" in line for line in lines), lines
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    reader.join(timeout=10)
    stderr = process.stderr.read()
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Traceback" not in "".join(lines), stderr
    assert "stopped" in lines[-1]

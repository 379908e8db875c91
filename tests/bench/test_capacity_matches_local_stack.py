"""The capacity model's per-run counts equal the requests bench/aws_requests.py counts on the
local stack (DynamoDB Local + moto SQS/Scheduler, the worker fed by the SQS pump) for the same
workloads (10 steps; 2 steps around a sleep, by SQS and by Scheduler; 2 around a hook resumed
by name): every request by service and operation, the messages driven, and the index write
units DynamoDB Local reports. The bench runs in its own process: it patches aiobotocore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import capacity

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = {
    "ten_steps": capacity.Workload(steps=10),
    "sleep_scheduler": capacity.Workload(steps=2, sleeps=1, sleep_seconds=2, sqs_delay_max=0),
    "sleep_sqs_delay": capacity.Workload(steps=2, sleeps=1, sleep_seconds=2),
    "hook": capacity.Workload(steps=2, hooks=1),
}


def test_model_per_run_counts_equal_the_local_stack_counts() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "aws_requests.py"),
            "--runs",
            "3",
            "--other-runs",
            "2",
            "--json",
            "--only",
            *WORKLOADS,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counted = json.loads(done.stdout)
    assert set(counted) == set(WORKLOADS)
    for name, workload in WORKLOADS.items():
        model = capacity.run_cost(workload)
        got = counted[name]
        assert got["requests_per_run"] == {op: c for op, c in model.requests.items() if c}, name
        assert got["messages_per_run"] == model.messages, name
        assert got["wru_index_per_run"] == model.wru_index, name

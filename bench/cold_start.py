"""Cold start of each Lambda function: import time and first-invocation latency, each from a
fresh process (median of ``--runs``), and the modules that dominate the import.

    python bench/cold_start.py                      # the repository's code, this interpreter
    python bench/cold_start.py --runs 20 --build-dir .aws-sam/artifact/x86_64/WorkerFunction \\
        --python ~/.pyenv/versions/3.12.1/bin/python3.12     # a built artifact, in isolation

Each process imports the function's handler module and invokes it once with a trivial event:
the worker a batch of one message that is no pyworkflow message, the API
``GET /health``. Nothing reaches AWS. The goal the issue
sets: worker cold init (import) at most 250 ms on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HANDLERS = {
    "WorkerFunction": "pyworkflow.handlers.worker.handler",
    "ApiFunction": "pyworkflow.handlers.api.handler",
}
HEALTH = {
    "version": "2.0",
    "routeKey": "GET /health",
    "rawPath": "/health",
    "rawQueryString": "",
    "headers": {"host": "localhost"},
    "requestContext": {
        "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4"},
        "requestId": "cold-start",
        "routeKey": "GET /health",
        "stage": "$default",
    },
    "isBase64Encoded": False,
}
# the worker: one SQS record whose body is no pyworkflow message (refused without a call to AWS)
SQS_RECORD = {
    "messageId": "cold-start",
    "receiptHandle": "cold-start",
    "body": "{}",
    "attributes": {"ApproximateReceiveCount": "1"},
    "messageAttributes": {},
    "md5OfBody": "",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:cold-start",
    "awsRegion": "us-east-1",
}
EVENTS = {"WorkerFunction": {"Records": [SQS_RECORD]}, "ApiFunction": HEALTH}
ENV = {  # what the template gives the functions, pointed nowhere: nothing is called
    "PYWORKFLOW_STORAGE": "dynamodb",
    "PYWORKFLOW_TABLE": "cold-start",
    "PYWORKFLOW_QUEUE_URL": "http://127.0.0.1:9/queue/cold-start",
    "PYWORKFLOW_MODULE": "examples.order_processing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "cold",
    "AWS_SECRET_ACCESS_KEY": "start",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
}

PROBE = """
import json, sys, time
t0 = time.perf_counter()
import importlib
module, _, name = {handler!r}.rpartition(".")
handler = getattr(importlib.import_module(module), name)
t1 = time.perf_counter()

class Context:
    function_name = "cold-start"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold-start"
    log_group_name = "/aws/lambda/cold-start"
    log_stream_name = "cold-start"
    def get_remaining_time_in_millis(self):
        return 900000

error = None
try:
    handler(json.loads({event!r}), Context())
except Exception as exc:  # a figure, not a test: report it
    error = type(exc).__name__ + ": " + str(exc)[:200]
t2 = time.perf_counter()
print(json.dumps({{"import_ms": (t1 - t0) * 1000, "invoke_ms": (t2 - t1) * 1000,
                  "error": error}}))
"""


def probe(python: str, path: Path, handler: str, event: dict, isolated: bool) -> dict:
    env = {**ENV, "PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"}
    flags = ["-I", "-S"] if isolated else []
    code = PROBE.format(handler=handler, event=json.dumps(event))
    if isolated:  # -I ignores PYTHONPATH: put the build directory on the path by hand
        code = f"import sys; sys.path.insert(0, {str(path)!r})\n" + code
    done = subprocess.run(
        [python, *flags, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{handler}: the probe failed\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def dominant_imports(python: str, path: Path, handler: str, isolated: bool, top: int) -> list:
    """The top-level packages with the largest cumulative import time (python -X importtime)."""
    env = {**ENV, "PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"}
    flags = ["-I", "-S"] if isolated else []
    module = handler.rpartition(".")[0]
    code = f"import sys; sys.path.insert(0, {str(path)!r}); import {module}"
    done = subprocess.run(
        [python, *flags, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    totals: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if not cumulative.isdigit():
            continue
        root = name.strip().split(".")[0]
        if not name.startswith(" ") and name.strip() == root:
            totals[root] = max(totals.get(root, 0), int(cumulative))
        elif name.lstrip() == root or name.lstrip().count(".") == 0:
            totals[root] = max(totals.get(root, 0), int(cumulative))
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per function")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    parser.add_argument(
        "--build-dir",
        type=Path,
        help="a built function's directory (sam build output): measured with python -I -S",
    )
    parser.add_argument("--top", type=int, default=6, help="dominant packages to list")
    args = parser.parse_args()
    path = args.build_dir.resolve() if args.build_dir else REPO
    isolated = args.build_dir is not None
    print(f"cold start from {path} with {args.python}, median of {args.runs} fresh processes")
    for function, handler in HANDLERS.items():
        samples = [
            probe(args.python, path, handler, EVENTS[function], isolated) for _ in range(args.runs)
        ]
        imports = [s["import_ms"] for s in samples]
        invokes = [s["invoke_ms"] for s in samples]
        errors = {s["error"] for s in samples if s["error"]}
        print(
            f"{function:<15} import {statistics.median(imports):6.0f} ms "
            f"(min {min(imports):.0f}, max {max(imports):.0f})   first invoke "
            f"{statistics.median(invokes):6.1f} ms"
            + (f"   errors: {sorted(errors)}" if errors else "")
        )
        heavy = dominant_imports(args.python, path, handler, isolated, args.top)
        print("    dominated by: " + ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in heavy))


if __name__ == "__main__":
    main()

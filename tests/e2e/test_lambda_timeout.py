"""Under ``pyworkflow dev --lambda-runtime`` the worker's time comes from the real context that
awslambdaric builds from the deadline header, and the emulator kills an invocation at the
function's timeout: a run longer than one invocation must yield (re-enqueue itself) before it.
A stack of its own, from template.yaml with the worker's Timeout cut to 12 s (the worker yields
when less than 10 s are left)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyworkflow.dev.stack import LocalStack
from tests.e2e.conftest import MAX_RECEIVE_COUNT, Api, until
from tests.e2e.workflows import TOKENS_FOLDER

REPO = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT = 12


@pytest.fixture(scope="module")
def short_stack(
    dynamodb_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalStack, list[str]]]:
    text = (REPO / "template.yaml").read_text()
    worker = text.index("Handler: pyworkflow.handlers.worker.handler")
    cut, n = re.subn(r"Timeout: 60\n", f"Timeout: {WORKER_TIMEOUT}\n", text[worker:], count=1)
    assert n == 1
    folder = tmp_path_factory.mktemp("short-timeout")
    template = folder / "template.yaml"
    template.write_text(text[:worker] + cut)
    lines: list[str] = []
    local = LocalStack(
        template=template,
        module="tests.e2e.workflows",
        port=0,
        stack_name="e2e-timeout",
        dynamodb_endpoint=dynamodb_endpoint,
        tick_seconds=0.2,
        parameters={"VisibilityTimeout": 30, "MaxReceiveCount": MAX_RECEIVE_COUNT},
        check_parameter_ranges=False,
        lambda_runtime=True,
        on_event=lines.append,
        env={
            "PYWORKFLOW_SQS_DELAY_MAX_SECONDS": "0",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            TOKENS_FOLDER: str(folder),
        },
    )
    with local:
        yield local, lines


def test_the_worker_yields_before_the_emulated_timeout(
    short_stack: tuple[LocalStack, list[str]],
) -> None:
    stack, lines = short_stack
    api = Api(stack.api_url)
    run_id = api.ok("POST", "/runs", {"workflow": "e2e_slow_steps", "args": [5, 1.5]}, expect=202)[
        "run_id"
    ]
    run = api.wait(run_id, "completed", timeout=90)
    assert run["result"] == [0, 1, 2, 3, 4]
    # 7.5 s of steps, less than 2 s of them per invocation of a 12 s worker (it yields with
    # under 10 s left): several invocations, each ended by the worker itself (its wake-up comes
    # back at once, as a timer), none by the emulator's timeout. Each delivery's line is
    # printed once its invocation returns, possibly after the run shows completed.
    deliveries = until(
        lambda: (
            (d := [line for line in lines if line.startswith("SQS") and run_id in line])
            and len(d) >= 3
            and d
        ),
        10,
        what=f"3 deliveries of {run_id}: {lines}",
    )
    assert all("WorkerFunction ok" in line for line in deliveries), lines
    durations = [int(re.search(r"\((\d+) ms", line).group(1)) for line in deliveries]  # type: ignore[union-attr]
    assert max(durations) < WORKER_TIMEOUT * 1000, deliveries
    assert not any("timed out" in line for line in lines), lines

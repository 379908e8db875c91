"""One local stack (``pyworkflow.dev.stack.LocalStack``, what ``pyworkflow dev`` runs) for the e2e
tests: built from the repository's template.yaml, with DynamoDB Local started once, and every test
talking to it over real HTTP like any client.

Two settings make the tests fast without changing what they exercise:
``PYWORKFLOW_SQS_DELAY_MAX_SECONDS=0`` sends every sleep through an EventBridge Scheduler
schedule (fired by the stack's scheduler pump), and a 2 s visibility timeout (below the
template's MinValue, hence ``check_parameter_ranges=False``) makes redeliveries, and so the
dead-letter path, take seconds instead of minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pyworkflow.dev.stack import LocalStack
from pyworkflow.dev.template import TEMPLATE_PATH
from tests.e2e.workflows import TOKENS_FOLDER

VISIBILITY_TIMEOUT = 2
MAX_RECEIVE_COUNT = 3  # the worker fails a run on the 2nd failing delivery
# PYWORKFLOW_DEV_LAMBDA_RUNTIME=1: the functions run under awslambdaric, each in its own process
# (``pyworkflow dev --lambda-runtime``); CI runs the suite both ways
LAMBDA_RUNTIME = os.environ.get("PYWORKFLOW_DEV_LAMBDA_RUNTIME", "") not in ("", "0")
# PYWORKFLOW_DEV_IAM=1: the template's roles enforced by moto's IAM, each function signing as its
# role, DynamoDB served by moto (``pyworkflow dev --iam``, which implies --lambda-runtime)
IAM = os.environ.get("PYWORKFLOW_DEV_IAM", "") not in ("", "0")


@pytest.fixture(scope="package")
def dynamodb_endpoint() -> Iterator[str]:
    from pyworkflow.dev.dynamodb_local import DynamoDBLocalError, running

    try:
        with running() as ddb:
            yield ddb.endpoint_url
    except DynamoDBLocalError as exc:
        pytest.fail(str(exc), pytrace=False)


class SchedulerClock:
    """The stack's scheduler clock: real time plus ``offset``, so a test can make a recurring
    schedule's next minute come now. Only the scheduler pump reads it; the functions keep the
    real clock (a tick's ``fire_time`` tells the worker which occurrence it is)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


SCHEDULER_CLOCK = SchedulerClock()


@pytest.fixture(scope="package")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    local = LocalStack(
        # a scratch template (IAM mode: one statement removed must fail a test)
        template=os.environ.get("PYWORKFLOW_DEV_TEMPLATE") or TEMPLATE_PATH,
        module="tests.e2e.workflows",
        port=0,
        stack_name="e2e",
        dynamodb_endpoint=None if IAM else request.getfixturevalue("dynamodb_endpoint"),
        iam=IAM,
        tick_seconds=0.2,
        clock=SCHEDULER_CLOCK,
        parameters={"VisibilityTimeout": VISIBILITY_TIMEOUT, "MaxReceiveCount": MAX_RECEIVE_COUNT},
        check_parameter_ranges=False,
        lambda_runtime=LAMBDA_RUNTIME,
        env={
            "PYWORKFLOW_SQS_DELAY_MAX_SECONDS": "0",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            TOKENS_FOLDER: str(tmp_path_factory.mktemp("hook-tokens")),
        },
    )
    with local:
        yield local
    if IAM:  # which granted actions the suite used, which it never needed
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print("\n" + local.iam_report(), flush=True)


@dataclass
class Api:
    """A plain HTTP client of the stack's API (no SDK: the wire format is what is tested)."""

    url: str

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, (json.loads(raw) if raw else None)

    def ok(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        status, payload = self.call(method, path, body)
        assert status == expect, (method, path, status, payload)
        return payload

    def run(self, run_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/runs/{run_id}")

    def wait(self, run_id: str, *statuses: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll until the run's status is one of ``statuses`` (a bound, not a measurement:
        the stack fires timers and redelivers on its own clock)."""
        return until(
            lambda: (r := self.run(run_id))["status"] in statuses and r,
            timeout,
            what=f"run {run_id} to be {'/'.join(statuses)}",
        )


def until(probe: Callable[[], Any], timeout: float = 60.0, *, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack.api_url)

"""The template's roles are enforced, not only declared: with ``LocalStack(iam=True)`` a scratch
copy of template.yaml with one statement removed from a role's policy breaks the behaviour that
needs it (the e2e suite passes with the real template in this mode: CI's IAM step)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pyworkflow.dev import iam as iam_mode
from pyworkflow.dev.stack import LocalStack
from pyworkflow.dev.template import TEMPLATE_PATH, load_template
from pyworkflow.storage.offload import DEFAULT_THRESHOLD_BYTES
from tests.e2e.conftest import Api, until
from tests.e2e.workflows import TOKENS_FOLDER


def template_without(folder: Path, resource: str, statement: str) -> Path:
    """template.yaml with the statement ``statement`` (its Sid, or the name of an inline policy
    whose only statement it is) of ``resource``'s policies removed; an emptied policy goes."""
    data = load_template(TEMPLATE_PATH)
    props = data["Resources"][resource]["Properties"]
    documents = [("", props["PolicyDocument"])] if "PolicyDocument" in props else []
    documents += [(p["PolicyName"], p["PolicyDocument"]) for p in props.get("Policies", [])]
    removed = 0
    for name, document in documents:
        kept = [s for s in document["Statement"] if statement not in (s.get("Sid"), name)]
        removed += len(document["Statement"]) - len(kept)
        document["Statement"] = kept
    assert removed == 1, f"{resource} has no single statement {statement}"
    props["Policies"] = [p for p in props.get("Policies", []) if p["PolicyDocument"]["Statement"]]
    path = folder / "template.json"  # JSON is YAML: the stack reads it like template.yaml
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def scratch_stack(tmp_path: Path) -> Iterator[Any]:
    """Start an IAM-enforced stack from a scratch template (as the e2e stack, otherwise)."""
    stacks: list[LocalStack] = []

    def start(template: Path) -> LocalStack:
        tokens = tmp_path / "tokens"
        tokens.mkdir(exist_ok=True)
        stack = LocalStack(
            template=template,
            module="tests.e2e.workflows",
            port=0,
            stack_name="iam",
            iam=True,
            tick_seconds=0.2,
            parameters={"VisibilityTimeout": 2, "MaxReceiveCount": 3},
            check_parameter_ranges=False,
            env={
                "PYWORKFLOW_SQS_DELAY_MAX_SECONDS": "0",  # every sleep through Scheduler
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "CRITICAL",
                TOKENS_FOLDER: str(tokens),
            },
        )
        stacks.append(stack.start())
        return stack

    yield start
    for stack in stacks:
        stack.stop()


def _allowed(stack: LocalStack, role: str) -> set[str]:
    assert stack.iam_binding is not None
    seen = stack.iam_decisions or iam_mode.decisions(stack._iam_log)
    return set(iam_mode.usage(stack.iam_binding, seen)[role]["allowed"])


def _denied(stack: LocalStack, role: str) -> set[str]:
    assert stack.iam_binding is not None
    seen = stack.iam_decisions or iam_mode.decisions(stack._iam_log)
    return set(iam_mode.usage(stack.iam_binding, seen)[role]["denied"])


def test_a_worker_role_that_cannot_poll_the_queue_never_runs_a_started_run(
    scratch_stack: Any, tmp_path: Path
) -> None:
    stack = scratch_stack(template_without(tmp_path, "WorkerRole", "PollWorkQueue"))
    api = Api(stack.api_url)
    run_id = api.ok("POST", "/runs", {"workflow": "e2e_add", "args": [2, 3]}, expect=202)["run_id"]
    # Lambda's event source polls with the worker's role: refused, nothing is delivered.
    until(lambda: _denied(stack, "WorkerRole"), 30, what="the worker's poll to be refused")
    time.sleep(2)  # e2e_add completes in well under a second when delivered
    assert api.run(run_id)["status"] != "completed"
    assert _denied(stack, "WorkerRole") == {"sqs:ReceiveMessage"}
    assert _denied(stack, "ApiRole") == set()


def test_a_scheduler_role_that_cannot_send_to_the_queue_never_wakes_a_sleeping_run(
    scratch_stack: Any, tmp_path: Path
) -> None:
    stack = scratch_stack(template_without(tmp_path, "SchedulerRole", "SendToWorkQueue"))
    api = Api(stack.api_url)
    run_id = api.ok("POST", "/runs", {"workflow": "e2e_sleeper", "args": [1]}, expect=202)["run_id"]
    until(lambda: _denied(stack, "SchedulerRole"), 30, what="the timer's delivery to be refused")
    time.sleep(3)  # the sleep (1 s) is long over, and the timer has fired again and again
    assert api.run(run_id)["status"] == "suspended"
    assert _denied(stack, "SchedulerRole") == {"sqs:SendMessage"}
    assert _denied(stack, "WorkerRole") == set() and _denied(stack, "ApiRole") == set()


def _timer_schedules(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.info is not None
    group = stack.info.schedule_groups["TimerScheduleGroup"]
    scheduler = boto3.client(
        "scheduler", endpoint_url=stack.info.moto_endpoint, region_name=stack.info.region
    )
    return list(scheduler.list_schedules(GroupName=group)["Schedules"])


def test_a_runtime_that_may_not_pass_the_scheduler_role_never_schedules_a_sleep(
    scratch_stack: Any, tmp_path: Path
) -> None:
    stack = scratch_stack(template_without(tmp_path, "RuntimePolicy", "PassSchedulerRole"))
    api = Api(stack.api_url)
    body = {"workflow": "e2e_sleeper", "args": [3600]}
    run_id = api.ok("POST", "/runs", body, expect=202)["run_id"]
    # The sleep outlasts PYWORKFLOW_SQS_DELAY_MAX_SECONDS (0): its timer is a Scheduler schedule
    # delivering with SchedulerRole, which the worker hands over: refused without iam:PassRole.
    until(lambda: _denied(stack, "WorkerRole"), 30, what="the timer's schedule to be refused")
    time.sleep(1)
    assert _timer_schedules(stack) == []
    assert api.run(run_id)["status"] != "completed"
    assert _denied(stack, "WorkerRole") == {"iam:PassRole"}
    assert _denied(stack, "SchedulerRole") == set() and _denied(stack, "ApiRole") == set()


LARGE = "x" * (DEFAULT_THRESHOLD_BYTES + 10 * 1024)  # over the offload threshold (200 KB)


def test_a_large_payload_goes_through_the_bucket_with_the_template_s_roles(
    scratch_stack: Any,
) -> None:
    stack = scratch_stack(TEMPLATE_PATH)
    api = Api(stack.api_url)
    body = {"workflow": "e2e_large", "args": [LARGE]}
    run_id = api.ok("POST", "/runs", body, expect=202)["run_id"]
    assert api.wait(run_id, "completed")["result"] == len(LARGE)
    # The API wrote the argument; the worker read it and wrote the step's result.
    assert {"s3:PutObject"} <= _allowed(stack, "ApiRole")
    assert {"s3:GetObject", "s3:PutObject"} <= _allowed(stack, "WorkerRole")
    assert not any(_denied(stack, role) for role in ("ApiRole", "WorkerRole", "SchedulerRole"))


def test_a_runtime_that_may_not_use_the_payload_bucket_cannot_start_a_large_run(
    scratch_stack: Any, tmp_path: Path
) -> None:
    stack = scratch_stack(template_without(tmp_path, "RuntimePolicy", "Payloads"))
    api = Api(stack.api_url)
    status, _ = api.call("POST", "/runs", {"workflow": "e2e_large", "args": [LARGE]})
    assert status >= 500  # the argument could not be stored: no run
    assert _denied(stack, "ApiRole") == {"s3:PutObject"}
    assert _denied(stack, "WorkerRole") == set()


def _log_lines(stack: LocalStack, function: str) -> list[str]:
    """Every line of ``function``'s log group, read as the stack's services (not a role)."""
    assert stack.info is not None and stack.iam_binding is not None
    logs = boto3.client(
        "logs",
        endpoint_url=stack.info.moto_endpoint,
        region_name=stack.info.region,
        **stack.iam_binding.services.client_kwargs(),
    )
    group = stack.functions[function].ric.on_logs.group  # type: ignore[union-attr]
    return [
        event["message"]
        for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
        for event in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])[
            "events"
        ]
    ]


def test_each_function_s_output_reaches_its_log_group_with_the_template_s_roles(
    scratch_stack: Any,
) -> None:
    stack = scratch_stack(TEMPLATE_PATH)
    api = Api(stack.api_url)
    run_id = api.ok("POST", "/runs", {"workflow": "e2e_add", "args": [2, 3]}, expect=202)["run_id"]
    api.wait(run_id, "completed")
    for function, role in (("WorkerFunction", "WorkerRole"), ("ApiFunction", "ApiRole")):
        lines = until(lambda f=function: _log_lines(stack, f), 10, what=f"{function}'s logs")
        assert any(line.startswith("REPORT RequestId: ") for line in lines)
        assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= _allowed(stack, role)
        assert _denied(stack, role) == set()


@pytest.mark.parametrize(
    ("role", "function", "other"),
    [("WorkerRole", "WorkerFunction", "ApiRole"), ("ApiRole", "ApiFunction", "WorkerRole")],
)
def test_a_function_role_that_cannot_write_its_logs_loses_them_visibly(
    scratch_stack: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    role: str,
    function: str,
    other: str,
) -> None:
    stack = scratch_stack(template_without(tmp_path, role, "Logs"))
    api = Api(stack.api_url)
    run_id = api.ok("POST", "/runs", {"workflow": "e2e_add", "args": [2, 3]}, expect=202)["run_id"]
    api.wait(run_id, "completed")  # Lambda runs the function all the same; its logs are lost
    until(lambda: _denied(stack, role), 10, what=f"{function}'s logs to be refused")
    assert _denied(stack, role) == {"logs:CreateLogStream"}
    assert _log_lines(stack, function) == []
    assert any(f"{function}: its logs are dropped" in r.getMessage() for r in caplog.records)
    assert _denied(stack, other) == set()

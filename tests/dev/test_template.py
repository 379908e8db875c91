"""What the code relies on in ``template.yaml``, checked without SAM or a network.

``python -m infra.lint_template`` checks that the template is valid CloudFormation; these tests
check that it is *this project's* stack: handlers that exist, environment variables the code
reads, the rights the code's AWS calls need and no more, the public and the authenticated
routes. Each check returns its problems, so the tests below also show that a broken copy of
the template is caught.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pyworkflow import config
from pyworkflow.dev.iam_server import SQS_BATCH_ACTIONS
from pyworkflow.dev.template import load_template

REPO = Path(__file__).resolve().parents[2]
Template = dict[str, Any]


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(REPO / "template.yaml")


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == kind}


def props(template: Template, logical_id: str) -> dict[str, Any]:
    return dict(template["Resources"][logical_id].get("Properties") or {})


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def environment(template: Template) -> dict[str, Any]:
    """Every function environment variable (Globals and per function)."""
    env = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in resources(template, "AWS::Serverless::Function").values():
        env.update(((function["Properties"].get("Environment") or {}).get("Variables")) or {})
    return env


def statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    """(where, statement) for every IAM policy statement the template writes."""
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties") or {}
        documents = []
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(properties["PolicyDocument"])
        for policy in properties.get("Policies") or []:
            if isinstance(policy, dict) and "PolicyDocument" in policy:
                documents.append(policy["PolicyDocument"])
            elif isinstance(policy, dict) and "Statement" in policy:  # SAM inline statements
                documents.append(policy)
        for document in documents:
            found += [(logical_id, s) for s in as_list(document["Statement"])]
    return found


def allowed_actions(template: Template, sid: str) -> set[str]:
    return {a for _, s in statements(template) if s.get("Sid") == sid for a in as_list(s["Action"])}


# --- the checks ---------------------------------------------------------------------------
def handler_problems(template: Template) -> list[str]:
    problems = []
    code_root = REPO / template["Globals"]["Function"]["CodeUri"]
    for logical_id, function in resources(template, "AWS::Serverless::Function").items():
        handler = function["Properties"]["Handler"]
        module_name, _, attribute = handler.rpartition(".")
        module_file = code_root / (module_name.replace(".", "/") + ".py")
        if not module_file.is_file():
            problems.append(f"{logical_id}: {module_file} does not exist")
            continue
        module = importlib.import_module(module_name)
        if not callable(getattr(module, attribute, None)):
            problems.append(f"{logical_id}: {handler} is not a callable")
    return problems


def env_name_problems(template: Template) -> list[str]:
    known = {v for k, v in vars(config).items() if k.startswith("ENV_") and isinstance(v, str)}
    return [
        f"{name} is not an ENV_* constant of pyworkflow/config.py"
        for name in environment(template)
        if name.startswith("PYWORKFLOW_") and name not in known
    ]


def scheduler_role_problems(template: Template) -> list[str]:
    role = props(template, "SchedulerRole")
    trust = as_list(role["AssumeRolePolicyDocument"]["Statement"])
    problems = []
    if [s["Principal"] for s in trust] != [{"Service": "scheduler.amazonaws.com"}]:
        problems.append(f"SchedulerRole must be assumed by Scheduler only: {trust}")
    granted = [
        s for p in role.get("Policies") or [] for s in as_list(p["PolicyDocument"]["Statement"])
    ]
    if role.get("ManagedPolicyArns") or granted != [
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["WorkQueue", "Arn"]},
        }
    ]:
        problems.append(f"SchedulerRole may only send to WorkQueue: {granted}")
    return problems


def wildcard_problems(template: Template) -> list[str]:
    """No Action "*" / "service:*" and no Resource "*" anywhere, and no SAM-generated role
    (SAM attaches AWS managed policies with Resource "*")."""
    problems = []
    for where, statement in statements(template):
        for action in as_list(statement.get("Action", [])):
            if action == "*" or str(action).endswith(":*"):
                problems.append(f"{where}: Action {action!r}")
        for resource in as_list(statement.get("Resource", [])):
            if resource == "*":
                problems.append(f"{where}: Resource '*' ({statement.get('Action')})")
    for logical_id, function in resources(template, "AWS::Serverless::Function").items():
        if "Role" not in function["Properties"] or "Policies" in function["Properties"]:
            problems.append(f"{logical_id}: needs its own Role (SAM's has managed '*' policies)")
    return problems


def route_problems(template: Template) -> list[str]:
    """POST /hooks/{token} and GET /health are public; everything else is behind the API's
    authorizer: AWS_IAM by default, the JWT authorizer when AuthMode is JWT."""
    problems = []
    api = props(template, "HttpApi")
    if api["Auth"] != {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}:
        problems.append(f"HttpApi must default to AWS_IAM: {api['Auth']}")
    public = set()
    for function in resources(template, "AWS::Serverless::Function").values():
        for name, event in (function["Properties"].get("Events") or {}).items():
            if event["Type"] != "HttpApi":
                continue
            route = f"{event['Properties']['Method']} {event['Properties']['Path']}"
            if event["Properties"].get("ApiId") != {"Ref": "HttpApi"}:
                problems.append(f"{name}: {route} is not on HttpApi")
            authorizer = (event["Properties"].get("Auth") or {}).get("Authorizer")
            if authorizer == "NONE":
                public.add(route)
            elif authorizer is not None:
                problems.append(f"{name}: {route} names its own authorizer {authorizer}")
    if public != {"POST /hooks/{token}", "GET /health"}:
        problems.append(f"public routes are {sorted(public)}")
    body = api["DefinitionBody"]
    for path, item in body["paths"].items():
        for method, operation in item.items():
            security = operation.get("security")
            expected = {"Fn::If": ["UseJwt", [{"JwtAuthorizer": []}], [{"AWS_IAM": []}]]}
            if security != expected:
                problems.append(f"{method} {path}: security {security} is not AWS_IAM/JWT")
    scheme = body["components"]["securitySchemes"]["JwtAuthorizer"]["Fn::If"]
    if scheme[0] != "UseJwt" or scheme[1]["x-amazon-apigateway-authorizer"]["type"] != "jwt":
        problems.append(f"JwtAuthorizer must be a JWT authorizer when UseJwt: {scheme}")
    if template["Conditions"]["UseJwt"] != {"Fn::Equals": [{"Ref": "AuthMode"}, "JWT"]}:
        problems.append("UseJwt must mean AuthMode == JWT")
    return problems


def worker_event_problems(template: Template) -> list[str]:
    events = props(template, "WorkerFunction")["Events"]
    problems = []
    queue = [e["Properties"] for e in events.values() if e["Type"] == "SQS"]
    if len(queue) != 1:
        return [f"WorkerFunction needs one SQS event, has {len(queue)}"]
    if queue[0]["Queue"] != {"Fn::GetAtt": ["WorkQueue", "Arn"]}:
        problems.append("the SQS event must read WorkQueue")
    if "ReportBatchItemFailures" not in queue[0].get("FunctionResponseTypes", []):
        problems.append("the SQS event needs FunctionResponseTypes [ReportBatchItemFailures]")
    if queue[0].get("ScalingConfig") != {"MaximumConcurrency": {"Ref": "WorkerMaxConcurrency"}}:
        problems.append("the SQS event needs ScalingConfig.MaximumConcurrency")
    sweeps = [e["Properties"] for e in events.values() if e["Type"] == "Schedule"]
    if [json.loads(s["Input"]) for s in sweeps] != [{"pyworkflow": "sweep"}]:
        problems.append(f"one Schedule event with Input {{'pyworkflow': 'sweep'}}: {sweeps}")
    return problems


# boto3 method -> IAM actions it needs (transactions need the per-item actions they contain)
DYNAMODB_ACTIONS = {
    "get_item": {"GetItem"},
    "put_item": {"PutItem"},
    "update_item": {"UpdateItem"},
    "delete_item": {"DeleteItem"},
    "query": {"Query"},
    "scan": {"Scan"},
    "batch_get_item": {"BatchGetItem"},
    "batch_write_item": {"BatchWriteItem"},
    "transact_get_items": {"GetItem"},
    "transact_write_items": {"PutItem", "UpdateItem", "ConditionCheckItem"},
}
_DYNAMODB_CALL = re.compile(rf"\.({'|'.join(DYNAMODB_ACTIONS)})\(")
_CLIENT_CALL = re.compile(r"\b(scheduler|sqs)\.([a-z_]+)\(")


def runtime_rights_problems(template: Template) -> list[str]:
    """Every DynamoDB / Scheduler / SQS call in pyworkflow/ (by the method names the code uses
    on its clients) is allowed by RuntimePolicy; pyworkflow/dev (the local stack, which plays
    SQS and the Scheduler itself) never runs in Lambda."""
    dev = REPO / "pyworkflow" / "dev"
    # `pyworkflow db rekey` scans the table with the operator's credentials, never a function's
    operator_tools = {REPO / "pyworkflow" / "storage" / "dynamodb_migrate.py"}
    sources = [
        p
        for p in REPO.glob("pyworkflow/**/*.py")
        if dev not in p.parents and p not in operator_tools
    ]
    needed: set[str] = set()
    for source in sources:
        text = source.read_text()
        if "dynamodb" in source.name:
            for call in _DYNAMODB_CALL.findall(text):
                needed |= {f"dynamodb:{a}" for a in DYNAMODB_ACTIONS[call]}
        for service, call in _CLIENT_CALL.findall(text):
            action = f"{service}:{''.join(p.title() for p in call.split('_'))}"
            needed.add(SQS_BATCH_ACTIONS.get(action, action))  # a batch is its single action
    granted = (
        allowed_actions(template, "Table")
        | allowed_actions(template, "WakeUps")
        | allowed_actions(template, "TimerSchedules")
    )
    return [
        f"the code calls {a}, RuntimePolicy does not allow it" for a in sorted(needed - granted)
    ]


def receive_count_problems(template: Template) -> list[str]:
    """PYWORKFLOW_MAX_RECEIVES is MaxReceiveCount - 1 for every allowed MaxReceiveCount."""
    select = environment(template)["PYWORKFLOW_MAX_RECEIVES"]["Fn::Select"]
    parameter = template["Parameters"]["MaxReceiveCount"]
    if select[0] != {"Ref": "MaxReceiveCount"}:
        return ["PYWORKFLOW_MAX_RECEIVES must index by MaxReceiveCount"]
    return [
        f"MaxReceiveCount={n} gives PYWORKFLOW_MAX_RECEIVES="
        f"{select[1][n] if n < len(select[1]) else 'nothing'}"
        for n in range(int(parameter["MinValue"]), int(parameter["MaxValue"]) + 1)
        if n >= len(select[1]) or select[1][n] != str(n - 1)
    ]


# --- the tests ----------------------------------------------------------------------------
def test_functions_are_python312_on_arm64(template: Template) -> None:
    function = template["Globals"]["Function"]
    assert (function["Runtime"], function["Architectures"]) == ("python3.12", ["arm64"])
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_handlers_exist_and_are_importable(template: Template) -> None:
    assert handler_problems(template) == []
    handlers = {
        f["Properties"]["Handler"]
        for f in resources(template, "AWS::Serverless::Function").values()
    }
    assert handlers == {"pyworkflow.handlers.worker.handler", "pyworkflow.handlers.api.handler"}


def test_a_handler_that_does_not_exist_is_caught(template: Template) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["ApiFunction"]["Properties"]["Handler"] = "pyworkflow.handlers.nope.handler"
    missing = REPO / "pyworkflow/handlers/nope.py"
    assert handler_problems(broken) == [f"ApiFunction: {missing} does not exist"]


def test_every_pyworkflow_variable_is_named_in_config(template: Template) -> None:
    assert env_name_problems(template) == []
    broken = copy.deepcopy(template)
    broken["Globals"]["Function"]["Environment"]["Variables"]["PYWORKFLOW_TABEL"] = "x"
    assert env_name_problems(broken) == [
        "PYWORKFLOW_TABEL is not an ENV_* constant of pyworkflow/config.py"
    ]


def test_scheduler_role_only_sends_to_the_work_queue(template: Template) -> None:
    assert scheduler_role_problems(template) == []
    broken = copy.deepcopy(template)
    policy = broken["Resources"]["SchedulerRole"]["Properties"]["Policies"][0]
    policy["PolicyDocument"]["Statement"][0]["Action"] = ["sqs:SendMessage", "sqs:DeleteMessage"]
    assert len(scheduler_role_problems(broken)) == 1


def test_no_wildcard_actions_or_resources(template: Template) -> None:
    assert statements(template), "the template writes no IAM statements at all?"
    assert wildcard_problems(template) == []
    broken = copy.deepcopy(template)
    broken["Resources"]["RuntimePolicy"]["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "*", "Resource": "*"}
    )
    assert wildcard_problems(broken) == [
        "RuntimePolicy: Action '*'",
        "RuntimePolicy: Resource '*' (*)",
    ]


def test_hooks_route_is_public_and_the_rest_needs_auth(template: Template) -> None:
    assert route_problems(template) == []
    broken = copy.deepcopy(template)
    runs = broken["Resources"]["ApiFunction"]["Properties"]["Events"]["Api"]["Properties"]
    runs["Auth"] = {"Authorizer": "NONE"}
    assert route_problems(broken) == [
        "public routes are ['ANY /{proxy+}', 'GET /health', 'POST /hooks/{token}']"
    ]


def test_worker_reads_the_queue_with_partial_failures_and_sweeps(template: Template) -> None:
    assert worker_event_problems(template) == []
    broken = copy.deepcopy(template)
    events = broken["Resources"]["WorkerFunction"]["Properties"]["Events"]
    del events["WorkQueue"]["Properties"]["FunctionResponseTypes"]
    events["Sweep"]["Properties"]["Input"] = '{"pyworkflow": "sweeep"}'
    assert len(worker_event_problems(broken)) == 2


def test_runtime_policy_allows_every_call_the_code_makes(template: Template) -> None:
    assert runtime_rights_problems(template) == []
    broken = copy.deepcopy(template)
    table = broken["Resources"]["RuntimePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    table["Action"].remove("dynamodb:Query")
    assert runtime_rights_problems(broken) == [
        "the code calls dynamodb:Query, RuntimePolicy does not allow it"
    ]


def test_max_receives_is_one_below_the_redrive_count(template: Template) -> None:
    assert receive_count_problems(template) == []
    broken = copy.deepcopy(template)
    broken["Parameters"]["MaxReceiveCount"]["MaxValue"] = 21
    assert receive_count_problems(broken) == [
        "MaxReceiveCount=21 gives PYWORKFLOW_MAX_RECEIVES=nothing"
    ]
    queue = props(template, "WorkQueue")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }


def test_lease_outlives_the_worker_invocation(template: Template) -> None:
    """Lambda refuses an SQS event source whose queue's visibility timeout is shorter than the
    function's timeout; the visibility timeout is also a run's lease."""
    assert props(template, "WorkQueue")["VisibilityTimeout"] == {"Ref": "VisibilityTimeout"}
    smallest = template["Parameters"]["VisibilityTimeout"]["MinValue"]
    assert props(template, "WorkerFunction")["Timeout"] <= smallest


def test_contract_parameters_and_outputs(template: Template) -> None:
    parameters = template["Parameters"]
    assert {
        name: parameters[name].get("Default")
        for name in (
            "WorkflowModule",
            "AuthMode",
            "RetentionDays",
            "WorkerMaxConcurrency",
            "VisibilityTimeout",
            "MaxReceiveCount",
        )
    } == {
        "WorkflowModule": "examples.order_processing",
        "AuthMode": "IAM",
        "RetentionDays": 30,
        "WorkerMaxConcurrency": 10,
        "VisibilityTimeout": 360,
        "MaxReceiveCount": 6,
    }
    assert {"JwtIssuer", "JwtAudience"} <= set(parameters)
    assert {"ApiUrl", "WorkflowTableName", "WorkQueueUrl", "DeadLetterQueueUrl"} <= set(
        template["Outputs"]
    )


def test_requirements_txt_matches_pyproject() -> None:
    """`sam build` installs requirements.txt; it must be pyproject.toml's dependencies."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    lines = (REPO / "requirements.txt").read_text().splitlines()
    requirements = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert sorted(requirements) == sorted(pyproject["project"]["dependencies"])

"""``LocalStack(iam=True)`` (``pyworkflow dev --iam``): the template's roles and policies, enforced.

The template's ``AWS::IAM::Role`` resources (their inline ``Policies`` and the template's own
``AWS::IAM::ManagedPolicy`` resources they attach, resolved to this stack's table, queues, group,
bucket and log groups) are created in moto's IAM; each role is assumed once (STS), as Lambda and
Scheduler do, and whoever acts for the role gets those session credentials:

* each function's process (``--lambda-runtime``: one environment per function) — its
  ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` are its role's;
* a function's SQS event source (Lambda polls with the function's role);
* the Scheduler pump's delivery of a schedule, with the role its target names (``RoleArn``).

Everything else — the stack's own bookkeeping as the AWS services (listing schedules, moving
messages), you and the tests — signs as one IAM user allowed everything, so only the roles are
under test. moto then enforces (``/moto-api/reset-auth``) and logs every decision
(``pyworkflow.dev.iam_server``), from which ``report`` tells which granted actions were used.

What is checked (moto 5.2 and ``pyworkflow.dev.iam_server``): each request's signature, and
its actions against the role's policies, with the resource AWS would check: the queue, the
object, the table or index, the schedule (moto itself names no DynamoDB or Scheduler resource:
the server does); a transaction item by item and an SQS batch as its single action, as AWS
does. Not checked: conditions, trust policies (the stack assumes the roles as the services
would) and ``iam:PassRole`` (moto's Scheduler never asks for it).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyworkflow.dev.moto_server import MotoServer
from pyworkflow.dev.template import ACCOUNT_ID, StackTemplate, TemplateError, references

# the IAM user the stack's own machinery (and the tests) sign with: the AWS services themselves
SERVICE_USER = "pyworkflow-dev-services"
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@contextlib.contextmanager
def start_server() -> Iterator[tuple[MotoServer, Path]]:
    """An enforcing-capable moto server in its own process, and the file its decisions go to."""
    folder = Path(tempfile.mkdtemp(prefix="pyworkflow-iam-"))
    decisions = folder / "decisions.jsonl"
    decisions.touch()
    process = subprocess.Popen(
        [sys.executable, "-m", "pyworkflow.dev.iam_server", str(decisions)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "INITIAL_NO_AUTH_ACTION_COUNT"},
    )
    try:
        if process.stdout is None:  # stdout=PIPE above: only a broken Popen gets here
            raise RuntimeError("moto (IAM) was started without a pipe for its endpoint")
        endpoint = process.stdout.readline().strip()
        if not endpoint.startswith("http"):
            raise RuntimeError(f"moto (IAM) did not start (exit status {process.poll()})")
        yield MotoServer(endpoint_url=endpoint, server=process), decisions
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(OSError):
            decisions.unlink()
            folder.rmdir()


@dataclass(frozen=True)
class Grant:
    role: str  # logical id
    policy: str
    sid: str
    action: str
    resources: tuple[str, ...]


@dataclass
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def env(self) -> dict[str, str]:
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    def client_kwargs(self) -> dict[str, str | None]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


@dataclass
class IamBinding:
    """The roles as created in moto, the credentials bound to each, and what each grants."""

    endpoint: str
    services: Credentials  # the IAM user the stack's machinery signs with
    roles: dict[str, Credentials]  # role logical id -> its session's credentials
    role_names: dict[str, str]  # role logical id -> role name
    role_arns: dict[str, str]  # role ARN -> role logical id
    function_roles: dict[str, str]  # function logical id -> role logical id
    grants: list[Grant] = field(default_factory=list)

    def function_env(self, function: str) -> dict[str, str]:
        return self.roles[self.function_roles[function]].env()

    def enforce(self) -> None:
        """From now on moto checks every request's signature and permissions."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"content-type": "text/plain"},  # a form body would be parsed away
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def forget_default_session() -> None:
    """boto3's default session keeps the credentials it first found: the next ``boto3.client``
    reads the environment again."""
    import boto3

    boto3.DEFAULT_SESSION = None


def record_log_groups(tpl: StackTemplate, region: str) -> None:
    """Log groups exist only on AWS, but the roles' Logs statements name them."""
    for logical_id in tpl.resources("AWS::Logs::LogGroup"):
        given = tpl.resolver.resolve(tpl.properties(logical_id)).get("LogGroupName")
        name = tpl.physical_name(logical_id, given)
        arn = f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{name}"
        tpl.set_physical(logical_id, Ref=name, Arn=f"{arn}:*")


def create_log_groups(tpl: StackTemplate, endpoint: str, region: str) -> None:
    """The template's log groups in moto's CloudWatch Logs (the stack creates them)."""
    import boto3

    logs = boto3.client("logs", endpoint_url=endpoint, region_name=region)
    for logical_id in tpl.resources("AWS::Logs::LogGroup"):
        logs.create_log_group(logGroupName=tpl.resolver.physical[logical_id]["Ref"])


def function_log_group(tpl: StackTemplate, function: str, name: str) -> str:
    """The log group Lambda writes ``function``'s output to: its LoggingConfig's, or
    /aws/lambda/<function name>."""
    config = tpl.resolver.resolve(tpl.properties(function).get("LoggingConfig") or {})
    return str(config.get("LogGroup") or f"/aws/lambda/{name}")


class LogDelivery:
    """Hands a function's output to CloudWatch Logs as Lambda does, with the function's role:
    logs:CreateLogStream on a stream's first write, logs:PutLogEvents per invocation. Lambda
    drops what its role may not write, silently; here a refusal is a warning (once per action)
    and a DENIED line of the report."""

    def __init__(
        self,
        *,
        function: str,
        group: str,
        credentials: Credentials,
        endpoint: str,
        region: str,
        warn: Any,
    ) -> None:
        import boto3

        self.function = function
        self.group = group
        self.warn = warn
        self.client = boto3.session.Session().client(
            "logs", endpoint_url=endpoint, region_name=region, **credentials.client_kwargs()
        )
        self.streams: set[str] = set()
        self.warned: set[str] = set()

    def __call__(self, stream: str, lines: list[str]) -> None:
        from botocore.exceptions import ClientError

        now = int(time.time() * 1000)
        try:
            if stream not in self.streams:
                self.client.create_log_stream(logGroupName=self.group, logStreamName=stream)
                self.streams.add(stream)
            self.client.put_log_events(
                logGroupName=self.group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": line} for line in lines],
            )
        except ClientError as exc:
            operation = exc.operation_name
            if operation not in self.warned:
                self.warned.add(operation)
                self.warn(
                    f"{self.function}: its logs are dropped, as Lambda drops them: "
                    f"{operation} on {self.group} refused "
                    f"({exc.response.get('Error', {}).get('Code')})"
                )


def role_policies(tpl: StackTemplate) -> dict[str, dict[str, dict[str, Any]]]:
    """Role logical id -> policy name -> resolved document: its inline ``Policies`` and the
    template's ``AWS::IAM::ManagedPolicy`` resources it attaches (an AWS managed policy has no
    local copy: an error)."""
    managed = tpl.resources("AWS::IAM::ManagedPolicy")
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for role in tpl.role_ids():
        props = tpl.properties(role)
        policies: dict[str, dict[str, Any]] = {}
        for policy in props.get("Policies") or []:
            policies[str(policy["PolicyName"])] = tpl.resolver.resolve(policy["PolicyDocument"])
        for arn in props.get("ManagedPolicyArns") or []:
            refs = [r for r in references(arn) if r in managed]
            if len(refs) != 1:
                raise TemplateError(f"{role}: managed policy {arn!r} is not one of the template's")
            document = tpl.properties(refs[0])["PolicyDocument"]
            policies[refs[0]] = tpl.resolver.resolve(document)
        found[role] = policies
    return found


def function_roles(tpl: StackTemplate) -> dict[str, str]:
    roles = set(tpl.role_ids())
    found = {}
    for function in tpl.function_ids():
        refs = references(tpl.properties(function).get("Role")) & roles
        if len(refs) != 1:
            raise TemplateError(
                f"{function}: --iam needs its Role to be one of the template's roles "
                "(!GetAtt SomeRole.Arn), not one SAM generates"
            )
        found[function] = refs.pop()
    return found


def bind(tpl: StackTemplate, endpoint: str, *, region: str) -> IamBinding:
    """Create the template's roles in moto's IAM, assume each, and the services' user. Runs
    before enforcement (``IamBinding.enforce``), with any credentials."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name=region)
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region)
    record_log_groups(tpl, region)
    binding = IamBinding(
        endpoint=endpoint,
        services=Credentials("", ""),
        roles={},
        role_names={},
        role_arns={},
        function_roles=function_roles(tpl),
    )
    for role, policies in role_policies(tpl).items():
        props = tpl.properties(role)
        name = tpl.physical_name(role, tpl.resolver.resolve(props.get("RoleName")))
        trust = tpl.resolver.resolve(props["AssumeRolePolicyDocument"])
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
            "Arn"
        ]
        for policy_name, document in policies.items():
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy_name,
                PolicyDocument=json.dumps(document),
            )
            for number, statement in enumerate(_listed(document["Statement"]), 1):
                if statement.get("Effect") != "Allow":
                    continue
                for action in _listed(statement.get("Action", [])):
                    binding.grants.append(
                        Grant(
                            role=role,
                            policy=policy_name,
                            sid=str(statement.get("Sid") or f"#{number}"),
                            action=action,
                            resources=tuple(str(r) for r in _listed(statement.get("Resource"))),
                        )
                    )
        session = sts.assume_role(RoleArn=arn, RoleSessionName=name)["Credentials"]
        binding.roles[role] = Credentials(
            session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"]
        )
        binding.role_names[role] = name
        binding.role_arns[arn] = role
    iam.create_user(UserName=SERVICE_USER)
    iam.put_user_policy(
        UserName=SERVICE_USER, PolicyName="AllowAll", PolicyDocument=json.dumps(_ALLOW_ALL)
    )
    key = iam.create_access_key(UserName=SERVICE_USER)["AccessKey"]
    binding.services = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    return binding


# --- the least-privilege report ---------------------------------------------------------------
def decisions(path: Path) -> list[dict[str, Any]]:
    with contextlib.suppress(FileNotFoundError):
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    return []


def role_of(principal: str, binding: IamBinding) -> str | None:
    """The role logical id of an assumed-role ARN (``...:assumed-role/<name>/<session>``)."""
    if ":assumed-role/" not in principal:
        return None
    name = principal.split(":assumed-role/", 1)[1].split("/", 1)[0]
    return next((r for r, n in binding.role_names.items() if n == name), None)


def usage(binding: IamBinding, seen: list[dict[str, Any]]) -> dict[str, dict[str, Counter[str]]]:
    """Role logical id -> {"allowed": action counts, "denied": action counts}."""
    found: dict[str, dict[str, Counter[str]]] = {
        role: {"allowed": Counter(), "denied": Counter()} for role in binding.role_names
    }
    for decision in seen:
        role = role_of(decision["principal"], binding)
        if role is None:
            continue
        action = decision["action"]
        found[role]["allowed" if decision["allowed"] else "denied"][action] += 1
    return found


def unused_grants(binding: IamBinding, seen: list[dict[str, Any]]) -> list[Grant]:
    used = usage(binding, seen)
    return [g for g in binding.grants if not used[g.role]["allowed"].get(g.action)]


def report(binding: IamBinding, seen: list[dict[str, Any]]) -> str:
    """Per role: the actions used (how often), the actions denied, the granted ones never used."""
    used = usage(binding, seen)
    users = {r: sorted(f for f, role in binding.function_roles.items() if role == r) for r in used}
    lines = ["least privilege: what each role was granted and what the run used (moto's log)"]
    for role, counts in used.items():
        who = f" ({', '.join(users[role])})" if users[role] else ""
        lines.append(f"  {role}{who}")
        allowed = ", ".join(f"{a} x{n}" for a, n in sorted(counts["allowed"].items()))
        lines.append(f"    used:    {allowed or '-'}")
        if counts["denied"]:
            denied = ", ".join(f"{a} x{n}" for a, n in sorted(counts["denied"].items()))
            lines.append(f"    DENIED:  {denied}")
        unused = [
            g for g in binding.grants if g.role == role and not counts["allowed"].get(g.action)
        ]
        for grant in unused:
            lines.append(f"    unused:  {grant.action} ({grant.policy}/{grant.sid})")
    return "\n".join(lines)


@dataclass
class RoleClients:
    """aioboto3 SQS clients signing as a role: a function's (its event source polls with it)
    and, by role ARN, what Scheduler delivers a schedule with (None: no IAM, one client)."""

    functions: dict[str, Any] = field(default_factory=dict)
    senders: dict[str, Any] | None = None


async def role_clients(
    stack: contextlib.AsyncExitStack[Any], session: Any, binding: IamBinding | None, region: str
) -> RoleClients:
    if binding is None:
        return RoleClients()
    by_role = {}
    for role, credentials in binding.roles.items():
        by_role[role] = await stack.enter_async_context(
            session.client(
                "sqs",
                endpoint_url=binding.endpoint,
                region_name=region,
                **credentials.client_kwargs(),
            )
        )
    return RoleClients(
        functions={f: by_role[r] for f, r in binding.function_roles.items()},
        senders={arn: by_role[role] for arn, role in binding.role_arns.items()},
    )

"""A moto server in a process of its own, for ``LocalStack(iam=True)``: moto's IAM enforcement
is a process-wide switch (``moto.settings.INITIAL_NO_AUTH_ACTION_COUNT``) over process-wide
state, so an enforcing server must not share a process with other stacks' moto (the tests').

Each request is authorized as AWS authorizes it (``authorizations``: DynamoDB and Scheduler
requests on their table, index or schedule, where moto checks ``*``; a transaction item by item;
an SQS batch as its single action; a schedule's create or update also as iam:PassRole on its
target's role), and every decision is appended to a JSON-lines file (principal ARN, action,
resource, allowed), which ``pyworkflow.dev.iam`` reads for its least-privilege report.
Enforcement starts off; the stack turns it on (moto's ``/moto-api/reset-auth``) once it has
created the roles.

    python -m pyworkflow.dev.iam_server DECISIONS.jsonl   # prints the endpoint, serves until
                                                          # its stdin closes
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any
from urllib.parse import parse_qs, unquote

# AWS authorizes a transaction item by item, as the item's own action; moto checks the
# operation's name. And an SQS batch as its single action.
_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_PASSES_ROLE = ("CreateSchedule", "UpdateSchedule")
SQS_BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def authorizations(
    action: str, resource: str, *, region: str, account: str, path: str, body: bytes
) -> list[tuple[str, str]]:
    """The (action, resource) pairs AWS authorizes a request by. moto names the resource of an
    SQS (the queue) or S3 (the object) request, but ``*`` for DynamoDB, Scheduler and CloudWatch
    Logs (a log stream's writes): their
    resource comes from the request here, so a statement scoped to a table, an index or a
    schedule group is checked as such."""
    service, operation = action.split(":", 1)
    if service == "sqs":
        return [(SQS_BATCH_ACTIONS.get(action, action), resource)]
    if service not in ("dynamodb", "scheduler", "logs"):
        return [(action, resource)]
    data = json.loads(body or b"{}") if body[:1] in (b"{", b"") else {}
    if service == "logs":
        if "logStreamName" not in data:
            return [(action, resource)]
        group, stream = data.get("logGroupName", ""), data["logStreamName"]
        return [(action, f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}")]
    if service == "scheduler":
        route, _, query = path.partition("?")
        if "/schedules/" not in route:
            return [(action, resource)]
        name = unquote(route.rstrip("/").rsplit("/", 1)[1])
        group = data.get("GroupName") or parse_qs(query).get("groupName", ["default"])[0]
        pairs = [(action, f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}")]
        # Handing Scheduler a role to deliver with is passing it: AWS refuses the schedule
        # unless the caller may iam:PassRole that role (moto does not check it).
        role = (data.get("Target") or {}).get("RoleArn")
        if operation in _PASSES_ROLE and role:
            pairs.append(("iam:PassRole", role))
        return pairs

    def table(name: str, index: str | None = None) -> str:
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if operation == "TransactWriteItems":
        return [
            (f"dynamodb:{_TRANSACT_WRITE[kind]}", table(spec["TableName"]))
            for item in data.get("TransactItems", [])
            for kind, spec in item.items()
        ]
    if operation == "TransactGetItems":
        return [("dynamodb:GetItem", table(i["Get"]["TableName"])) for i in data["TransactItems"]]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(action, table(name)) for name in data.get("RequestItems", {})]
    if "TableName" in data:
        return [(action, table(data["TableName"], data.get("IndexName")))]
    return [(action, resource)]


def _record_decisions(path: str) -> None:
    """Check what AWS would (``authorizations``) and log each decision."""
    from moto.iam import access_control

    lock = threading.Lock()
    out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open while serving
    check = access_control.IAMRequestBase.check_action_permitted

    def checked(self: Any, resource: str) -> None:
        asked = self._action
        pairs = authorizations(
            asked,
            resource,
            region=self._region,
            account=self.account_id,
            path=self._path,
            body=self._body or b"",
        )
        try:
            for action, target in pairs:
                self._action = action
                allowed = False
                try:
                    check(self, target)
                    allowed = True
                finally:
                    line = {
                        "principal": self._access_key.arn,
                        "action": action,
                        "resource": target,
                        "allowed": allowed,
                    }
                    with lock:
                        out.write(json.dumps(line) + "\n")
        finally:
            self._action = asked

    access_control.IAMRequestBase.check_action_permitted = checked  # type: ignore[method-assign]

    # moto re-signs a body-less request (a REST GET or DELETE: Scheduler's ListSchedules,
    # GetSchedule...) with its query parameters as a form body, so a correct signature fails
    # to match; the client signed an empty body.
    build = access_control.IAMRequestBase._create_aws_request

    def built(self: Any) -> Any:
        request = build(self)
        if not self._body and self._method in ("GET", "DELETE", "HEAD"):
            request.data = b""
        return request

    access_control.IAMRequestBase._create_aws_request = built  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _record_decisions(argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    try:
        sys.stdin.read()  # until the stack closes our stdin (or goes away)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

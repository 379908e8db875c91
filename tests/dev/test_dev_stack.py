"""The local stack's parts on their own: template reading, the HTTP API shim's payload v2, the
SQS event source's Lambda semantics, the scheduler pump, and a whole ``LocalStack`` built from
``tests/dev/stack.yaml`` with stub handlers (moto stands in for DynamoDB here: no Java)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pyworkflow.dev import moto_server
from pyworkflow.dev.http_api import HttpApiServer, Route, build_event, match_route, to_http
from pyworkflow.dev.pumps import SqsEventSource, failed_ids, receive_batch
from pyworkflow.dev.scheduler_pump import ExpressionError, SchedulerPump, aws_cron, next_fire
from pyworkflow.dev.stack import LocalStack
from pyworkflow.dev.template import (
    TEMPLATE_PATH,
    HttpRouteSpec,
    Resolver,
    StackTemplate,
    TemplateError,
    UnresolvedError,
    load_template,
)
from tests.dev import stubs

STACK_YAML = Path(__file__).with_name("stack.yaml")
REGION = "us-east-1"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def moto() -> Iterator[moto_server.MotoServer]:
    with moto_server.start() as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def clients(moto: moto_server.MotoServer, aws_env: None) -> AsyncIterator[tuple[Any, Any]]:
    import aioboto3

    session = aioboto3.Session()
    async with (
        session.client("sqs", endpoint_url=moto.endpoint_url) as sqs,
        session.client("scheduler", endpoint_url=moto.endpoint_url) as scheduler,
    ):
        yield sqs, scheduler


# --- template ---------------------------------------------------------------------------------
def test_short_tags_become_long_forms(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("""
Resources:
  A:
    Type: X
    Properties:
      Ref: !Ref P
      Att: !GetAtt Q.Arn
      AttList: !GetAtt [Q, Arn]
      Sub: !Sub "${AWS::Region}-${P}-${Q.Arn}-${!Literal}"
      SubVars: !Sub ["${x}/${P}", {x: !Ref P}]
      If: !If [C, first, second]
      Join: !Join ["-", [a, !Ref P]]
      Select: !Select [1, !Split [",", "a,b,c"]]
Conditions:
  C: !Not [!Equals [!Ref P, other]]
""")
    data = load_template(path)
    props = data["Resources"]["A"]["Properties"]
    assert props["Ref"] == {"Ref": "P"}
    assert props["Att"] == props["AttList"] == {"Fn::GetAtt": ["Q", "Arn"]}
    resolver = Resolver(
        data, {"P": "p"}, region="eu-west-1", stack_name="s", physical={"Q": {"Arn": "arn:q"}}
    )
    assert resolver.resolve(props) == {
        "Ref": "p",
        "Att": "arn:q",
        "AttList": "arn:q",
        "Sub": "eu-west-1-p-arn:q-${Literal}",
        "SubVars": "p/p",
        "If": "first",
        "Join": "a-p",
        "Select": "b",
    }
    with pytest.raises(UnresolvedError, match="Missing"):
        resolver.resolve({"Ref": "Missing"})


def test_parameters_defaults_overrides_and_checks() -> None:
    tpl = StackTemplate.load(STACK_YAML, parameters={"VisibilityTimeout": "7"})
    assert tpl.parameters["VisibilityTimeout"] == 7
    assert tpl.parameters["MaxReceiveCount"] == 6
    assert tpl.parameters["AuthMode"] == "IAM"
    with pytest.raises(TemplateError, match="unknown parameter"):
        StackTemplate.load(STACK_YAML, parameters={"Nope": "1"})
    with pytest.raises(TemplateError, match="not in"):
        StackTemplate.load(STACK_YAML, parameters={"AuthMode": "BASIC"})
    with pytest.raises(TemplateError, match="outside"):
        StackTemplate.load(STACK_YAML, parameters={"MaxReceiveCount": 1})


def _physical(tpl: StackTemplate) -> None:
    """What LocalStack records once the resources exist."""
    tpl.set_physical("WorkflowTable", Ref="tbl", Arn="arn:aws:dynamodb:::table/tbl")
    tpl.set_physical(
        "DeadLetterQueue", Ref="http://q/dlq", Arn="arn:aws:sqs:us-east-1:1:dlq", QueueName="dlq"
    )
    tpl.set_physical("WorkQueue", Ref="http://q/work", Arn="arn:aws:sqs:us-east-1:1:work")
    tpl.set_physical("TimerScheduleGroup", Ref="timers")
    tpl.set_physical("SchedulerRole", Arn="arn:aws:iam::1:role/r")
    tpl.set_physical("HttpApi", Ref="api1")


def test_resources_described_from_the_template() -> None:
    tpl = StackTemplate.load(
        STACK_YAML, parameters={"VisibilityTimeout": 9, "MaxReceiveCount": 3}, stack_name="s1"
    )
    assert tpl.queue_ids() == ["DeadLetterQueue", "WorkQueue"]  # the DLQ's ARN comes first
    _physical(tpl)
    work = tpl.queue_spec("WorkQueue")
    assert work.name == "s1-WorkQueue"
    assert work.visibility_timeout == 9
    assert work.dead_letter_target == "DeadLetterQueue"
    assert work.max_receive_count == 3
    assert json.loads(work.attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq",
        "maxReceiveCount": 3,
    }
    assert work.attributes["SqsManagedSseEnabled"] == "true"
    table = tpl.table_args("WorkflowTable")
    assert table["TableName"] == "s1-WorkflowTable"
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["GlobalSecondaryIndexes"][0]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["st"],
    }
    assert "SSESpecification" not in table  # no KMS locally
    assert tpl.table_ttl("WorkflowTable") == {"Enabled": True, "AttributeName": "ttl"}
    assert tpl.schedule_groups() == {"TimerScheduleGroup": "s1-TimerScheduleGroup"}

    worker = tpl.function_spec("WorkerFunction")
    assert worker.handler == "tests.dev.stubs.worker"
    assert worker.timeout == 30  # the function's own, over Globals' 60
    assert worker.environment["PYWORKFLOW_QUEUE_URL"] == "http://q/work"
    assert worker.environment["PYWORKFLOW_VISIBILITY_TIMEOUT"] == "9"
    assert worker.environment["PYWORKFLOW_SCHEDULER_ROLE_ARN"] == "arn:aws:iam::1:role/r"
    assert worker.environment["STUB_GREETING"] == "hello from s1 in us-east-1"
    (sqs,) = worker.sqs_events
    assert (sqs.queue, sqs.batch_size, sqs.report_batch_item_failures, sqs.maximum_concurrency) == (
        "WorkQueue",
        3,
        True,
        2,
    )
    (sweep,) = worker.schedule_events
    assert (sweep.expression, sweep.input) == ("rate(1 minute)", {"pyworkflow": "sweep"})

    api = tpl.function_spec("ApiFunction")
    assert {(r.method, r.path, r.authorizer) for r in api.http_routes} == {
        ("ANY", "/{proxy+}", "AWS_IAM"),
        ("POST", "/hooks/{token}", "NONE"),
    }
    outputs = tpl.outputs()
    assert outputs["WorkQueueUrl"] == "http://q/work"
    assert outputs["ApiUrl"] == "https://api1.execute-api.us-east-1.amazonaws.com/"


def test_jwt_auth_mode_switches_the_default_authorizer() -> None:
    tpl = StackTemplate.load(STACK_YAML, parameters={"AuthMode": "JWT"})
    _physical(tpl)
    routes = {r.path: r.authorizer for r in tpl.function_spec("ApiFunction").http_routes}
    assert routes == {"/{proxy+}": "JwtAuthorizer", "/hooks/{token}": "NONE"}


def _physical_repo(tpl: StackTemplate) -> None:
    """Values for everything the repository template's functions refer to."""
    _physical(tpl)
    for logical_id in tpl.data["Resources"]:
        tpl.resolver.physical.setdefault(logical_id, {}).setdefault("Ref", logical_id)
        tpl.resolver.physical[logical_id].setdefault("Arn", f"arn:{logical_id}")


def test_the_repository_template_describes_the_contract_resources() -> None:
    """The real template.yaml, read the way ``pyworkflow dev`` reads it."""
    tpl = StackTemplate.load(TEMPLATE_PATH, stack_name="repo")
    assert tpl.table_ids() == ["WorkflowTable"]
    assert set(tpl.queue_ids()) == {"WorkQueue", "DeadLetterQueue"}
    assert tpl.queue_ids().index("DeadLetterQueue") < tpl.queue_ids().index("WorkQueue")
    assert list(tpl.schedule_groups()) == ["TimerScheduleGroup"]
    assert set(tpl.function_ids()) >= {"WorkerFunction", "ApiFunction"}
    args = tpl.table_args("WorkflowTable")
    from pyworkflow.storage.dynamodb_items import table_definition

    _physical_repo(tpl)
    worker = tpl.function_spec("WorkerFunction")
    assert worker.handler == "pyworkflow.handlers.worker.handler"
    (sqs,) = worker.sqs_events
    assert (sqs.queue, sqs.batch_size, sqs.report_batch_item_failures) == ("WorkQueue", 10, True)
    assert [(e.expression, e.input) for e in worker.schedule_events] == [
        ("rate(5 minutes)", {"pyworkflow": "sweep"})
    ]
    env = worker.environment
    assert env["PYWORKFLOW_MAX_RECEIVES"] == str(int(tpl.parameters["MaxReceiveCount"]) - 1)
    assert env["PYWORKFLOW_QUEUE_URL"] == "http://q/work"
    api = tpl.function_spec("ApiFunction")
    assert api.handler == "pyworkflow.handlers.api.handler"
    routes = {(r.method, r.path): r.authorizer for r in api.http_routes}
    assert routes[("ANY", "/{proxy+}")] == "AWS_IAM"
    assert routes[("POST", "/hooks/{token}")] == "NONE"
    jwt = StackTemplate.load(
        TEMPLATE_PATH,
        parameters={"AuthMode": "JWT", "JwtIssuer": "https://issuer.example", "JwtAudience": "a"},
    )
    _physical_repo(jwt)
    routes = {
        (r.method, r.path): r.authorizer for r in jwt.function_spec("ApiFunction").http_routes
    }
    assert routes[("ANY", "/{proxy+}")] == "JwtAuthorizer"
    assert routes[("POST", "/hooks/{token}")] == "NONE"
    expected = table_definition(args["TableName"])
    assert sorted(map(str, args["AttributeDefinitions"])) == sorted(
        map(str, expected["AttributeDefinitions"])
    )
    assert {g["IndexName"]: g["KeySchema"] for g in args["GlobalSecondaryIndexes"]} == {
        g["IndexName"]: g["KeySchema"] for g in expected["GlobalSecondaryIndexes"]
    }


# --- HTTP API payload v2 ----------------------------------------------------------------------
def _routes(*specs: tuple[str, str, str]) -> list[Route]:
    return [
        Route.compile(HttpRouteSpec(name=f"r{i}", method=m, path=p, api="HttpApi", authorizer=a))
        for i, (m, p, a) in enumerate(specs)
    ]


def test_route_matching_prefers_the_most_specific() -> None:
    routes = _routes(
        ("ANY", "/{proxy+}", "AWS_IAM"),
        ("POST", "/hooks/{token}", "NONE"),
        ("GET", "/health", "NONE"),
        ("ANY", "/runs/{id}", "AWS_IAM"),
    )
    route, params = match_route(routes, "POST", "/hooks/whk_1") or (None, {})
    assert route is not None and route.key == "POST /hooks/{token}"
    assert params == {"token": "whk_1"}
    route, params = match_route(routes, "GET", "/hooks/whk_1") or (None, {})
    assert route is not None and route.key == "ANY /{proxy+}"
    assert params == {"proxy": "hooks/whk_1"}
    route, _ = match_route(routes, "GET", "/health") or (None, {})
    assert route is not None and route.key == "GET /health"
    route, params = match_route(routes, "GET", "/runs/r1") or (None, {})
    assert route is not None and params == {"id": "r1"}
    assert match_route(_routes(("GET", "/health", "NONE")), "GET", "/other") is None


def test_the_viewer_forms_take_the_api_authorizer_like_the_json_routes() -> None:
    """``POST /ui/runs/{id}/cancel`` and ``POST /ui/runs/{id}/hooks/{name}`` reach the API as
    its JSON twins and ``GET /ui`` do: through the authenticated catch-all (IAM, or the JWT
    authorizer), never a public route, in the repository's template."""
    for parameters in (
        {},
        {"AuthMode": "JWT", "JwtIssuer": "https://i.example", "JwtAudience": "a"},
    ):
        tpl = StackTemplate.load(TEMPLATE_PATH, parameters=parameters)
        _physical_repo(tpl)
        routes = [Route.compile(r) for r in tpl.function_spec("ApiFunction").http_routes]
        requests = [
            ("GET", "/ui"),
            ("GET", "/ui/runs/r1"),
            ("POST", "/ui/runs/r1/cancel"),
            ("POST", "/ui/runs/r1/hooks/approval"),
            ("POST", "/runs/r1/cancel"),
            ("POST", "/runs/r1/hooks/approval"),
        ]
        chosen = set()
        for method, path in requests:
            found = match_route(routes, method, path)
            assert found is not None, (method, path)
            chosen.add((found[0].key, found[0].spec.authorizer))
        assert len(chosen) == 1
        ((key, authorizer),) = chosen
        assert authorizer in ("AWS_IAM", "JwtAuthorizer"), key


def test_event_shape_follows_payload_format_2() -> None:
    route, params = match_route(
        _routes(("POST", "/hooks/{token}", "NONE")), "POST", "/hooks/t1"
    ) or (None, {})
    event = build_event(
        method="POST",
        raw_path="/hooks/t1",
        raw_query="a=1&a=2&b=",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Cookie", "c1=v1; c2=v2"),
        ],
        body=b'{"ok": true}',
        source_ip="127.0.0.9",
        route=route,
        path_parameters=params,
        now=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /hooks/{token}"
    assert event["rawPath"] == "/hooks/t1" and event["rawQueryString"] == "a=1&a=2&b="
    assert event["headers"] == {"content-type": "application/json", "x-multi": "1,2"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["pathParameters"] == {"token": "t1"}
    assert event["body"] == '{"ok": true}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "POST",
        "path": "/hooks/t1",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.9",
        "userAgent": "",
    }
    assert ctx["stage"] == "$default" and ctx["requestId"]
    assert ctx["timeEpoch"] == int(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp() * 1000)
    assert ctx["time"] == "02/Jan/2030:03:04:05 +0000"
    assert "authorizer" not in ctx  # an unauthenticated route

    binary = build_event(
        method="PUT",
        raw_path="/x",
        raw_query="",
        source_ip="1.2.3.4",
        headers=[("content-type", "application/octet-stream")],
        body=b"\x00\xff",
    )
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xff"
    assert "queryStringParameters" not in binary and "cookies" not in binary
    assert "pathParameters" not in binary and "body" not in build_event(
        method="GET", raw_path="/", raw_query="", headers=[], body=b"", source_ip="x"
    )


def test_responses_are_read_as_api_gateway_reads_them() -> None:
    bare = to_http({"a": 1})
    assert (bare.status, bare.body) == (200, b'{"a": 1}')
    assert ("content-type", "application/json") in bare.headers
    binary = to_http(
        {"statusCode": 201, "isBase64Encoded": True, "body": "AAE=", "cookies": ["x=1"]}
    )
    assert (binary.status, binary.body) == (201, b"\x00\x01")
    assert ("set-cookie", "x=1") in binary.headers
    assert to_http({"statusCode": 204}).body == b""


def _request(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def test_http_api_server_over_real_http() -> None:
    from pyworkflow.dev.pumps import FakeLambdaContext

    stubs.clear()
    server = HttpApiServer(
        handler=stubs.api,
        port=0,
        context_factory=lambda: FakeLambdaContext(remaining=12),
        routes=[
            HttpRouteSpec(
                name="a", method="ANY", path="/{proxy+}", api="HttpApi", authorizer="AWS_IAM"
            ),
            HttpRouteSpec(
                name="h", method="POST", path="/hooks/{token}", api="HttpApi", authorizer="NONE"
            ),
        ],
    )
    await server.start()
    try:
        assert server.port != 0
        status, headers, body = await asyncio.to_thread(
            _request,
            f"{server.url}/hooks/whk_9?x=1",
            method="POST",
            data=b'{"p": 1}',
            headers={"Content-Type": "application/json", "Cookie": "k=v"},
        )
        assert status == 200
        assert headers["x-function"] == "pyworkflow-worker"
        echoed = json.loads(body)
        event = echoed["event"]
        assert echoed["remaining_ms"] == 12000
        assert event["routeKey"] == "POST /hooks/{token}"
        assert event["pathParameters"] == {"token": "whk_9"}
        assert event["queryStringParameters"] == {"x": "1"}
        assert event["cookies"] == ["k=v"]
        assert json.loads(event["body"]) == {"p": 1}
        assert event["headers"]["host"].startswith("127.0.0.1:")
        status, _, _ = await asyncio.to_thread(_request, f"{server.url}/status/404")
        assert status == 404
        assert stubs.EVENTS[-1]["requestContext"]["authorizer"]["iam"]["accountId"]
        status, _, body = await asyncio.to_thread(_request, f"{server.url}/raw")
        assert (status, json.loads(body)) == (200, {"plain": True})
        status, headers, body = await asyncio.to_thread(_request, f"{server.url}/binary")
        assert body == b"\x00\x01\x02\xff"
        assert headers["Content-Type"] == "application/octet-stream"
        status, _, body = await asyncio.to_thread(_request, f"{server.url}/boom")
        assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    finally:
        await server.stop()


async def test_http_api_without_a_matching_route_is_404() -> None:
    server = HttpApiServer(
        handler=stubs.api,
        port=0,
        routes=[HttpRouteSpec(name="h", method="GET", path="/health", api=None, authorizer="NONE")],
    )
    await server.start()
    try:
        status, _, body = await asyncio.to_thread(_request, f"{server.url}/runs")
        assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    finally:
        await server.stop()


# --- SQS event source -------------------------------------------------------------------------
def test_failed_ids_follow_lambda_rules() -> None:
    batch = [{"MessageId": "a"}, {"MessageId": "b"}]
    assert failed_ids(
        batch, {"batchItemFailures": [{"itemIdentifier": "a"}]}, report_batch_item_failures=True
    ) == {"a"}
    assert failed_ids(batch, None, report_batch_item_failures=True) == set()
    assert failed_ids(batch, {"batchItemFailures": []}, report_batch_item_failures=True) == set()
    for bad in ([{"itemIdentifier": "zzz"}], [{"itemIdentifier": ""}], [{}], "nope"):
        assert failed_ids(batch, {"batchItemFailures": bad}, report_batch_item_failures=True) == {
            "a",
            "b",
        }
    # Without ReportBatchItemFailures a normal return deletes the whole batch.
    assert (
        failed_ids(
            batch,
            {"batchItemFailures": [{"itemIdentifier": "a"}]},
            report_batch_item_failures=False,
        )
        == set()
    )


async def _queue(sqs: Any, visibility: int, max_receive_count: int) -> tuple[str, str, str]:
    n = next(_names)
    dlq = (await sqs.create_queue(QueueName=f"src-dlq-{n}"))["QueueUrl"]
    dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    url = (
        await sqs.create_queue(
            QueueName=f"src-{n}",
            Attributes={
                "VisibilityTimeout": str(visibility),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
                ),
            },
        )
    )["QueueUrl"]
    arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"][
        "QueueArn"
    ]
    return url, arn, dlq


def _source(sqs: Any, url: str, arn: str, **kwargs: Any) -> SqsEventSource:
    async def invoke(event: dict[str, Any], context: Any) -> Any:
        return await asyncio.to_thread(stubs.worker, event, context)

    return SqsEventSource(
        invoke=invoke, sqs=sqs, queue_url=url, queue_arn=arn, wait_seconds=0, **kwargs
    )


async def test_batches_partial_failures_and_visibility(clients: tuple[Any, Any]) -> None:
    sqs, _ = clients
    stubs.clear()
    url, arn, _ = await _queue(sqs, visibility=1, max_receive_count=5)
    for body in ("ok", "fail", "ok", "ok", "ok"):
        await sqs.send_message(QueueUrl=url, MessageBody=body)
    source = _source(sqs, url, arn, batch_size=3)
    delivered = 0
    while n := await source.poll_once():
        delivered += n
        assert n <= 3  # the template's batch size
    assert delivered == 5
    assert source.stats.deleted == 4 and source.stats.failed == 1
    records = [r for e in stubs.EVENTS for r in e["Records"]]
    assert {r["eventSource"] for r in records} == {"aws:sqs"}
    assert {r["eventSourceARN"] for r in records} == {arn}
    # The failed one is invisible until the visibility timeout, then delivered again.
    assert await receive_batch(sqs, url, wait_seconds=0) == []
    again = await receive_batch(sqs, url, wait_seconds=3)
    assert [m["Body"] for m in again] == ["fail"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


async def test_crash_or_unreadable_response_fails_the_whole_batch(clients: tuple[Any, Any]) -> None:
    sqs, _ = clients
    for poison in ("crash", "bad-report"):
        url, arn, _ = await _queue(sqs, visibility=30, max_receive_count=5)
        for body in ("ok", poison):
            await sqs.send_message(QueueUrl=url, MessageBody=body)
        source = _source(sqs, url, arn, batch_size=10)
        assert await source.poll_once() == 2
        assert (source.stats.deleted, source.stats.failed) == (0, 2)


async def test_redrive_to_the_dlq_after_max_receive_count(clients: tuple[Any, Any]) -> None:
    sqs, _ = clients
    url, arn, dlq = await _queue(sqs, visibility=0, max_receive_count=3)
    await sqs.send_message(QueueUrl=url, MessageBody="fail")
    source = _source(sqs, url, arn)
    deliveries = 0
    for _ in range(10):
        deliveries += await source.poll_once()
    assert deliveries == 3  # then SQS (moto) moved it to the dead-letter queue
    dead = await receive_batch(sqs, dlq, wait_seconds=0)
    assert [m["Body"] for m in dead] == ["fail"]


async def test_run_stops_promptly(clients: tuple[Any, Any]) -> None:
    sqs, _ = clients
    url, arn, _ = await _queue(sqs, visibility=30, max_receive_count=5)
    source = _source(sqs, url, arn)
    source.wait_seconds = 20  # a long poll in progress is abandoned
    stop = asyncio.Event()
    task = asyncio.ensure_future(source.run(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)


# --- scheduler --------------------------------------------------------------------------------
def test_expressions() -> None:
    t0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)  # a Tuesday
    assert next_fire("at(2030-01-01T12:00:30)", t0) == t0 + timedelta(seconds=30)
    assert next_fire("at(2030-01-01T12:00:30)", t0 + timedelta(minutes=1)) is None
    assert next_fire("rate(5 minutes)", t0, anchor=t0) == t0 + timedelta(minutes=5)
    assert next_fire("rate(5 minutes)", t0 + timedelta(minutes=7), anchor=t0) == t0 + timedelta(
        minutes=10
    )
    assert next_fire("rate(1 day)", t0, anchor=t0) == t0 + timedelta(days=1)
    # AWS numbers days of the week from Sunday = 1: 2 is Monday.
    assert next_fire("cron(0 9 ? * 2 *)", t0) == datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    assert next_fire("cron(0 9 ? * MON-FRI *)", t0) == datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    assert next_fire("cron(30 12 1 * ? 2031)", t0) == datetime(2031, 1, 1, 12, 30, tzinfo=UTC)
    assert next_fire("cron(0 9 * * ? *)", t0, timezone="Europe/Paris") == datetime(
        2030, 1, 2, 8, 0, tzinfo=UTC
    )
    assert next_fire("cron(0 9 * * ? 2020)", t0) is None
    assert aws_cron("cron(0 9 ? * 1#2 *)") == ("0 9 * * 0#2", "*")
    for bad in ("rate(1 minutes)", "rate(2 minute)", "cron(0 9 * *)", "cron(0 9 1W * ? *)"):
        with pytest.raises(ExpressionError):
            next_fire(bad, t0, anchor=t0)


async def _target_queue(sqs: Any) -> tuple[str, str]:
    url = (await sqs.create_queue(QueueName=f"target-{next(_names)}"))["QueueUrl"]
    arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"][
        "QueueArn"
    ]
    return url, arn


async def _bodies(sqs: Any, url: str) -> list[str]:
    return [m["Body"] for m in await receive_batch(sqs, url, wait_seconds=0)]


async def test_one_time_schedules_and_action_after_completion(clients: tuple[Any, Any]) -> None:
    sqs, scheduler = clients
    url, arn = await _target_queue(sqs)
    group = f"g{next(_names)}"
    await scheduler.create_schedule_group(Name=group)
    now = datetime.now(UTC).replace(microsecond=0)
    for name, action in (("del", "DELETE"), ("keep", "NONE")):
        await scheduler.create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression=f"at({now:%Y-%m-%dT%H:%M:%S})",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion=action,
            Target={
                "Arn": arn,
                "RoleArn": "arn:aws:iam::123456789012:role/r",
                "Input": json.dumps({"name": name}),
            },
        )
    await scheduler.create_schedule(
        Name="later",
        GroupName=group,
        ScheduleExpression=f"at({now + timedelta(hours=1):%Y-%m-%dT%H:%M:%S})",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn, "RoleArn": "arn:aws:iam::123456789012:role/r", "Input": "{}"},
    )
    pump = SchedulerPump(scheduler=scheduler, sqs=sqs, groups=[group])
    fired = await pump.tick(now + timedelta(seconds=1))
    assert sorted(f.name for f in fired) == ["del", "keep"]
    assert sorted(await _bodies(sqs, url)) == ['{"name": "del"}', '{"name": "keep"}']
    names = sorted(
        s["Name"] for s in (await scheduler.list_schedules(GroupName=group))["Schedules"]
    )
    assert names == ["keep", "later"]  # DELETE removed its schedule; NONE keeps it ...
    assert await pump.tick(now + timedelta(seconds=2)) == []  # ... and never fires again
    fired = await pump.tick(now + timedelta(hours=1, seconds=1))
    assert [f.name for f in fired] == ["later"]


async def test_recurring_schedules_state_and_end_date(clients: tuple[Any, Any]) -> None:
    sqs, scheduler = clients
    url, arn = await _target_queue(sqs)
    group = f"g{next(_names)}"
    await scheduler.create_schedule_group(Name=group)
    target = {
        "Arn": arn,
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "Input": "tick <aws.scheduler.scheduled-time>",
    }
    await scheduler.create_schedule(
        Name="every-minute",
        GroupName=group,
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    await scheduler.create_schedule(
        Name="off",
        GroupName=group,
        ScheduleExpression="rate(1 minute)",
        State="DISABLED",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    created = datetime.now(UTC)
    pump = SchedulerPump(scheduler=scheduler, sqs=sqs, groups=[group])
    assert await pump.tick(created + timedelta(seconds=30)) == []
    fired = await pump.tick(created + timedelta(seconds=61))
    assert [f.name for f in fired] == ["every-minute"]
    assert await pump.tick(created + timedelta(seconds=62)) == []
    # Missed occurrences fire once, then it goes on from there.
    fired = await pump.tick(created + timedelta(minutes=5, seconds=1))
    assert [f.name for f in fired] == ["every-minute"]
    assert await pump.tick(created + timedelta(minutes=5, seconds=30)) == []
    # Scheduler's context keywords are filled in: each tick names its occurrence (the late
    # one its own time, one minute after the first, not the time it was delivered).
    ticks = sorted(
        datetime.strptime(body, "tick %Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        for body in await _bodies(sqs, url)
    )
    assert len(ticks) == 2
    assert ticks[1] - ticks[0] == timedelta(minutes=1)
    origin = (await scheduler.get_schedule(Name="every-minute", GroupName=group))["CreationDate"]
    assert ticks[0] == (origin + timedelta(minutes=1)).replace(microsecond=0)

    # A cron schedule that ended: nothing fires, and DELETE removes it.
    await scheduler.create_schedule(
        Name="ended",
        GroupName=group,
        ScheduleExpression="cron(* * * * ? *)",
        EndDate=created - timedelta(seconds=1),
        ActionAfterCompletion="DELETE",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    assert all(f.name != "ended" for f in await pump.tick(created + timedelta(minutes=9)))
    names = {s["Name"] for s in (await scheduler.list_schedules(GroupName=group))["Schedules"]}
    assert "ended" not in names and "off" in names


# --- the whole stack (stub handlers, moto for DynamoDB) ---------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _wait_for(predicate: Any, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_local_stack_from_a_template(moto: moto_server.MotoServer) -> None:
    import boto3

    stubs.clear()
    clock = _Clock()
    before = dict(os.environ)
    progress: list[str] = []
    stack = LocalStack(
        template=STACK_YAML,
        port=0,
        stack_name=f"dev{next(_names)}",
        dynamodb_endpoint=moto.endpoint_url,
        clock=clock,
        tick_seconds=0.05,
        parameters={"VisibilityTimeout": 1, "MaxReceiveCount": 2},
        env={"PYWORKFLOW_SQS_DELAY_MAX_SECONDS": "0"},
        module="tests.dev.stub_workflows",  # imported at start, as dev does
        on_progress=progress.append,
    )
    with stack:
        info = stack.info
        assert info is not None
        assert stubs.RESETS == ["tests.dev.stubs"]  # one container, reset once
        assert info.api_url.startswith("http://127.0.0.1:")
        assert not info.api_url.endswith(":0")  # port 0: a free port, and the URL says which
        assert info.outputs["ApiUrl"] == info.api_url
        assert info.outputs["WorkQueueUrl"] == info.queues["WorkQueue"]
        env = os.environ
        assert env["PYWORKFLOW_QUEUE_URL"] == info.queues["WorkQueue"]
        assert env["PYWORKFLOW_TABLE"] == info.tables["WorkflowTable"]
        assert env["PYWORKFLOW_DYNAMODB_ENDPOINT"] == moto.endpoint_url
        assert env["AWS_ENDPOINT_URL_SQS"] == info.moto_endpoint
        assert env["PYWORKFLOW_SQS_DELAY_MAX_SECONDS"] == "0"
        assert (
            env["PYWORKFLOW_MODULE"] == "tests.dev.stub_workflows"
        )  # the WorkflowModule parameter
        assert any("table" in line for line in progress)
        ddb = boto3.client("dynamodb", endpoint_url=moto.endpoint_url, region_name=REGION)
        table = ddb.describe_table(TableName=info.tables["WorkflowTable"])["Table"]
        assert [g["IndexName"] for g in table["GlobalSecondaryIndexes"]] == ["GSI1"]
        sqs = boto3.client("sqs", endpoint_url=info.moto_endpoint, region_name=REGION)
        attrs = sqs.get_queue_attributes(QueueUrl=info.queues["WorkQueue"], AttributeNames=["All"])[
            "Attributes"
        ]
        assert attrs["VisibilityTimeout"] == "1"
        assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] == 2

        # The API function behind the HTTP API.
        status, _, body = _request(f"{info.api_url}/runs?x=1")
        assert status == 200
        assert json.loads(body)["event"]["routeKey"] == "ANY /{proxy+}"
        # The work queue pumped into the worker; a failing message ends in the DLQ.
        for body_text in ("ok", "fail"):
            sqs.send_message(QueueUrl=info.queues["WorkQueue"], MessageBody=body_text)

        def dlq_depth() -> int:
            return int(
                sqs.get_queue_attributes(
                    QueueUrl=info.queues["DeadLetterQueue"],
                    AttributeNames=["ApproximateNumberOfMessages"],
                )["Attributes"]["ApproximateNumberOfMessages"]
            )

        _wait_for(lambda: dlq_depth() == 1)
        records = [r["body"] for e in stubs.EVENTS if "Records" in e for r in e["Records"]]
        assert records.count("ok") == 1 and records.count("fail") == 2
        assert stubs.ENV_SEEN["PYWORKFLOW_TABLE"] == info.tables["WorkflowTable"]
        # A Scheduler schedule in the template's group fires into the work queue.
        scheduler = boto3.client("scheduler", endpoint_url=info.moto_endpoint, region_name=REGION)
        scheduler.create_schedule(
            Name="soon",
            GroupName=info.schedule_groups["TimerScheduleGroup"],
            ScheduleExpression=f"at({datetime.now(UTC):%Y-%m-%dT%H:%M:%S})",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": env["PYWORKFLOW_QUEUE_ARN"],
                "RoleArn": env["PYWORKFLOW_SCHEDULER_ROLE_ARN"],
                "Input": "ok",
            },
        )
        _wait_for(
            lambda: (
                sum(r["body"] == "ok" for e in stubs.EVENTS if "Records" in e for r in e["Records"])
                == 2
            )
        )
        # The template's rate(1 minute) Schedule event invokes the worker with its Input.
        assert not any("scheduled" in json.dumps(e) or "pyworkflow" in e for e in stubs.EVENTS)
        clock.offset = timedelta(minutes=1, seconds=1)
        _wait_for(lambda: {"pyworkflow": "sweep"} in stubs.EVENTS)
        assert len(stubs.THREADS) == 1  # one container: one invocation at a time
    assert dict(os.environ) == before  # the environment is restored
    assert stubs.RESETS == ["tests.dev.stubs", "tests.dev.stubs"]
    with pytest.raises(OSError):
        _request(info.api_url)


def test_parameter_ranges_can_be_relaxed_for_tests() -> None:
    with pytest.raises(TemplateError, match="outside"):
        StackTemplate.load(STACK_YAML, parameters={"MaxReceiveCount": 1})
    relaxed = StackTemplate.load(STACK_YAML, parameters={"MaxReceiveCount": 1}, check_ranges=False)
    assert relaxed.parameters["MaxReceiveCount"] == 1

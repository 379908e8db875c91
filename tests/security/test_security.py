"""Security properties as tests: hook tokens (entropy, stored hashed, compared in constant time,
single use), which routes are public, size limits, nothing from storage unpickled or
evaluated, and no token or payload in the logs at INFO.

Where a property could only be "checked" by reading the code, the test makes the code show it
instead: the CSPRNG is swapped for a marker, ``hmac.compare_digest`` is spied on, the database
file is read byte for byte, and the log lines of a real run are collected.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import io
import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyworkflow.config import ENV_MAX_REQUEST_BYTES
from pyworkflow.core import clock as clock_module
from pyworkflow.core.clock import new_token
from pyworkflow.core.models import HookStatus, RunStatus
from pyworkflow.dev.http_api import Route, match_route
from pyworkflow.dev.template import StackTemplate
from pyworkflow.handlers import api_models
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.handlers.api import workflows as api_wf
from tests.handlers.api.conftest import Api
from tests.security.conftest import Store

REPO = Path(__file__).resolve().parents[2]
PUBLIC_ROUTES = {("POST", "/hooks/{token}"), ("GET", "/health")}


def waiting_run(api: Api) -> tuple[str, str]:
    response = api.http("POST", "/runs", {"workflow": "api_waiter"})
    assert response.status == 202, response.body
    run_id = response.body["run_id"]
    api.drive()
    assert api.get(run_id).status == RunStatus.SUSPENDED
    return run_id, api_wf.TOKENS[run_id]


# --- hook tokens -------------------------------------------------------------------------------
def test_tokens_carry_at_least_128_random_bits() -> None:
    tokens = {new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    for token in tokens:
        assert token.startswith("whk_")
        raw = base64.urlsafe_b64decode(token[4:] + "=" * (-len(token[4:]) % 4))
        assert len(raw) * 8 >= 128, token
    # The randomness is the CSPRNG's (secrets), not random.random: swap it for a marker.
    original = secrets.token_urlsafe
    calls: list[int | None] = []

    def marker(nbytes: int | None = None) -> str:
        calls.append(nbytes)
        return original(nbytes)

    clock_module.secrets.token_urlsafe = marker  # type: ignore[assignment]
    try:
        new_token()
    finally:
        clock_module.secrets.token_urlsafe = original  # type: ignore[assignment]
    assert calls and (calls[0] or 0) * 8 >= 128, calls


def test_tokens_are_stored_only_as_their_sha256(api: Api, store: Store, db_path: Path) -> None:
    run_id, token = waiting_run(api)
    hooks = store.rows("hooks")
    assert len(hooks) == 1
    assert hooks[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    # Not in any table, column or event; not even in the raw bytes of the database files.
    assert token not in repr(store.snapshot())
    for path in db_path.parent.glob(db_path.name + "*"):  # the database, its WAL and SHM
        assert token.encode() not in path.read_bytes(), path.name
    assert token not in json.dumps(api.http("GET", f"/runs/{run_id}/events").body)


def test_a_wrong_token_of_the_same_length_is_refused(api: Api, store: Store) -> None:
    run_id, token = waiting_run(api)
    before = store.snapshot()
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    prefix_only = token[:-4] + "AAAA"
    for wrong in (flipped, prefix_only, token.upper(), token.lower()):
        if wrong == token:
            continue
        assert len(wrong) == len(token)
        response = api.http("POST", f"/hooks/{wrong}", {"ok": True})
        assert response.status == 404, response.body
        assert response.body["error"]["type"] == "HookNotFoundError"
    assert store.snapshot() == before
    assert api.dispatcher.woken == []
    assert api.http("POST", f"/hooks/{token}", {"ok": True}).status == 202


def test_tokens_are_compared_in_constant_time(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored hash is checked against the token's hash with ``hmac.compare_digest`` on
    the path a request takes (spied on, not grepped for)."""
    from pyworkflow.service import hooks as hook_service

    _, token = waiting_run(api)
    seen: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hook_service.hmac, "compare_digest", spy)
    assert api.http("POST", f"/hooks/{token}", {"ok": True}).status == 202
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert (digest, digest) in seen


def test_a_token_works_once(api: Api, store: Store) -> None:
    """The first payload is the one kept. A retry before the run took it is refused too, and
    only wakes the run again (a caller that died before waking it retries: no lost wake-up);
    once the run took it, a retry changes nothing at all."""
    run_id, token = waiting_run(api)
    assert api.http("POST", f"/hooks/{token}", {"ok": True, "by": "first"}).status == 202
    hooks, events = store.snapshot()["hooks"], store.snapshot()["events"]
    for payload in ({"ok": False, "by": "second"}, {"ok": True, "by": "third"}):
        again = api.http("POST", f"/hooks/{token}", payload)
        assert again.status == 409 and again.body["error"]["type"] == "HookAlreadyReceivedError"
        assert store.snapshot()["hooks"] == hooks and store.snapshot()["events"] == events
    assert {reason for _, reason in api.dispatcher.woken} == {"hook"}
    api.drive()
    assert api.get(run_id).get_result() == {"ok": True, "by": "first"}
    assert store.rows("hooks")[0]["status"] == HookStatus.RECEIVED.value
    assert api.http("POST", f"/hooks/{token}", {"ok": True}).status in (409, 410)


# --- authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize("auth_mode", ["IAM", "JWT"])
def test_every_route_but_the_hook_and_health_needs_auth(api: Api, auth_mode: str) -> None:
    """Every operation of the API's own OpenAPI document, matched against the template's
    routes the way API Gateway matches them: only the webhook and health are public."""
    parameters = {"AuthMode": auth_mode}
    if auth_mode == "JWT":
        parameters |= {"JwtIssuer": "https://issuer.example", "JwtAudience": "pyworkflow"}
    stack = StackTemplate.load(REPO / "template.yaml", parameters=parameters)
    for logical_id in stack.data["Resources"]:  # stand-ins for what a deploy would create
        stack.set_physical(
            logical_id,
            Ref=f"{logical_id}-local",
            QueueName=logical_id,
            Arn=f"arn:aws:local:us-east-1:123456789012:{logical_id}",
        )
    routes = [Route.compile(spec) for spec in stack.function_spec("ApiFunction").http_routes]
    document = api.http("GET", "/openapi.json").body
    operations = [
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    ]
    operations.append(("GET", "/openapi.json"))  # served, though not in its own document
    assert len(operations) >= 15
    public = set()
    for method, path in operations:
        concrete = path.replace("{", "").replace("}", "")  # /runs/{run_id} -> /runs/run_id
        found = match_route(routes, method, concrete)
        assert found is not None, f"{method} {path} has no route in template.yaml"
        route, _ = found
        if route.spec.authorizer == "NONE":
            public.add((method, path))
        else:
            expected = "AWS_IAM" if auth_mode == "IAM" else "JwtAuthorizer"
            assert route.spec.authorizer == expected, (method, path, route.spec)
    assert public == PUBLIC_ROUTES
    # Any other path or method (a route added later, a typo) falls to the authenticated
    # catch-all, never to a public route.
    for method, path in (
        ("GET", "/admin"),
        ("DELETE", "/hooks/whk_x"),
        ("POST", "/health"),
        ("PUT", "/hooks/whk_x/extra"),
    ):
        found = match_route(routes, method, path)
        assert found is not None and found[0].spec.authorizer != "NONE", (method, path)


def test_the_access_log_never_holds_a_path() -> None:
    """The HTTP API's access log names the route key ("POST /hooks/{token}"), never the path,
    which for the webhook is its token."""
    template = StackTemplate.load(REPO / "template.yaml").data
    settings = template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]
    fields = json.loads(settings["Format"])
    assert fields["routeKey"] == "$context.routeKey"
    assert not [v for v in fields.values() if "path" in v.lower() or "body" in v.lower()]


def test_every_checkov_skip_in_the_template_says_why() -> None:
    """``python -m infra.security_scan`` fails on a finding neither fixed nor skipped; a skip
    must carry its reason."""
    template = StackTemplate.load(REPO / "template.yaml").data
    skips = [
        (logical_id, skip)
        for logical_id, resource in template["Resources"].items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert str(skip["id"]).startswith("CKV_"), (logical_id, skip)
        assert len(str(skip.get("comment", "")).split()) >= 8, (logical_id, skip)


# --- size limits ------------------------------------------------------------------------------
def test_size_limits_cover_every_way_in(
    api: Api, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One limit (PYWORKFLOW_MAX_REQUEST_BYTES) for HTTP bodies, base64 bodies, the public
    webhook and direct invokes; every refusal names it and writes nothing."""
    run_id, token = waiting_run(api)
    monkeypatch.setenv(ENV_MAX_REQUEST_BYTES, "1000")
    before = store.snapshot()
    big = "x" * 2000
    answers = [
        api.http("POST", "/runs", {"workflow": "api_greet", "args": [big]}),
        api.http("POST", "/runs", {"workflow": "api_greet", "args": [big]}, base64=True),
        api.http("POST", f"/hooks/{token}", {"ok": True, "by": big}),
        api.http("POST", f"/runs/{run_id}/hooks/api_approval", {"by": big}),
        api.http(
            "POST",
            "/schedules",
            {"workflow": "api_greet", "spec": {"cron": "0 9 * * *"}, "args": [big]},
        ),
    ]
    for answer in answers:
        assert answer.status == 413, answer.body
        assert (
            "the limit is 1000 bytes (PYWORKFLOW_MAX_REQUEST_BYTES)"
            in answer.body["error"]["message"]
        )
    invoked = api.invoke("start_run", workflow="api_greet", args=[big])
    assert invoked["ok"] is False and invoked["status"] == 413
    assert "the limit is 1000 bytes" in invoked["error"]["message"]
    invoked = api.invoke("resume_hook", token=token, payload={"by": big})
    assert invoked["status"] == 413
    assert store.snapshot() == before
    # Bounded fields of the wire models (ids, names, reasons) are part of the same defence.
    monkeypatch.delenv(ENV_MAX_REQUEST_BYTES)
    assert api_models.StartRunRequest.model_fields["workflow"].metadata
    too_long = api.http("POST", f"/runs/{run_id}/cancel", {"reason": "r" * 1001})
    assert too_long.status == 422 and "reason" in too_long.body["error"]["message"]


# --- nothing from storage is unpickled or evaluated ---------------------------------------------
#: Modules that turn bytes into live objects or code.
UNSAFE_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "marshal",
    "shelve",
    "dill",
    "cloudpickle",
    "jsonpickle",
    "joblib",
}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def _unsafe_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        found += [f"{path.name}:{node.lineno} imports {n}" for n in names if n in UNSAFE_MODULES]
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else (func.attr if isinstance(func, ast.Attribute) else "")
            )
            builtin = isinstance(func, ast.Name) or (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "builtins"
            )  # not re.compile, not a method
            literal = bool(node.args) and isinstance(node.args[0], ast.Constant)
            if builtin and name in UNSAFE_CALLS and not (name == "__import__" and literal):
                found.append(f"{path.name}:{node.lineno} calls {name}()")
            # yaml.load without a safe loader builds arbitrary objects.
            if (
                name in ("load", "load_all")
                and isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "yaml"
            ):
                found.append(f"{path.name}:{node.lineno} calls yaml.{name}()")
    return found


def test_nothing_read_is_unpickled_or_evaluated() -> None:
    files = sorted((REPO / "pyworkflow").rglob("*.py"))
    assert len(files) > 40
    problems = [use for path in files for use in _unsafe_uses(path)]
    assert problems == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nfrom marshal import loads\nimport yaml\n"
        "eval('1')\nbuiltins.exec('x')\nyaml.load(s)\n__import__(name)\n"
        "re.compile('x')\n__import__('json')\n"
    )
    assert _unsafe_uses(bad) == [
        "bad.py:1 imports pickle",
        "bad.py:2 imports marshal",
        "bad.py:4 calls eval()",
        "bad.py:5 calls exec()",
        "bad.py:6 calls yaml.load()",
        "bad.py:7 calls __import__()",
    ]


# --- logs ---------------------------------------------------------------------------------------
@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Every line logged at INFO and above by the API and worker functions (their Powertools
    loggers, formatted as CloudWatch would get them) and by pyworkflow itself (caplog)."""
    from pyworkflow.handlers import api as api_module
    from pyworkflow.handlers import worker as worker_module

    stream = io.StringIO()
    caplog.set_level(logging.INFO)
    attached = []
    for powertools_logger in (api_module.logger, worker_module.logger):
        target = logging.getLogger(powertools_logger.name)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(powertools_logger.registered_formatter)
        attached.append((target, handler, target.level))
        target.addHandler(handler)
        target.addHandler(caplog.handler)
        target.setLevel(logging.INFO)
    yield stream
    for target, handler, level in attached:
        target.removeHandler(handler)
        target.removeHandler(caplog.handler)
        target.setLevel(level)


def sqs_event(messages: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"r-{i}",
                "body": json.dumps({"run_id": run_id, "reason": reason}),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pyworkflow-work",
                "awsRegion": "us-east-1",
            }
            for i, (run_id, reason) in enumerate(messages)
        ]
    }


def test_no_token_or_payload_in_the_logs_at_info(
    api: Api, db_path: Path, info_logs: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    """A run started, suspended on a hook, resumed through the webhook and finished by the worker
    Lambda (pyworkflow.handlers.worker, fed SQS events), with a distinctive string in the start
    arguments, the hook payload, a refused payload and a malformed body."""
    from pyworkflow.dev.pumps import FakeLambdaContext
    from pyworkflow.handlers import worker as worker_module

    worker_runtime = AwsRuntime(
        SQLiteStorageBackend(db_path),
        api.dispatcher,  # type: ignore[arg-type]
        clock=api.clock,
        lease_seconds=30,
        max_receives=3,
    )
    worker_module.reset(worker_runtime)

    def worker_runs() -> None:
        while api.dispatcher.woken:
            batch, api.dispatcher.woken[:] = list(api.dispatcher.woken), []
            result = worker_module.handler(
                sqs_event(batch), FakeLambdaContext(function_name="pyworkflow-worker")
            )
            assert result == {"batchItemFailures": []}

    secret = "zq-secret-payload-4711"
    try:
        greeted = api.http("POST", "/runs", {"workflow": "api_greet", "args": [secret]})
        waiter = api.http("POST", "/runs", {"workflow": "api_waiter"})
        worker_runs()
        token = api_wf.TOKENS[waiter.body["run_id"]]
        assert api.http("POST", f"/hooks/{token}", {"ok": secret}).status == 422
        assert api.http("POST", f"/hooks/{token}", raw_body='{"by": "' + secret).status == 400
        assert api.http("POST", f"/hooks/{token}", {"ok": True, "by": secret}).status == 202
        worker_runs()
        assert api.http("POST", f"/hooks/{token}", {"ok": True, "by": secret}).status == 409
    finally:
        worker_module.reset()
    assert api.get(greeted.body["run_id"]).get_result() == f"HELLO {secret.upper()}!"
    assert api.get(waiter.body["run_id"]).get_result() == {"ok": True, "by": secret}

    logged = info_logs.getvalue() + "\n" + caplog.text
    lines = [line for line in info_logs.getvalue().splitlines() if line.strip()]
    assert len(lines) >= 8, logged  # the requests and messages were logged...
    assert "POST /hooks/{token}" in logged and "message done" in logged
    assert token not in logged  # ...but never the token
    assert hashlib.sha256(token.encode()).hexdigest() not in logged
    assert secret not in logged and secret.upper() not in logged  # ...nor a payload


def test_the_log_check_sees_what_is_logged(
    info_logs: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    """The capture above would catch a leak at INFO from either function or from pyworkflow."""
    from pyworkflow.handlers import api as api_module
    from pyworkflow.handlers import worker as worker_module

    api_module.logger.info("leak-1")
    worker_module.logger.info("leak-2")
    logging.getLogger("pyworkflow").info("leak-3")
    logged = info_logs.getvalue() + caplog.text
    assert all(f"leak-{i}" in logged for i in (1, 2, 3))

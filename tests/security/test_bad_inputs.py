"""Every bad input the API and the engine must refuse, in one table: each gets its clear error
and writes nothing, or nothing but what the refusal itself is.

Two kinds of rows:

- ``Refused``: the API answers an error (status, type, a phrase of the message) and the store
  is byte-for-byte what it was before the request (``Store.snapshot``: every row of every
  table, read from the SQLite file), with no wake-up sent and no timer or schedule created.
  A hook that was pending stays pending: the snapshot includes the hook's row.
- ``RunFails``: the input is accepted (202) but the workflow cannot go on with it (a sleep of
  -5 s, a result JSON has no form for); the run must end ``failed`` with a message saying why,
  and with no timer created for the sleep it refused.

Some of these are also checked, with more detail, where the feature lives
(tests/handlers/api/test_*.py); this table is the one place that lists them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from pyworkflow.core.events import EventType
from pyworkflow.core.models import HookStatus, RunStatus
from tests.handlers.api import workflows as api_wf
from tests.handlers.api.conftest import Api, Response
from tests.security import workflows as sec_wf
from tests.security.conftest import Store

Context = dict[str, str]
LIMIT = 256 * 1024  # pyworkflow/handlers/api.py's default PYWORKFLOW_MAX_REQUEST_BYTES
DAILY = {"cron": "0 9 * * *"}


# --- situations a row starts from -----------------------------------------------------------
def nothing(api: Api) -> Context:
    return {}


def waiting(workflow: str = "api_waiter") -> Callable[[Api], Context]:
    """A run suspended on its hook; the context holds its id and the hook's token."""

    def setup(api: Api) -> Context:
        response = api.http("POST", "/runs", {"workflow": workflow})
        assert response.status == 202, response.body
        run_id = response.body["run_id"]
        api.drive()
        assert api.get(run_id).status == RunStatus.SUSPENDED
        return {"run_id": run_id, "token": api_wf.TOKENS[run_id]}

    return setup


def expired(api: Api) -> Context:
    context = waiting("api_expiring")(api)
    api.clock.advance(2 * 3600)  # past the hook's 1h timeout; no worker has run since
    return context


def waiting_untyped(api: Api) -> Context:
    """A run suspended on a hook without a payload schema: any JSON value is its payload."""
    response = api.http("POST", "/runs", {"workflow": "sec_hook_then_sleep"})
    assert response.status == 202, response.body
    run_id = response.body["run_id"]
    api.drive()
    return {"run_id": run_id, "token": sec_wf.TOKENS[run_id]}


def used(api: Api) -> Context:
    """A hook whose payload its run has taken (the run then sleeps): its token is spent. (A
    token used but not yet taken is retried by design: the retry wakes the run again.)"""
    context = waiting_untyped(api)
    run_id, token = context["run_id"], context["token"]
    assert api.http("POST", f"/hooks/{token}", {"first": True}).status == 202
    api.drive()
    assert api.get(run_id).status == RunStatus.SUSPENDED  # now in its sleep
    return {"run_id": run_id, "token": token}


def finished(api: Api) -> Context:
    context = waiting()(api)
    assert api.http("POST", f"/hooks/{context['token']}", {"ok": True}).status == 202
    api.drive()
    assert api.get(context["run_id"]).status == RunStatus.COMPLETED
    return context


def cancelled(api: Api) -> Context:
    context = waiting()(api)
    assert api.http("POST", f"/runs/{context['run_id']}/cancel").status == 202
    api.drive()
    assert api.get(context["run_id"]).status == RunStatus.CANCELLED
    return context


def scheduled(api: Api) -> Context:
    response = api.http(
        "POST",
        "/schedules",
        {"workflow": "api_greet", "spec": DAILY, "args": ["x"], "schedule_id": "daily"},
    )
    assert response.status == 201, response.body
    return {"schedule_id": "daily"}


# --- the rows -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refused:
    """``method path`` with ``body`` (JSON) or ``raw`` (sent as is) → ``status``/``type``,
    a message containing ``needle``, and no write."""

    name: str
    method: str
    path: str
    status: int
    type: str
    needle: str
    body: Any = None
    raw: str | None = None
    setup: Callable[[Api], Context] = nothing
    query: dict[str, str] | None = None

    def send(self, api: Api, context: Context) -> Response:
        path = self.path.format(**context)
        if self.raw is not None:
            return api.http(self.method, path, raw_body=self.raw, query=self.query)
        return api.http(self.method, path, self.body, query=self.query)


@dataclass(frozen=True)
class RunFails:
    """``POST /runs`` of ``workflow(*args)`` is accepted; the run then fails with ``needle``
    in its error."""

    name: str
    workflow: str
    needle: str
    args: list[Any] = field(default_factory=list)


BIG = "x" * LIMIT

REFUSED = [
    # -- starting runs
    Refused(
        "unknown workflow",
        "POST",
        "/runs",
        404,
        "UnknownWorkflowError",
        "'nope' is not registered. Available: ",
        body={"workflow": "nope"},
    ),
    Refused(
        "too many arguments",
        "POST",
        "/runs",
        422,
        "InvalidArgumentsError",
        "too many positional arguments",
        body={"workflow": "api_greet", "args": [1, 2, 3]},
    ),
    Refused(
        "missing argument",
        "POST",
        "/runs",
        422,
        "InvalidArgumentsError",
        "missing a required argument: 'name'",
        body={"workflow": "api_greet"},
    ),
    Refused(
        "unknown keyword argument",
        "POST",
        "/runs",
        422,
        "InvalidArgumentsError",
        "volume",
        body={"workflow": "api_greet", "args": ["a"], "kwargs": {"volume": 11}},
    ),
    Refused(
        "argument of the wrong type (pydantic)",
        "POST",
        "/runs",
        422,
        "InvalidArgumentsError",
        "quantity",
        body={"workflow": "api_order", "args": [{"order_id": "o", "quantity": "lots"}]},
    ),
    Refused(
        "NaN argument",
        "POST",
        "/runs",
        422,
        "InvalidArgumentsError",
        "nan is not a JSON number",
        raw='{"workflow": "sec_sleeper", "args": [NaN]}',
    ),
    Refused(
        "unknown field in the body",
        "POST",
        "/runs",
        422,
        "ValidationError",
        "kwarg",
        body={"workflow": "api_greet", "kwarg": {}},
    ),
    Refused(
        "malformed JSON",
        "POST",
        "/runs",
        400,
        "MalformedJSON",
        "Request body is not valid JSON",
        raw='{"workflow": "api_greet", ',
    ),
    Refused(
        "body over the size limit",
        "POST",
        "/runs",
        413,
        "RequestTooLarge",
        f"the limit is {LIMIT} bytes (PYWORKFLOW_MAX_REQUEST_BYTES)",
        body={"workflow": "api_greet", "args": [BIG]},
    ),
    Refused(
        "malformed and over the limit: refused for its size",
        "POST",
        "/runs",
        413,
        "RequestTooLarge",
        f"the limit is {LIMIT} bytes",
        raw="[" * (LIMIT + 1),
    ),
    Refused(
        "values nested too deeply",
        "POST",
        "/runs",
        400,
        "TooDeeplyNested",
        "at most 100 levels",
        raw='{"workflow": "api_greet", "args": [' + "[" * 200 + "]" * 200 + "]}",
    ),
    # -- hooks
    Refused(
        "unknown hook token",
        "POST",
        "/hooks/whk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        404,
        "HookNotFoundError",
        "",
        body={"ok": True},
        setup=waiting(),
    ),
    Refused(
        "hook token too long to be one",
        "POST",
        "/hooks/" + "x" * 300,
        404,
        "InvalidTokenError",
        "Invalid hook token",
        body={"ok": True},
        setup=waiting(),
    ),
    Refused(
        "expired hook token",
        "POST",
        "/hooks/{token}",
        410,
        "HookExpiredError",
        "expired",
        body={"ok": True},
        setup=expired,
    ),
    Refused(
        "already-used hook token",
        "POST",
        "/hooks/{token}",
        409,
        "HookAlreadyReceivedError",
        "already",
        body={"ok": True},
        setup=used,
    ),
    Refused(
        "hook payload failing its schema",
        "POST",
        "/hooks/{token}",
        422,
        "HookPayloadError",
        "Approval",
        body={"ok": "perhaps"},
        setup=waiting(),
    ),
    Refused(
        "hook payload that is malformed JSON",
        "POST",
        "/hooks/{token}",
        400,
        "MalformedJSON",
        "not valid JSON",
        raw='{"ok": tru',
        setup=waiting(),
    ),
    Refused(
        "hook payload over the size limit",
        "POST",
        "/hooks/{token}",
        413,
        "RequestTooLarge",
        f"the limit is {LIMIT} bytes",
        body={"ok": True, "by": BIG},
        setup=waiting(),
    ),
    Refused(
        "hook by name: payload failing its schema",
        "POST",
        "/runs/{run_id}/hooks/api_approval",
        422,
        "HookPayloadError",
        "Approval",
        body={"ok": []},
        setup=waiting(),
    ),
    Refused(
        "hook by name: unknown hook",
        "POST",
        "/runs/{run_id}/hooks/api_nothing",
        404,
        "HookNotFoundError",
        "api_nothing",
        body={"payload": 1},
        setup=waiting(),
    ),
    # -- finished runs
    Refused(
        "cancel a completed run",
        "POST",
        "/runs/{run_id}/cancel",
        409,
        "RunAlreadyEndedError",
        "has already ended (completed)",
        setup=finished,
    ),
    Refused(
        "cancel a cancelled run",
        "POST",
        "/runs/{run_id}/cancel",
        409,
        "RunAlreadyEndedError",
        "has already ended (cancelled)",
        setup=cancelled,
    ),
    Refused(
        "resume the hook of a cancelled run",
        "POST",
        "/hooks/{token}",
        410,
        "HookExpiredError",
        "already ended",
        body={"ok": True},
        setup=cancelled,
    ),
    Refused(
        "resume by name on a completed run",
        "POST",
        "/runs/{run_id}/hooks/api_approval",
        409,
        "HookAlreadyReceivedError",
        "already",
        body={"ok": True},
        setup=finished,
    ),
    Refused(
        "cancel an unknown run",
        "POST",
        "/runs/run_nope/cancel",
        404,
        "WorkflowNotFoundError",
        "run_nope",
    ),
    # -- queries (integers past 2**53 - 1 were 500s: SQLite refused them)
    Refused(
        "events after a sequence too large for any store",
        "GET",
        "/runs/{run_id}/events",
        422,
        "ValidationError",
        "query.after: Input should be less than or equal to",
        query={"after": str(2**64 + 1)},
        setup=waiting(),
    ),
    Refused(
        "schedules offset too large for any store",
        "GET",
        "/schedules",
        422,
        "ValidationError",
        "query.offset",
        query={"offset": "18446744073709551617"},
    ),
    Refused(
        "list limit over the maximum",
        "GET",
        "/runs",
        422,
        "ValidationError",
        "query.limit: Input should be less than or equal to 1000",
        query={"limit": "1001"},
    ),
    # -- schedules
    Refused(
        "invalid cron",
        "POST",
        "/schedules",
        422,
        "ScheduleError",
        "cron",
        body={"workflow": "api_greet", "spec": {"cron": "61 * * * *"}, "args": ["x"]},
    ),
    Refused(
        "cron that is not one",
        "POST",
        "/schedules",
        422,
        "ScheduleError",
        "cron",
        body={"workflow": "api_greet", "spec": {"cron": "every day"}, "args": ["x"]},
    ),
    Refused(
        "invalid cron in an update",
        "PATCH",
        "/schedules/{schedule_id}",
        422,
        "ScheduleError",
        "cron",
        body={"spec": {"cron": "* * *"}},
        setup=scheduled,
    ),
    Refused(
        "schedule of an unknown workflow",
        "POST",
        "/schedules",
        404,
        "UnknownWorkflowError",
        "not registered",
        body={"workflow": "nope", "spec": DAILY},
    ),
    Refused(
        "schedule with arguments that do not fit",
        "POST",
        "/schedules",
        422,
        "InvalidArgumentsError",
        "too many positional arguments",
        body={"workflow": "api_greet", "spec": DAILY, "args": [1, 2, 3]},
    ),
]

# Text holding a lone surrogate: the JSON escape "\ud800" without its other half, which json
# decodes into a str UTF-8 cannot encode (so no store can hold it). Refused up front, with the
# field named as the request spells it; \ud800 below is JSON text, sent as is.
LONE = "lone surrogate"
REFUSED += [
    Refused(
        f"{LONE} in an argument",
        "POST",
        "/runs",
        422,
        "SerializationError",
        "args[0]['order_id'] cannot be stored as JSON",
        raw=r'{"workflow": "api_order", "args": [{"order_id": "\ud800", "quantity": 1}]}',
    ),
    Refused(
        f"{LONE} in a keyword argument",
        "POST",
        "/runs",
        422,
        "SerializationError",
        "kwargs['punctuation'] cannot be stored as JSON",
        raw=r'{"workflow": "api_greet", "args": ["a"], "kwargs": {"punctuation": "\ud800"}}',
    ),
    Refused(
        f"{LONE} in a keyword argument's name",
        "POST",
        "/runs",
        422,
        "SerializationError",
        r"kwargs['\ud800'] cannot be stored as JSON",
        raw=r'{"workflow": "api_greet", "args": ["a"], "kwargs": {"\ud800": "!"}}',
    ),
    Refused(
        f"{LONE} in the workflow's name",
        "POST",
        "/runs",
        422,
        "SerializationError",
        "workflow cannot be stored as JSON",
        raw=r'{"workflow": "api_\ud800"}',
    ),
    Refused(
        f"{LONE} in an idempotency key",
        "POST",
        "/runs",
        422,
        "SerializationError",
        "idempotency_key cannot be stored as JSON",
        raw=r'{"workflow": "api_greet", "args": ["a"], "idempotency_key": "k\ud800"}',
    ),
    Refused(
        f"{LONE} in the name of a body field",
        "POST",
        "/runs",
        422,
        "SerializationError",
        r"['\ud800'] cannot be stored as JSON",
        raw=r'{"workflow": "api_greet", "args": ["a"], "\ud800": 1}',
    ),
    Refused(
        f"{LONE} in a hook payload",
        "POST",
        "/hooks/{token}",
        422,
        "SerializationError",
        "payload['by'] cannot be stored as JSON",
        raw=r'{"ok": true, "by": "\ud800"}',
        setup=waiting(),
    ),
    Refused(
        f"{LONE} in the payload of a hook without a schema",
        "POST",
        "/hooks/{token}",
        422,
        "SerializationError",
        "payload['note'][1] cannot be stored as JSON",
        raw=r'{"note": ["fine", "x\ud800y"]}',
        setup=waiting_untyped,
    ),
    Refused(
        f"{LONE} as a whole hook payload",
        "POST",
        "/hooks/{token}",
        422,
        "SerializationError",
        "payload cannot be stored as JSON",
        raw=r'"\ud800"',
        setup=waiting_untyped,
    ),
    Refused(
        f"hook by name: {LONE} in the payload",
        "POST",
        "/runs/{run_id}/hooks/api_approval",
        422,
        "SerializationError",
        "payload['by'] cannot be stored as JSON",
        raw=r'{"ok": true, "by": "\ud800"}',
        setup=waiting(),
    ),
    Refused(
        f"{LONE} in a hook failure's message",
        "POST",
        "/hooks/{token}/fail",
        422,
        "SerializationError",
        "message cannot be stored as JSON",
        raw=r'{"error_type": "Declined", "message": "\udfff"}',
        setup=waiting(),
    ),
    Refused(
        f"hook by name: {LONE} in a failure's type",
        "POST",
        "/runs/{run_id}/hooks/api_approval/fail",
        422,
        "SerializationError",
        "error_type cannot be stored as JSON",
        raw=r'{"error_type": "\ud800"}',
        setup=waiting(),
    ),
    Refused(
        f"{LONE} in a cancel reason",
        "POST",
        "/runs/{run_id}/cancel",
        422,
        "SerializationError",
        "reason cannot be stored as JSON",
        raw=r'{"reason": "\udfff"}',
        setup=waiting(),
    ),
    Refused(
        f"{LONE} in a query parameter",
        "GET",
        "/runs",
        422,
        "SerializationError",
        "cursor cannot be stored as JSON",
        query={"cursor": "c\udcff"},
    ),
    Refused(
        f"{LONE} in a schedule's arguments",
        "POST",
        "/schedules",
        422,
        "SerializationError",
        "args[0] cannot be stored as JSON",
        raw=r'{"workflow": "api_greet", "spec": {"cron": "0 9 * * *"}, "args": ["\ud800"]}',
    ),
    Refused(
        f"{LONE} in a schedule's timezone",
        "POST",
        "/schedules",
        422,
        "SerializationError",
        "spec['timezone'] cannot be stored as JSON",
        raw=r'{"workflow": "api_greet", "spec": {"cron": "0 9 * * *", "timezone": "\ud800"},'
        r' "args": ["a"]}',
    ),
    Refused(
        f"{LONE} in a schedule id",
        "POST",
        "/schedules",
        422,
        "SerializationError",
        "schedule_id cannot be stored as JSON",
        raw=r'{"workflow": "api_greet", "spec": {"cron": "0 9 * * *"}, "args": ["a"],'
        r' "schedule_id": "s\ud800"}',
    ),
    Refused(
        f"{LONE} in a schedule update",
        "PATCH",
        "/schedules/{schedule_id}",
        422,
        "SerializationError",
        "spec['jitter'] cannot be stored as JSON",
        raw=r'{"spec": {"cron": "0 9 * * *", "jitter": "5m\ud800"}}',
        setup=scheduled,
    ),
]

RUN_FAILS = [
    RunFails(
        "negative sleep", "sec_sleeper", "Invalid sleep() duration -5: must not be negative", [-5]
    ),
    RunFails(
        "absurd sleep (unknown unit)", "sec_sleeper", "Invalid sleep() duration '9999y'", ["9999y"]
    ),
    RunFails("absurd sleep (too long)", "sec_sleeper", "longer than 10 years", ["99999w"]),
    RunFails("absurd sleep (huge number)", "sec_sleeper", "longer than 10 years", [1e308]),
    RunFails(
        "sleep of something that is no duration",
        "sec_sleeper",
        "Invalid sleep() duration",
        [{"seconds": 5}],
    ),
    RunFails(
        "result JSON cannot hold",
        "sec_opaque",
        "The result of workflow 'sec_opaque' cannot be stored as JSON: an object of type Opaque",
    ),
    RunFails(
        "step result JSON cannot hold",
        "sec_opaque_step",
        "The result of step 'opaque_step' cannot be stored as JSON",
    ),
]


@pytest.mark.parametrize("row", REFUSED, ids=[r.name for r in REFUSED])
def test_refused_with_a_clear_error_and_no_write(api: Api, store: Store, row: Refused) -> None:
    context = row.setup(api)
    before = store.snapshot()
    woken, waits = list(api.dispatcher.woken), list(api.dispatcher.waits)
    schedules = dict(api.dispatcher.scheduler.schedules)
    before_hooks = store.rows("hooks")

    response = row.send(api, context)

    assert response.status == row.status, response.body
    error = response.body["error"]
    assert error["type"] == row.type, error
    assert row.needle in error["message"], error
    assert store.snapshot() == before, "a refused request changed the store"
    assert api.dispatcher.woken == woken, "a refused request woke a run"
    assert api.dispatcher.waits == waits
    assert api.dispatcher.scheduler.schedules == schedules
    if "token" in context:  # a credential is never echoed back
        assert context["token"] not in error["message"]
    # Spelled out although the snapshot covers it: a pending hook stays pending.
    pending = [h["hook_id"] for h in before_hooks if h["status"] == HookStatus.PENDING.value]
    assert [
        h["hook_id"] for h in store.rows("hooks") if h["status"] == HookStatus.PENDING.value
    ] == pending


def test_the_table_has_a_lone_surrogate_row_for_every_route_with_a_body(api: Api) -> None:
    """Every operation of the OpenAPI document that takes a body has a row sending it a lone
    surrogate: a route added later is not forgotten."""
    doc = api.http("GET", "/openapi.json").body
    lone = [r for r in REFUSED if LONE in r.name]
    for path, item in doc["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method, operation in item.items():
            if "requestBody" in operation:
                assert any(r.method == method.upper() and pattern.match(r.path) for r in lone), (
                    f"no {LONE} row for {method.upper()} {path}"
                )


@pytest.mark.parametrize("row", RUN_FAILS, ids=[r.name for r in RUN_FAILS])
def test_run_fails_saying_why(api: Api, store: Store, row: RunFails) -> None:
    response = api.http("POST", "/runs", {"workflow": row.workflow, "args": row.args})
    assert response.status == 202, response.body
    run_id = response.body["run_id"]
    api.drive()

    run = api.get(run_id)
    assert run.status == RunStatus.FAILED
    assert row.needle in (run.error or ""), run.error
    view = api.http("GET", f"/runs/{run_id}").body
    assert view["status"] == "failed" and row.needle in view["error"]
    types = [e.type for e in api.run(api.runtime.storage.get_events(run_id))]
    assert types[0] == EventType.WORKFLOW_STARTED and types[-1] == EventType.WORKFLOW_FAILED
    assert EventType.SLEEP_STARTED not in types
    assert api.dispatcher.waits == []  # no timer for a sleep that was refused
    assert [r["status"] for r in store.rows("runs")] == ["failed"]


def test_the_table_covers_the_issue_list() -> None:
    """Issue 5's list of bad inputs, each matched by at least one row (a guard against a row
    being dropped without notice)."""
    names = " | ".join(r.name for r in [*REFUSED, *RUN_FAILS])
    for item in (
        "unknown workflow",
        "too many arguments",
        "malformed JSON",
        "over the size limit",
        "unknown hook token",
        "expired hook token",
        "already-used hook token",
        "hook payload failing its schema",
        "cancel a completed run",
        "resume the hook of a cancelled run",
        "invalid cron",
        "negative sleep",
        "absurd sleep",
        "result JSON cannot hold",
    ):
        assert item in names, item

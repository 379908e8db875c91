"""``pyworkflow.dev.runtime_api``: a handler run by AWS's runtime interface client
(``awslambdaric``) in its own process, against the local Lambda Runtime API."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyworkflow.dev.runtime_api import (
    FunctionError,
    FunctionInitError,
    FunctionTimeout,
    RicFunction,
)

REPO = Path(__file__).resolve().parents[2]
HANDLER = "tests.dev.ric_stub.handler"
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:stub"


def _function(timeout: float = 5.0, **env: str) -> RicFunction:
    return RicFunction(
        name="stub",
        handler=HANDLER,
        timeout=timeout,
        memory_size=256,
        arn=ARN,
        region="eu-west-1",
        task_root=str(REPO),
        environment={**os.environ, "STUB_SETTING": "on", **env},
    )


@pytest.fixture
async def function() -> AsyncIterator[RicFunction]:
    fn = _function()
    try:
        yield fn
    finally:
        await fn.stop()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_an_invocation_round_trips_through_awslambdaric(function: RicFunction) -> None:
    result = await function.invoke({"action": "echo", "n": 1})
    assert result["event"] == {"action": "echo", "n": 1}
    assert result["pid"] == function.pid != os.getpid()
    assert result["function_name"] == "stub"
    assert result["memory_limit_in_mb"] == "256"  # awslambdaric reads it from the environment
    assert result["arn"] == ARN
    assert result["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "stub"
    assert result["env"]["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/stub"
    assert result["env"]["AWS_REGION"] == "eu-west-1"
    assert result["env"]["_HANDLER"] == HANDLER
    assert result["env"]["STUB_SETTING"] == "on"
    assert result["env"]["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert len(function.cold_starts) == 1 and len(function.durations) == 1


async def test_the_context_counts_down_to_the_deadline_header() -> None:
    fn = _function(timeout=7.0)
    try:
        await fn.start()
        first = await fn.invoke({"action": "echo"})
        assert 6000 < first["remaining_ms"] <= 7000
        late = await fn.invoke({"action": "sleep", "seconds": 1.5})
        assert 4500 < late["remaining_ms"] <= 5500  # the same deadline, 1.5 s later
    finally:
        await fn.stop()


async def test_the_process_is_reused_across_invocations(function: RicFunction) -> None:
    results = [await function.invoke({"action": "echo", "n": n}) for n in range(3)]
    assert {r["pid"] for r in results} == {function.pid}
    assert {r["loaded_at"] for r in results} == {results[0]["loaded_at"]}  # imported once
    assert len({r["request_id"] for r in results}) == 3
    assert len(function.cold_starts) == 1 and len(function.pids) == 1


async def test_a_handler_error_is_lambdas_error_document(function: RicFunction) -> None:
    with pytest.raises(FunctionError) as raised:
        await function.invoke({"action": "raise", "value": 42})
    payload = raised.value.payload
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad input: 42"
    assert any("ric_stub.py" in line for line in payload["stackTrace"])
    assert payload["requestId"]
    pid = function.pid
    assert (await function.invoke({"action": "echo"}))["pid"] == pid  # the sandbox lives on


async def test_an_import_error_is_reported_as_the_init_error() -> None:
    fn = _function(RIC_STUB_FAIL_IMPORT="1")
    try:
        with pytest.raises(FunctionInitError) as raised:
            await fn.invoke({"action": "echo"})
        assert raised.value.error_type == "RuntimeError"
        assert raised.value.error_message == "the stub refuses to load"
        assert fn.pid is None and fn.cold_starts == []
        with pytest.raises(FunctionInitError):  # each invocation tries a fresh init
            await fn.start()
        assert len(fn.pids) == 2
    finally:
        await fn.stop()


async def test_a_timeout_kills_the_process_and_the_next_invoke_cold_starts() -> None:
    fn = _function(timeout=1.0)
    try:
        first = await fn.invoke({"action": "echo"})
        started = time.monotonic()
        with pytest.raises(FunctionTimeout) as raised:
            await fn.invoke({"action": "sleep", "seconds": 30})
        assert 0.9 < time.monotonic() - started < 5
        assert raised.value.error_type == "Sandbox.Timedout"
        assert raised.value.error_message.endswith("Task timed out after 1.00 seconds")
        assert not _alive(first["pid"]) and fn.pid is None
        again = await fn.invoke({"action": "echo"})
        assert again["pid"] != first["pid"]
        assert len(fn.cold_starts) == 2
    finally:
        await fn.stop()


async def test_a_process_that_dies_mid_invocation_fails_it_and_is_replaced(
    function: RicFunction,
) -> None:
    with pytest.raises(FunctionError) as raised:
        await function.invoke({"action": "exit"})
    assert raised.value.error_type == "Runtime.ExitError"
    assert "exit status 3" in raised.value.error_message
    assert (await function.invoke({"action": "echo"}))["pid"] == function.pids[-1]
    assert len(function.pids) == 2


async def test_stop_leaves_no_process(function: RicFunction) -> None:
    await function.start()
    pid = function.pid
    assert pid is not None and _alive(pid)
    await function.stop()
    assert not _alive(pid)

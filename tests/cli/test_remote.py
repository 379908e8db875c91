"""The ``pyworkflow`` command line against a stack's HTTP API (``--api-url``): the real API handler
served over real HTTP (``tests/client/apiserver``), the real worker pumped from moto's SQS, SQLite
storage. Runs progress only while the test pumps the queue, as they would only while the worker
Lambda runs; a command that waits runs in a thread while the test pumps."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pyworkflow.cli import main
from pyworkflow.cli.remote import should_sign
from tests.aws.conftest import (  # noqa: F401 - fixtures
    Aws,
    aws,
    aws_env,
    dynamodb_local,
    moto,
    worker,
)
from tests.client import workflows as wf
from tests.client.apiserver import ApiServer, serve
from tests.client.conftest import api, storage_kind  # noqa: F401 - fixtures


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert "Traceback" not in result.output, result.output
    return result


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("Error:") and len(lines) <= 2, result.output  # error and hint
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result.output


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class Stack:
    server: ApiServer
    aws: Aws

    async def cli(self, *args: str, output: str | None = None, env: bool = False) -> Result:
        """``pyworkflow --api-url URL [...] args`` in a thread (the CLI runs its own event loop;
        this one serves the API). ``env``: the URL through PYWORKFLOW_API_URL instead."""
        opts = [] if env else ["--api-url", self.server.url]
        if output:
            opts += ["--output", output]
        environ = {"PYWORKFLOW_API_URL": self.server.url} if env else None
        return await asyncio.to_thread(invoke, *opts, *args, env=environ)

    async def json(self, *args: str) -> Any:
        result = await self.cli(*args, output="json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    async def pumping(self, command: Awaitable[Result]) -> Result:
        """Run ``command`` while the worker is pumped, until the command returns."""
        task: asyncio.Task[Result] = asyncio.ensure_future(command)

        async def finished() -> bool:
            return task.done()

        await self.aws.pump(stop_when=finished, idle_polls=120)
        return await task

    async def settled(self, run_id: str, *, ended: bool = False) -> Any:
        """Pump until the queue is empty (``ended``: until the run has ended), then the run's
        status as the CLI reports it."""
        if ended:
            await self.aws.pump_until_done(run_id)
        else:
            await self.aws.pump()
        return await self.json("runs", "status", run_id)


@pytest.fixture
async def stack(
    aws: Aws,  # noqa: F811
    api: Any,  # noqa: F811
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Stack]:
    monkeypatch.chdir(tmp_path)  # no pyworkflow.toml of the repository's
    # The CLI's output is captured by swapping the process-wide sys.stdout, and the worker
    # pumped meanwhile in this process prints its EMF metrics there: keep them out.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    # ...and its INFO lines ("message done") too, whichever stream its handler was given.
    from pyworkflow.handlers import worker as worker_module

    previous = worker_module.logger.level
    worker_module.logger.setLevel("WARNING")
    try:
        async with serve(api.handler) as server:
            yield Stack(server, aws)
    finally:
        worker_module.logger.setLevel(previous)


async def test_run_wait_prints_the_result(stack: Stack) -> None:
    result = await stack.pumping(
        stack.cli(
            "workflows",
            "run",
            "client_add",
            "--arg",
            "a=2",
            "--arg",
            "b=5",
            "--wait",
            "--timeout",
            "60",
        )
    )
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "Result:   7" in result.output
    data = json.loads(
        (
            await stack.pumping(
                stack.cli(
                    "workflows",
                    "run",
                    "client_add",
                    "--args-json",
                    "[40]",
                    "--wait",
                    "--timeout",
                    "60",
                    output="json",
                )
            )
        ).stdout
    )
    assert data["status"] == "completed" and data["result"] == 41

    chained = await stack.pumping(
        stack.cli("workflows", "run", "client_chain", "--arg", "i=0", "--wait", "--timeout", "60")
    )
    assert chained.exit_code == 0, chained.output
    assert "Chain:    3 runs" in chained.output and "Result:   2" in chained.output

    failed = await stack.pumping(
        stack.cli(
            "workflows", "run", "client_fail", "--arg", "message=boom", "--wait", "--timeout", "60"
        )
    )
    assert failed.exit_code == 1 and "ValueError: boom" in failed.output

    listed = await stack.json("workflows", "list")
    assert "client_add" in {w["name"] for w in listed}
    info = await stack.cli("workflows", "info", "client_add")
    assert "client_add(a: int, b: int = 1)" in info.output and "Adds two numbers" in info.output


async def test_run_without_wait_and_runs_list_status_logs(stack: Stack) -> None:
    started = await stack.json("workflows", "run", "client_add", "--args-json", "[20, 22]")
    run_id = started["run_id"]
    assert started["status"] == "pending"  # the worker has not seen it yet
    status = await stack.settled(run_id, ended=True)
    assert status["status"] == "completed" and status["result"] == 42

    result = await stack.cli("runs", "list", env=True)  # the URL from PYWORKFLOW_API_URL
    assert result.exit_code == 0 and run_id in result.output and "completed" in result.output
    page = await stack.json("runs", "list", "--workflow", "client_add")
    assert [r["run_id"] for r in page["runs"]] == [run_id]

    result = await stack.cli("runs", "status", run_id)
    assert result.exit_code == 0 and "Result:" in result.output and "42" in result.output

    result = await stack.cli("runs", "logs", run_id)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    started_at = next(i for i, line in enumerate(lines) if "workflow.started" in line)
    step = next(i for i, line in enumerate(lines) if "step.completed" in line)
    assert started_at < step and "add -> 42" in lines[step]
    events = await stack.json("runs", "logs", run_id, "--filter", "step")
    assert {e["type"] for e in events} == {"step.completed"}

    missing = await stack.cli("runs", "status", "run_nope")
    assert_one_line_error(missing, "Workflow run not found: run_nope", stack.server.url)


async def test_cancel(stack: Stack) -> None:
    run_id = (await stack.json("workflows", "run", "client_sleeper", "--arg", "seconds=3600"))[
        "run_id"
    ]
    assert (await stack.settled(run_id))["status"] == "suspended"
    result = await stack.pumping(
        stack.cli("runs", "cancel", run_id, "--reason", "not needed", "--wait", "--timeout", "60")
    )
    assert result.exit_code == 0, result.output
    assert f"Run {run_id} cancelled." in result.output
    status = await stack.json("runs", "status", run_id)
    assert status["status"] == "cancelled" and status["cancel_reason"] == "not needed"
    again = await stack.json("runs", "cancel", run_id)
    assert again == {
        "run_id": run_id,
        "cancelled": False,
        "status": "cancelled",
        "previous_status": "cancelled",
    }


async def test_hooks_resume_by_token_and_by_run(stack: Stack) -> None:
    run_id = (await stack.json("workflows", "run", "client_approval"))["run_id"]
    status = await stack.settled(run_id)
    assert status["status"] == "suspended" and status["waiting_for"] == "hook 'approval'"
    token = wf.TOKENS[run_id]
    bad = await stack.cli("hooks", "resume", token, "--payload", '{"ok": "perhaps"}')
    assert_one_line_error(bad, "does not match Approval")
    result = await stack.cli("hooks", "resume", token, "--payload", '{"ok": true, "by": "ann"}')
    assert result.exit_code == 0, result.output
    assert "Hook resumed" in result.output and run_id in result.output
    assert "Waiting for" not in result.output  # that payload is delivered
    status = await stack.settled(run_id, ended=True)
    assert status["result"] == {"approved": True, "by": "ann"}
    again = await stack.cli("hooks", "resume", token, "--payload", '{"ok": true, "by": "bob"}')
    assert_one_line_error(again)

    # By run id alone: the run's only pending hook, found in its history.
    other = (await stack.json("workflows", "run", "client_any_hook"))["run_id"]
    assert (await stack.settled(other))["waiting_for"] == "hook 'note'"
    data = await stack.json("hooks", "resume", "--run", other, "--payload", '{"n": 1}')
    assert data["run_id"] == other and data["waiting_for"] is None
    status = await stack.settled(other, ended=True)
    assert status["result"] == {"n": 1}


async def test_schedule_create_and_list(stack: Stack) -> None:
    result = await stack.cli(
        "schedules",
        "create",
        "client_add",
        "--cron",
        "0 9 * * *",
        "--args-json",
        "[40]",
        "--schedule-id",
        "daily",
    )
    assert result.exit_code == 0, result.output
    assert "Schedule created" in result.output and "cron 0 9 * * *" in result.output
    listed = await stack.cli("schedules", "list")
    row = next(line for line in listed.output.splitlines() if line.startswith("daily"))
    assert "client_add" in row and "active" in row
    assert [s["schedule_id"] for s in await stack.json("schedules", "list")] == ["daily"]
    assert (await stack.json("schedules", "pause", "daily"))["status"] == "paused"
    assert (await stack.json("schedules", "resume", "daily"))["status"] == "active"
    triggered = await stack.json("schedules", "trigger", "daily")
    status = await stack.settled(triggered["run_id"], ended=True)
    assert status["result"] == 41
    assert_one_line_error(await stack.cli("schedules", "show", "nope"), "Schedule not found: nope")


def test_unreachable_url_is_one_line_with_a_hint() -> None:
    url = closed_port_url()
    output = assert_one_line_error(
        invoke("--api-url", url, "runs", "list"), f"Cannot reach {url}", "pyworkflow dev"
    )
    assert "Hint:" in output
    assert_one_line_error(
        invoke("--api-url", "ftp://example.com", "runs", "list"),
        "must start with http:// or https://",
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("worker", ["--once"]),
        ("hooks list", []),
        ("runs children", ["run_x"]),
        ("schedules backfill", ["s", "--start", "2024-01-01", "--end", "2024-01-02"]),
    ],
)
def test_local_only_commands_refuse(name: str, args: list[str]) -> None:
    url = closed_port_url()  # never contacted
    output = assert_one_line_error(
        invoke("--api-url", url, *name.split(), *args),
        f"'pyworkflow {name}' needs local storage",
        url,
    )
    assert "Hint:" in output


def test_signing_defaults() -> None:
    assert should_sign("https://abc.execute-api.eu-west-1.amazonaws.com/prod", False)
    assert not should_sign("https://abc.execute-api.eu-west-1.amazonaws.com/prod", True)
    for url in ("http://127.0.0.1:8787", "http://localhost:8787", "http://[::1]:8787"):
        assert not should_sign(url, False)

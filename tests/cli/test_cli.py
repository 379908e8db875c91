"""The ``pyworkflow`` command line, driven through click's CliRunner on a SQLite file."""

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import pyworkflow
from pyworkflow.cli import main
from pyworkflow.core.clock import ManualClock

MODULE = "cli_test_flows"

FLOWS = '''
from pyworkflow import continue_as_new, hook, sleep, start_child_workflow, step, workflow

TOKENS = {}


@step
async def cli_add(a: int, b: int) -> int:
    return a + b


@step(max_retries=0)
async def cli_explode(x: int) -> int:
    raise ValueError(f"boom {x}")


@workflow(name="cli_adder", tags=["math"])
async def cli_adder(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return await cli_add(a, b)


@workflow(name="cli_napper")
async def cli_napper(x: int, nap: str = "1h") -> int:
    await sleep(nap)
    return await cli_add(x, 100)


@workflow(name="cli_approval")
async def cli_approval(x: int) -> dict:
    def remember(token):
        TOKENS[x] = token

    payload = await hook("approve", on_created=remember)
    return {"x": x, "payload": payload}


@workflow(name="cli_counter")
async def cli_counter(n: int, until: int = 2) -> int:
    if n < until:
        continue_as_new(n + 1, until)
    return n


@workflow(name="cli_failing")
async def cli_failing(x: int) -> int:
    return await cli_explode(x)


@workflow(name="cli_parent")
async def cli_parent(x: int) -> int:
    return await start_child_workflow(cli_adder, x, 10)
'''


@pytest.fixture(scope="module")
def flows_dir(tmp_path_factory):
    """The workflow module, written once and imported once per test session (registrations are
    process-wide, so the module must not be imported twice under different names)."""
    directory = tmp_path_factory.mktemp("flows")
    (directory / f"{MODULE}.py").write_text(FLOWS)
    sys.path.insert(0, str(directory))
    yield directory
    sys.path.remove(str(directory))


@pytest.fixture
def flows(flows_dir):
    return importlib.import_module(MODULE)


@pytest.fixture
def cli(flows_dir, tmp_path, monkeypatch):
    """``cli("runs", "list")`` runs ``pyworkflow --db tmp/db.sqlite -m cli_test_flows runs list``
    in ``tmp_path``; ``cli(..., module=None)`` leaves the module out."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYWORKFLOW_MODULE", raising=False)
    db = str(tmp_path / "db.sqlite")
    runner = CliRunner()

    def invoke(*args, module=MODULE, output=None, db_path=db):
        opts = ["--db", db_path]
        if module:
            opts += ["-m", module]
        if output:
            opts += ["--output", output]
        result = runner.invoke(main, [*opts, *args], catch_exceptions=False)
        assert "Traceback" not in result.output, result.output
        return result

    yield invoke
    pyworkflow.reset_config()


def as_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def started_run_id(cli, *args):
    data = as_json(cli("workflows", "run", *args, output="json"))
    return data["run_id"]


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], result.output
    assert len(result.output.strip().splitlines()) <= 2, result.output  # the error and a hint


# --- workflows ------------------------------------------------------------------------------------
def test_version(cli):
    result = cli("--version", module=None)
    assert result.exit_code == 0
    assert pyworkflow.__version__ in result.output


def test_workflows_list_and_info(cli):
    result = cli("workflows", "list")
    assert result.exit_code == 0, result.output
    for name in ("cli_adder", "cli_napper", "cli_approval", "cli_counter"):
        assert name in result.output
    assert "(a: int, b: int = 1)" in result.output

    listed = {w["name"]: w for w in as_json(cli("workflows", "list", output="json"))}
    assert listed["cli_adder"]["tags"] == ["math"]
    assert listed["cli_adder"]["module"] == MODULE

    result = cli("workflows", "info", "cli_adder")
    assert result.exit_code == 0, result.output
    assert "cli_adder(a: int, b: int = 1)" in result.output
    assert "Add two numbers." in result.output
    info = as_json(cli("workflows", "info", "cli_adder", output="json"))
    assert [p["name"] for p in info["parameters"]] == ["a", "b"]
    assert info["parameters"][0]["required"] is True


def test_run_with_arg_and_args_json(cli):
    result = cli("workflows", "run", "cli_adder", "--arg", "a=2", "--arg", "b=5")
    assert result.exit_code == 0, result.output
    assert "completed" in result.output
    assert "Result:   7" in result.output

    data = as_json(
        cli("workflows", "run", "cli_adder", "--args-json", '{"a": 1, "b": 2}', output="json")
    )
    assert data["status"] == "completed" and data["result"] == 3
    data = as_json(cli("workflows", "run", "cli_adder", "--args-json", "[4]", output="json"))
    assert data["result"] == 5


def test_run_idempotency_key_returns_the_same_run(cli):
    first = started_run_id(cli, "cli_adder", "--arg", "a=1", "--idempotency-key", "k-1")
    again = started_run_id(cli, "cli_adder", "--arg", "a=1", "--idempotency-key", "k-1")
    assert first == again


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--arg", "a=abc"], "does not fit int"),
        (["--args-json", "{bad"], "--args-json is not valid JSON"),
        (["--args-json", "3"], "must be a JSON object"),
        (["--arg", "no-equals-sign"], "is not key=value"),
        ([], "Arguments do not fit"),
    ],
)
def test_bad_arguments_give_one_line_error(cli, args, fragment):
    result = cli("workflows", "run", "cli_adder", *args)
    assert_one_line_error(result, fragment)


def test_unknown_workflow_names_modules_and_module_option(cli):
    result = cli("workflows", "run", "nope")
    assert result.exit_code == 1
    assert "Unknown workflow 'nope'" in result.output
    assert MODULE in result.output and "--module" in result.output

    result = cli("workflows", "info", "nope", module=None)
    assert result.exit_code == 1
    assert "no workflow module was imported" in result.output
    assert "--module" in result.output


def test_unimportable_module(cli):
    result = cli("workflows", "list", module="no_such_module_here")
    assert_one_line_error(result, "Cannot import workflow module 'no_such_module_here'")


def test_a_module_given_as_a_py_file_path_is_loaded(cli, tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "file_flows.py").write_text(
        "from pyworkflow import workflow\n\n\n@workflow(name='from_a_file')\n"
        "async def from_a_file() -> int:\n    return 7\n"
    )
    listed = as_json(cli("workflows", "list", module=str(folder / "file_flows.py"), output="json"))
    assert "from_a_file" in [w["name"] for w in listed]


def test_a_module_path_that_is_no_py_file_says_to_use_a_dotted_name(cli):
    result = cli("workflows", "list", module="./not_here.py")
    assert_one_line_error(result, "'./not_here.py' is not a module", "dotted module name")


def test_module_from_env_and_config_files(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PYWORKFLOW_MODULE", MODULE)
    assert "cli_adder" in cli("workflows", "list", module=None).output
    monkeypatch.delenv("PYWORKFLOW_MODULE")

    (tmp_path / "pyproject.toml").write_text(f'[tool.pyworkflow]\nmodule = "{MODULE}"\n')
    assert "cli_adder" in cli("workflows", "list", module=None).output
    (tmp_path / "pyproject.toml").unlink()

    (tmp_path / "pyworkflow.toml").write_text(f'module = "{MODULE}"\n')
    assert "cli_adder" in cli("workflows", "list", module=None).output


def test_failed_run_reports_run_and_error(cli):
    result = cli("workflows", "run", "cli_failing", "--arg", "x=3")
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "ValueError: boom 3" in result.output
    assert "run_" in result.output


# --- runs -----------------------------------------------------------------------------------------
def test_runs_list_status_and_logs(cli):
    run_id = started_run_id(cli, "cli_adder", "--arg", "a=20", "--arg", "b=22")

    result = cli("runs", "list")
    assert result.exit_code == 0 and run_id in result.output
    page = as_json(cli("runs", "list", "--workflow", "cli_adder", output="json"))
    assert [r["run_id"] for r in page["runs"]] == [run_id]
    assert page["runs"][0]["status"] == "completed"

    result = cli("runs", "status", run_id)
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "42" in result.output
    status = as_json(cli("runs", "status", run_id, output="json"))
    assert status["run_id"] == run_id and status["result"] == 42

    result = cli("runs", "logs", run_id)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    started = next(i for i, line in enumerate(lines) if "workflow.started" in line)
    completed = next(i for i, line in enumerate(lines) if "step.completed" in line)
    assert started < completed
    assert "cli_add -> 42" in lines[completed]
    events = as_json(cli("runs", "logs", run_id, output="json"))
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))

    only_steps = as_json(cli("runs", "logs", run_id, "--filter", "step", output="json"))
    assert {e["type"] for e in only_steps} == {"step.completed"}


def test_runs_list_pages_with_cursor(cli):
    ids = {started_run_id(cli, "cli_adder", "--arg", f"a={i}") for i in range(3)}
    result = cli("runs", "list", "--limit", "2")
    assert "--cursor" in result.output
    first = as_json(cli("runs", "list", "--limit", "2", output="json"))
    second = as_json(
        cli("runs", "list", "--limit", "2", "--cursor", first["next_cursor"], output="json")
    )
    assert second["next_cursor"] is None
    assert {r["run_id"] for r in first["runs"] + second["runs"]} == ids


def test_unknown_run_id(cli):
    for command in (
        ["runs", "status", "run_nope"],
        ["runs", "logs", "run_nope"],
        ["runs", "chain", "run_nope"],
        ["runs", "cancel", "run_nope"],
    ):
        result = cli(*command)
        assert result.exit_code == 1, command
        assert "Error: Workflow run not found: run_nope" in result.output
        assert "runs list" in result.output


def test_runs_chain_oldest_first(cli):
    run_id = started_run_id(cli, "cli_counter", "--arg", "n=0")
    chain = as_json(cli("runs", "chain", run_id, output="json"))
    assert len(chain) == 3
    assert chain[0]["run_id"] == run_id
    assert [r["status"] for r in chain] == ["continued_as_new", "continued_as_new", "completed"]
    assert chain[1]["continued_from_run_id"] == run_id

    middle = chain[1]["run_id"]
    result = cli("runs", "chain", middle)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Chain length: 3 run(s)" in out
    positions = [out.index(r["run_id"]) for r in chain]
    assert positions == sorted(positions)  # oldest first
    assert out.index("START") < out.index("#2 <--") < out.index("CURRENT")
    assert out.count("<--") == 1
    # each run's block names its own status
    blocks = [
        out[p : positions[i + 1]] if i + 1 < len(positions) else out[p:]
        for i, p in enumerate(positions)
    ]
    assert ["completed" in b for b in blocks] == [False, False, True]
    assert out.count("continued as new") == 2


def test_output_option_after_the_subcommand(cli):
    run_id = started_run_id(cli, "cli_adder", "--arg", "a=1")
    logs = cli("runs", "logs", run_id, "-o", "json")
    assert logs.exit_code == 0, logs.output
    assert [e["type"] for e in json.loads(logs.stdout)][0] == "workflow.started"
    status = cli("runs", "status", run_id, "--output", "json")
    assert json.loads(status.stdout)["result"] == 2


def test_cancel_suspended_run(cli):
    run_id = started_run_id(cli, "cli_approval", "--arg", "x=1")
    assert as_json(cli("runs", "status", run_id, output="json"))["status"] == "suspended"

    result = cli("runs", "cancel", run_id, "--reason", "no longer needed")
    assert result.exit_code == 0, result.output
    assert "cancelled" in result.output
    status = as_json(cli("runs", "status", run_id, output="json"))
    assert status["status"] == "cancelled"
    assert status["cancel_reason"] == "no longer needed"

    again = as_json(cli("runs", "cancel", run_id, output="json"))
    assert again == {
        "run_id": run_id,
        "cancelled": False,
        "status": "cancelled",
        "previous_status": "cancelled",
    }
    # a run that ended takes no hook payload
    result = cli("hooks", "resume", "--run", run_id, "--name", "approve", "--payload", "1")
    assert_one_line_error(result, "already ended")


def test_cancel_needs_the_workflow_module(cli, monkeypatch):
    import pyworkflow.cli.config as cli_config

    run_id = started_run_id(cli, "cli_approval", "--arg", "x=2")
    # As in a process that never imported the module (this one already has, for other tests).
    monkeypatch.setattr(cli_config, "get_workflow", lambda name: None)
    result = cli("runs", "cancel", run_id, module=None)
    assert result.exit_code == 1
    assert "is not defined here" in result.output and "--module" in result.output
    assert as_json(cli("runs", "status", run_id, output="json"))["cancel_requested"] is False


def test_runs_children(cli):
    run_id = started_run_id(cli, "cli_parent", "--arg", "x=1")
    assert as_json(cli("runs", "status", run_id, output="json"))["status"] == "completed"
    children = as_json(cli("runs", "children", run_id, output="json"))
    assert len(children) == 1 and children[0]["workflow_name"] == "cli_adder"
    result = cli("runs", "children", run_id)
    assert children[0]["run_id"] in result.output


# --- hooks ----------------------------------------------------------------------------------------
def test_hooks_list_and_resume_by_run_and_name(cli):
    run_id = started_run_id(cli, "cli_approval", "--arg", "x=7")

    result = cli("hooks", "list", "--run", run_id)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if run_id in line)
    assert "hook_approve_0" in row and "approve" in row and "pending" in row
    hooks = as_json(cli("hooks", "list", "--status", "pending", output="json"))
    assert [h["run_id"] for h in hooks] == [run_id]
    assert "token_hash" not in hooks[0]

    result = cli(
        "hooks", "resume", "--run", run_id, "--name", "approve", "--payload", '{"approved": true}'
    )
    assert result.exit_code == 0, result.output
    assert "completed" in result.output
    status = as_json(cli("runs", "status", run_id, output="json"))
    assert status["status"] == "completed"
    assert status["result"] == {"x": 7, "payload": {"approved": True}}
    assert as_json(cli("hooks", "list", "--status", "pending", output="json")) == []


def test_hooks_resume_by_token_and_only_pending_hook(cli, flows):
    run_id = started_run_id(cli, "cli_approval", "--arg", "x=8")
    data = as_json(cli("hooks", "resume", flows.TOKENS[8], "--payload", '"ok"', output="json"))
    assert data["run_id"] == run_id and data["run_status"] == "completed"
    assert data["result"] == {"x": 8, "payload": "ok"}

    run_id = started_run_id(cli, "cli_approval", "--arg", "x=9")
    data = as_json(cli("hooks", "resume", "--run", run_id, output="json"))  # its only hook
    assert data["result"] == {"x": 9, "payload": None}


def test_hooks_resume_errors(cli):
    run_id = started_run_id(cli, "cli_approval", "--arg", "x=10")
    assert_one_line_error(
        cli("hooks", "resume", "--run", run_id, "--payload", "{oops"), "not valid JSON"
    )
    assert_one_line_error(
        cli("hooks", "resume", "--run", run_id, "--name", "other"), "Hook not found"
    )
    assert_one_line_error(cli("hooks", "resume", "not-a-token"), "Hook not found")
    assert cli("hooks", "resume").exit_code == 2  # usage: neither token nor --run
    assert cli("hooks", "resume", "tok", "--run", run_id).exit_code == 2


def test_hooks_fail_by_run_and_name_raises_hook_failed_error_in_the_run(cli):
    run_id = started_run_id(cli, "cli_approval", "--arg", "x=11")
    args = ("--run", run_id, "--name", "approve", "--type", "Declined", "-m", "no budget")
    data = as_json(cli("hooks", "fail", *args, output="json"))
    assert (data["status"], data["run_status"]) == ("failed", "failed")
    status = as_json(cli("runs", "status", run_id, output="json"))
    assert status["error_type"] == "HookFailedError"
    assert status["error"] == "Declined: no budget"
    assert cli("hooks", "fail", "--run", run_id).exit_code == 2  # --type is required


def test_hooks_heartbeat_by_token(cli, flows):
    run_id = started_run_id(cli, "cli_approval", "--arg", "x=12")
    data = as_json(cli("hooks", "heartbeat", flows.TOKENS[12], output="json"))
    assert (data["run_id"], data["status"]) == (run_id, "alive")
    assert_one_line_error(cli("hooks", "heartbeat", "not-a-token"), "Hook not found")


# --- worker and waiting ---------------------------------------------------------------------------
def test_worker_once_resumes_a_due_sleep(cli):
    clock = ManualClock()
    pyworkflow.configure(clock=clock)
    run_id = started_run_id(cli, "cli_napper", "--arg", "x=1", "--arg", "nap=30s")
    assert as_json(cli("runs", "status", run_id, output="json"))["status"] == "suspended"

    result = cli("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "Nothing was due" in result.output
    assert as_json(cli("runs", "status", run_id, output="json"))["status"] == "suspended"

    clock.advance(31)
    result = cli("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "drove 1 run(s): 1 completed" in result.output
    assert "worker stopped" in result.output
    status = as_json(cli("runs", "status", run_id, output="json"))
    assert status["status"] == "completed" and status["result"] == 101

    stats = as_json(cli("worker", "--once", output="json"))
    assert stats["driven"] == 0 and stats["passes"] == 1


def test_worker_stops_cleanly_on_ctrl_c(cli, monkeypatch):
    import pyworkflow.cli.worker as worker_cli

    async def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(worker_cli, "run_worker", interrupted)
    result = cli("worker", "--poll-interval", "0.05")
    assert result.exit_code == 0, result.output
    assert "worker stopped" in result.output


def test_run_wait_keeps_driving_until_the_end(cli):
    result = cli(
        "workflows",
        "run",
        "cli_napper",
        "--arg",
        "x=2",
        "--arg",
        "nap=200ms",
        "--wait",
        "--timeout",
        "10",
    )
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "102" in result.output


def test_run_wait_names_the_hook_at_once_and_a_timeout_exits_non_zero(cli):
    timed_out = cli(
        "workflows",
        "run",
        "cli_approval",
        "--arg",
        "x=11",
        "--wait",
        "--timeout",
        "0.2",
        output="json",
    )
    assert timed_out.exit_code == 1, timed_out.output
    data = json.loads(timed_out.stdout)
    assert data["status"] == "suspended" and data["waiting_for"] == "hook 'approve'"
    assert data["timed_out"] is True

    result = cli("workflows", "run", "cli_approval", "--arg", "x=12", "--wait", "--timeout", "5")
    # the hook is named (with the command that resumes it) as soon as the run waits ...
    notice = [line for line in result.output.splitlines() if "waits for hook 'approve'" in line]
    assert notice and "pyworkflow hooks resume --run run_" in notice[0], result.output
    # ... and the timeout still ends the wait, as a failure
    assert result.exit_code == 1 and "Timed out after 5s" in result.output, result.output


# --- schedules ------------------------------------------------------------------------------------
def test_schedules_lifecycle(cli):
    created = as_json(
        cli(
            "schedules",
            "create",
            "cli_adder",
            "--interval",
            "1h",
            "--arg",
            "a=5",
            "--schedule-id",
            "s-cli",
            output="json",
        )
    )
    assert created["schedule_id"] == "s-cli" and created["status"] == "active"
    assert "s-cli" in cli("schedules", "list").output
    assert "every 1h" in cli("schedules", "show", "s-cli").output

    assert as_json(cli("schedules", "pause", "s-cli", output="json"))["status"] == "paused"
    assert as_json(cli("schedules", "resume", "s-cli", output="json"))["status"] == "active"

    triggered = as_json(cli("schedules", "trigger", "s-cli", output="json"))
    assert triggered["status"] == "completed"
    status = as_json(cli("runs", "status", triggered["run_id"], output="json"))
    assert status["result"] == 6

    assert cli("schedules", "delete", "s-cli").exit_code == 0
    assert as_json(cli("schedules", "show", "s-cli", output="json"))["status"] == "deleted"
    assert_one_line_error(cli("schedules", "show", "nope"), "Schedule not found: nope")
    assert cli("schedules", "create", "cli_adder").exit_code == 2  # neither --cron nor --interval


# --- entry points ---------------------------------------------------------------------------------
def test_python_dash_m_pyworkflow(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-m", "pyworkflow", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for group in ("workflows", "runs", "hooks", "schedules", "worker"):
        assert group in proc.stdout


def test_unexpected_error_is_one_line(cli, monkeypatch):
    import pyworkflow.cli.runs as runs_cli

    def broken(coro):
        coro.close()
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runs_cli, "run_async", broken)
    assert_one_line_error(cli("runs", "list"), "RuntimeError: disk on fire")


def test_malformed_config_file(cli, tmp_path):
    (tmp_path / "pyworkflow.toml").write_text(textwrap.dedent("module = \n"))
    assert_one_line_error(cli("workflows", "list", module=None), "pyworkflow.toml")

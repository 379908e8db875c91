"""``pyworkflow runs show RUN_ID`` (a run's timeline in the terminal and as JSON) and the progress
``workflows run --wait`` shows while it waits.

Histories are recorded on SQLite by the testing kit's environment (a ``ManualClock`` that jumps to
each timer), so every offset and duration below is exact; then the CLI reads the same file, or,
for the remote side, the stack's API (``tests/client/apiserver``) does.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

import pyworkflow
from pyworkflow import continue_as_new, hook, patched, sleep, start_child_workflow, step, workflow
from pyworkflow.cli import main
from pyworkflow.cli.output import fmt_time
from pyworkflow.config import get_config
from pyworkflow.core.clock import ManualClock
from pyworkflow.core.events import Event, EventType
from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from pyworkflow.testing import WorkflowEnvironment
from tests.aws.conftest import (  # noqa: F401 - fixtures
    Aws,
    aws,
    aws_env,
    dynamodb_local,
    moto,
    worker,
)
from tests.cli.test_remote import Stack, stack  # noqa: F401 - fixture
from tests.client.conftest import api, storage_kind  # noqa: F401 - fixtures

MODULE = __name__
FLAKY_CALLS: list[int] = []


@step(at_most_once=True)  # records step.started: its duration is measured between two events
async def show_slow(x: int) -> int:
    clock = get_config().clock
    assert isinstance(clock, ManualClock)
    clock.advance(2)
    return x + 1


@step(max_retries=2, retry_delay=1)
async def show_flaky(x: int) -> int:
    FLAKY_CALLS.append(x)
    if len(FLAKY_CALLS) == 1:
        raise RuntimeError("first try fails")
    return x * 2


@step
async def show_square(x: int) -> int:
    return x * x


@step(max_retries=1, retry_delay=5)
async def show_broken() -> None:
    raise ValueError("always broken")


@workflow(name="show_kid")
async def show_kid(x: int) -> int:
    return await show_square(x)


@workflow(name="show_tour")
async def show_tour(x: int) -> dict:
    a = await show_slow(x)  # op 0: 2 s
    b = await show_flaky(a)  # op 1: fails, retried 1 s later
    await sleep("1h")  # op 2
    answer = await hook("approve")  # op 3: answered 20 minutes later
    c = await start_child_workflow(show_kid, b)  # op 4
    squares = await pyworkflow.map(show_square, [1, 2])  # op 5: items 5.0.0 and 5.1.0
    return {
        "a": a,
        "b": b,
        "c": c,
        "answer": answer,
        "squares": squares.values,
        "patched": patched("show-change"),
    }  # op 8


@workflow(name="show_counter")
async def show_counter(n: int) -> int:
    await show_square(n)
    if n < 2:
        continue_as_new(n + 1)
    return n


@workflow(name="show_failing")
async def show_failing() -> None:
    await sleep(30)
    await show_broken()


@workflow(name="show_waiter")
async def show_waiter() -> object:
    await show_square(3)
    return await hook("approve")


@workflow(name="show_named")
async def show_named() -> object:
    await sleep("1m", name="cool_off")
    await start_child_workflow(show_kid, 1, name="billing")
    return (await pyworkflow.parallel(show_square(1), show_square(2), names=["a", "b"])).results


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    FLAKY_CALLS.clear()
    yield
    pyworkflow.reset_config()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # no pyworkflow.toml of the repository's
    monkeypatch.delenv("PYWORKFLOW_MODULE", raising=False)
    monkeypatch.delenv("PYWORKFLOW_API_URL", raising=False)
    return str(tmp_path / "runs.db")


def record(db: str, scenario: Any) -> Any:
    """Run ``scenario(env)`` in a testing-kit environment whose runs live in ``db``."""

    async def go() -> Any:
        storage = SQLiteStorageBackend(db)
        try:
            async with WorkflowEnvironment(storage=storage) as env:
                return await scenario(env)
        finally:
            await storage.close()

    return asyncio.run(go())


def cli(db: str, *args: str, output: str | None = None) -> Result:
    opts = ["--db", db] + (["--output", output] if output else [])
    result = CliRunner().invoke(main, [*opts, *args], catch_exceptions=False)
    assert "Traceback" not in result.output, result.output
    return result


def show_json(db: str, *args: str) -> Any:
    result = cli(db, "runs", "show", *args, output="json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def value(output: str, key: str) -> str:
    """What the header says for ``key`` ("Status", "Waiting for"), whatever the padding."""
    found = re.findall(rf"^{re.escape(key)}:\s+(.*)$", output, re.MULTILINE)
    assert len(found) == 1, output
    return str(found[0]).rstrip()


def section(output: str, title: str) -> list[str]:
    """The lines of a section ("Operations", "Children"...), up to the next blank line."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title + " ("))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1 : end]


def row(output: str, label: str, title: str = "Operations") -> str:
    """The line of a section's table whose first column is ``label`` (op "1", "5.0.0")."""
    lines = [line for line in section(output, title) if line.split(" ", 1)[0] == label]
    assert len(lines) == 1, output
    return lines[0]


# --- a finished run ---------------------------------------------------------------------------
async def _tour(env: WorkflowEnvironment) -> tuple[str, Any]:
    t0 = env.now
    run_id = await env.start(show_tour, 3)
    await env.wait_for_hook(run_id, "approve")
    await env.sleep("20m")
    await env.resume_hook(run_id, "approve", {"ok": True})
    await env.result(run_id)
    return run_id, t0


def test_show_a_finished_run_op_by_op(db: str) -> None:
    run_id, t0 = record(db, _tour)
    result = cli(db, "runs", "show", run_id)
    assert result.exit_code == 0, result.output
    out = result.output

    assert f"Run {run_id}" in out and value(out, "Workflow") == "show_tour"
    assert value(out, "Status") == "completed" and value(out, "Duration") == "1h20m"
    assert value(out, "Started") == fmt_time(t0)
    assert value(out, "Finished") == fmt_time(t0 + timedelta(seconds=4803))
    assert value(out, "Args") == "[3]" and '"answer": {"ok": true}' in value(out, "Result")
    assert "Operations (8) over 1h20m" in out

    slow = row(out, "0")
    assert "step" in slow and "show_slow" in slow and "+0ms" in slow and " 2s " in slow
    flaky = row(out, "1")
    assert "+2s" in flaky and " 1s " in flaky and "completed" in flaky and "1 retry" in flaky
    nap = row(out, "2")
    assert "sleep" in nap and "+3s" in nap and "1h00m" in nap and "slept" in nap
    assert f"until {fmt_time(t0 + timedelta(seconds=3603))}" in nap
    approve = row(out, "3")
    assert "hook" in approve and "+1h00m" in approve and "waited 20m00s" in approve
    assert "received" in approve
    kid = row(out, "4")
    assert "child" in kid and "show_kid" in kid and f"run {run_id}-c4" in kid
    assert "item 0 of fan-out 5" in row(out, "5.0.0")
    assert "item 1 of fan-out 5" in row(out, "5.1.0")
    patch = row(out, "8")
    assert "patch" in patch and "show-change" in patch and "applied" in patch
    # bars: the hour-long sleep fills most of the width, the first step a sliver at the left
    assert nap.rstrip().endswith("█" * 17) and slow.rstrip().endswith(" █")

    assert "Children (1)" in out
    assert row(out, f"{run_id}-c4", "Children").split()[1:4] == ["show_kid", "4", "completed"]
    assert "Continue-as-new chain" not in out and "Events (" not in out


def test_show_names_labelled_operations_and_fan_out_items(db: str) -> None:
    async def scenario(env: WorkflowEnvironment) -> str:
        run_id = await env.start(show_named)
        await env.result(run_id)
        return run_id

    run_id = record(db, scenario)
    out = cli(db, "runs", "show", run_id).output
    assert "cool_off (sleep)" in row(out, "0")
    assert "billing (show_kid)" in row(out, "1")
    assert "item 0 'a' of fan-out 2" in row(out, "2.0.0")
    assert "item 1 'b' of fan-out 2" in row(out, "2.1.0")
    ops = show_json(db, run_id)["operations"]
    assert [(o["label"], o["item"]) for o in ops] == [
        ("cool_off", None),
        ("billing", None),
        (None, "a"),
        (None, "b"),
    ]


def test_show_as_json_has_the_same_data(db: str) -> None:
    run_id, t0 = record(db, _tour)
    data = show_json(db, run_id)
    assert data["run"]["run_id"] == run_id and data["run"]["status"] == "completed"
    assert data["duration"] == 4803.0 and data["total"] == 4803.0
    assert data["waiting_for"] is None and "events" not in data
    ops = {o["path"] or str(o["op"]): o for o in data["operations"]}
    assert list(ops) == ["0", "1", "2", "3", "4", "5.0.0", "5.1.0", "8"]
    assert [(ops[k]["kind"], ops[k]["start"], ops[k]["duration"]) for k in "0123"] == [
        ("step", 0.0, 2.0),
        ("step", 2.0, 1.0),
        ("sleep", 3.0, 3600.0),
        ("hook", 3603.0, 1200.0),
    ]
    assert (ops["1"]["attempts"], ops["1"]["retries"]) == (2, 1)
    assert ops["2"]["wait_until"] == (t0 + timedelta(seconds=3603)).isoformat()
    assert ops["4"]["child_run_id"] == f"{run_id}-c4" and ops["4"]["outcome"] == "completed"
    assert ops["5.1.0"]["fan_out"] == {"op": 5, "item": 1}
    assert (ops["8"]["kind"], ops["8"]["outcome"]) == ("patch", "applied")
    assert data["children"] == [
        {
            "op": 4,
            "name": "show_kid",
            "run_id": f"{run_id}-c4",
            "outcome": "completed",
            "status": "completed",
            "path": None,
        }
    ]
    assert data["chain"] == [{"run_id": run_id, "status": "completed"}]
    assert data["previous_run_id"] is None and data["next_run_id"] is None

    with_events = show_json(db, run_id, "--events")
    types = [e["type"] for e in with_events["events"]]
    assert types[0] == "workflow.started" and types[-1] == "workflow.completed"
    assert types.count("step.retrying") == 1


# --- runs still going, chains, failures ---------------------------------------------------------
def test_show_a_waiting_run_says_what_it_waits_for(db: str) -> None:
    async def scenario(env: WorkflowEnvironment) -> tuple[str, str]:
        waiting = await env.start(show_tour, 1)
        await env.wait_for_hook(waiting, "approve")
        napping = await env.start(show_failing)  # sleeps 30 s first
        return napping, waiting

    napping, waiting = record(db, scenario)
    out = cli(db, "runs", "show", waiting).output
    assert value(out, "Status") == "suspended" and value(out, "Waiting for") == "hook 'approve'"
    assert value(out, "Finished") == "-" and value(out, "Duration").endswith("(ongoing)")
    hook_row = row(out, "3")
    assert "waiting" in hook_row and "waiting for its payload" in hook_row
    assert hook_row.rstrip().endswith("░")  # open: drawn to the end, lighter
    data = show_json(db, waiting)
    assert data["waiting_for"] == "hook 'approve'" and data["duration"] is None
    assert data["operations"][-1]["end"] is None and data["operations"][-1]["duration"] is None

    out = cli(db, "runs", "show", napping).output
    assert value(out, "Waiting for").startswith("sleep until ") and value(out, "Wakes at")
    assert "waiting" in row(out, "0") and "until " in row(out, "0")


def test_show_the_continue_as_new_chain(db: str) -> None:
    async def scenario(env: WorkflowEnvironment) -> list[WorkflowRun]:
        first = await env.start(show_counter, 0)
        await env.result(first)
        chain: list[WorkflowRun] = await env.storage.get_workflow_chain(first)
        return chain

    first, middle, last = (r.run_id for r in record(db, scenario))
    out = cli(db, "runs", "show", middle).output
    assert value(out, "Status") == "continued_as_new"
    assert "Continue-as-new chain (3 runs)" in out
    assert f"Previous run: {first}" in out and f"Next run:     {last}" in out
    lines = out.splitlines()
    listed = [line.split()[1] for line in lines if line.strip()[:2] in ("1.", "2.", "3.")]
    assert listed == [first, middle, last]
    assert f"2. {middle} continued_as_new  <- this run" in out
    data = show_json(db, last)
    assert data["previous_run_id"] == middle and data["next_run_id"] is None
    assert [c["run_id"] for c in data["chain"]] == [first, middle, last]
    assert data["chain"][-1]["status"] == "completed"


def test_show_a_failed_run_with_its_events(db: str) -> None:
    async def scenario(env: WorkflowEnvironment) -> str:
        run_id = await env.start(show_failing)
        await env.wait(run_id)
        return str(run_id)

    run_id = record(db, scenario)
    result = cli(db, "runs", "show", run_id, "--events")
    out = result.output
    assert result.exit_code == 0, out
    assert value(out, "Status") == "failed"
    assert value(out, "Error") == "ValueError: always broken"
    broken = row(out, "1")
    # the retry waited 5 s after the first attempt failed (at +30 s)
    assert "failed" in broken and "+30s" in broken and " 5s " in broken and "1 retry" in broken
    assert "ValueError: always broken" in broken
    assert "Events (6)" in out
    assert [line.split()[:3] for line in section(out, "Events")[1:]] == [
        ["1", "+0ms", "workflow.started"],
        ["2", "+0ms", "sleep.started"],
        ["3", "+30s", "sleep.completed"],
        ["4", "+30s", "step.retrying"],
        ["5", "+35s", "step.failed"],
        ["6", "+35s", "workflow.failed"],
    ]


def test_show_an_unknown_run_is_one_line(db: str) -> None:
    result = cli(db, "runs", "show", "run_nope")
    assert result.exit_code == 1
    assert result.output.startswith("Error: Workflow run not found: run_nope"), result.output


# --- workflows run --wait ---------------------------------------------------------------------
def test_run_wait_prints_progress_lines_off_a_terminal(db: str) -> None:
    result = cli(db, "-m", MODULE, "workflows", "run", "show_waiter", "--wait", "--timeout", "0.2")
    assert result.exit_code == 1, result.output  # the wait timed out
    progress = [line for line in result.stderr.splitlines() if "step(s) done" in line]
    # once per change, not once per look
    assert len(progress) == 1, result.stderr
    assert "suspended · 1 step(s) done · waiting for hook 'approve'" in progress[0]
    assert value(result.stdout, "Status") == "suspended"
    assert "step(s) done" not in result.stdout

    quiet = cli(
        db,
        "-m",
        MODULE,
        "workflows",
        "run",
        "show_waiter",
        "--wait",
        "--timeout",
        "0.2",
        output="json",
    )
    assert quiet.stderr == "" and json.loads(quiet.stdout)["status"] == "suspended"
    assert quiet.exit_code == 1 and json.loads(quiet.stdout)["timed_out"] is True


def _run(status: RunStatus) -> WorkflowRun:
    from datetime import UTC, datetime

    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    return WorkflowRun(
        run_id="run_x", workflow_name="w", status=status, created_at=t0, updated_at=t0
    )


def _tracker(*types: EventType) -> Any:
    from datetime import UTC, datetime

    from pyworkflow.cli.watch import WaitTracker

    tracker = WaitTracker()
    tracker.feed(
        [
            Event(
                event_id=f"e{i}",
                run_id="run_x",
                type=t,
                timestamp=datetime(2030, 1, 1, tzinfo=UTC),
                sequence=i,
                data={"op": i, "name": "approve", "hook_id": "h", "result": 1},
            )
            for i, t in enumerate(types, 1)
        ]
    )
    return tracker


def test_progress_on_a_terminal_is_a_live_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyworkflow.cli.watch as watch

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    monkeypatch.setattr(watch, "console", lambda stderr=False: terminal)
    with watch.Progress(show=True) as progress:
        assert progress.live
        progress.update(
            _run(RunStatus.SUSPENDED), _tracker(EventType.STEP_COMPLETED, EventType.HOOK_CREATED)
        )
    drawn = screen.getvalue()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    assert "run_x suspended · 1 step(s) done · waiting for hook 'approve'" in plain
    assert "\x1b[" in drawn  # drawn and then cleared in place, not printed as lines

    screen.truncate(0)
    with watch.Progress(show=False) as progress:
        progress.update(_run(RunStatus.RUNNING), _tracker())
    assert screen.getvalue() == ""


# --- through a stack's API --------------------------------------------------------------------
async def test_show_through_the_api(stack: Stack) -> None:  # noqa: F811
    ran = await stack.pumping(
        stack.cli(
            "workflows",
            "run",
            "client_chain",
            "--arg",
            "i=0",
            "--wait",
            "--timeout",
            "60",
            output="json",
        )
    )
    chain = await stack.json("runs", "chain", json.loads(ran.stdout)["run_id"])
    first, middle, last = (r["run_id"] for r in chain)

    result = await stack.cli("runs", "show", middle)
    out = result.output
    assert result.exit_code == 0, out
    assert value(out, "Workflow") == "client_chain"
    assert value(out, "Status") == "continued_as_new"
    assert "Operations (1)" in out and "add" in row(out, "0") and "completed" in row(out, "0")
    assert f"Previous run: {first}" in out and f"Next run:     {last}" in out
    assert f"2. {middle} continued_as_new  <- this run" in out

    waiting = (await stack.json("workflows", "run", "client_approval"))["run_id"]
    assert (await stack.settled(waiting))["status"] == "suspended"
    data = await stack.json("runs", "show", waiting, "--events")
    assert data["waiting_for"] == "hook 'approval'"
    (approval,) = data["operations"]
    assert (approval["kind"], approval["outcome"], approval["end"]) == ("hook", "waiting", None)
    assert [e["type"] for e in data["events"]] == ["workflow.started", "hook.created"]
    out = (await stack.cli("runs", "show", waiting)).output
    assert value(out, "Waiting for") == "hook 'approval'"

    missing = await stack.cli("runs", "show", "run_nope")
    assert missing.exit_code == 1 and "Workflow run not found: run_nope" in missing.output


def test_precise_times_carry_a_date_when_not_today():
    now = datetime.now(UTC)
    assert len(fmt_time(now, precise=True)) == len("12:34:56.789")
    yesterday = now - timedelta(days=1, hours=1)
    text = fmt_time(yesterday, precise=True)
    assert text.startswith(yesterday.astimezone().strftime("%Y-%m-%d ")) and text.endswith(
        yesterday.astimezone().strftime("%H:%M:%S.%f")[:-3]
    )

"""``pyworkflow replay FILE|RUN_ID``: recorded histories against the current code, in CI style.
Nothing runs and nothing is written; exit 1 names the first nondeterminism."""

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import pyworkflow
from pyworkflow import get_workflow_events, get_workflow_run, resume, sleep, start, step, workflow
from pyworkflow.cli import main
from pyworkflow.core.clock import ManualClock
from pyworkflow.runtime.replay import load_history, replay_history
from pyworkflow.storage import SQLiteStorageBackend

calls: Counter[str] = Counter()
NAME = "replayed_order"


@step
async def act(tag: str) -> str:
    calls[tag] += 1
    return tag


@step
async def charge_v2(tag: str) -> str:
    calls[tag] += 1
    return tag


def deploy(version: str):
    @workflow(name=NAME, version=version)
    async def flow(order_id: str) -> list[str]:
        out = [await act("reserve")]
        if version == "renamed":
            out.append(await charge_v2("charge"))  # breaking: another step at op #1
        elif version == "patched":
            if pyworkflow.patched("charge-v2"):
                out.append(await charge_v2("charge"))
            else:
                out.append(await act("charge"))
        else:
            out.append(await act("charge"))
        await sleep("1h")
        out.append(await act("ship"))
        if version == "extra-tail":
            out.append(await act("survey"))
        return out

    return flow


@pytest.fixture
def db(tmp_path):
    calls.clear()
    path = tmp_path / "runs.db"
    clock = ManualClock()
    pyworkflow.configure(storage=SQLiteStorageBackend(path), clock=clock)
    yield path, clock
    deploy("v1")


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def export(db_path: Path, run_id: str, out: Path) -> Path:
    result = cli("--db", str(db_path), "-o", "json", "runs", "logs", run_id)
    assert result.exit_code == 0, result.output
    out.write_text(result.output)
    return out


def test_an_unchanged_workflow_replays_ok_without_running_or_writing(db, tmp_path):
    db_path, _ = db
    run_id = asyncio.run(start(deploy("v1"), "o-1"))  # waits in the sleep
    history = export(db_path, run_id, tmp_path / "order.json")
    before = asyncio.run(get_workflow_run(run_id))
    ran = dict(calls)

    result = cli("--db", str(db_path), "replay", str(history), run_id)
    assert result.exit_code == 0, result.output
    assert result.output.count("ok") >= 2
    assert "replay ended: waiting" in result.output
    assert "recorded with version v1, code version v1" in result.output  # from the run record
    assert dict(calls) == ran  # no step ran
    after = asyncio.run(get_workflow_run(run_id))
    assert after.version == before.version and after.status == before.status
    assert len(asyncio.run(get_workflow_events(run_id))) == len(load_history(history.read_text()))


def test_a_breaking_change_exits_1_with_the_op_and_both_sides(db, tmp_path):
    db_path, _ = db
    run_id = asyncio.run(start(deploy("v1"), "o-2"))
    history = export(db_path, run_id, tmp_path / "order.json")
    deploy("renamed")
    result = cli("--db", str(db_path), "replay", str(history))
    assert result.exit_code == 1, result.output
    assert "nondeterminism" in result.output
    assert "at operation #1" in result.output
    assert "expected (history): step 'act'" in result.output
    assert "found (code):       step 'charge_v2'" in result.output
    data = json.loads(cli("--db", str(db_path), "-o", "json", "replay", str(history)).output)
    assert data["ok"] is False
    assert data["divergence"]["op"] == "1"


def test_a_patched_change_replays_old_histories_ok(db, tmp_path):
    db_path, clock = db
    run_id = asyncio.run(start(deploy("v1"), "o-3"))
    history = export(db_path, run_id, tmp_path / "order.json")
    deploy("patched")
    result = cli("--db", str(db_path), "replay", str(history))
    assert result.exit_code == 0, result.output


def test_steps_compare_by_name_and_arguments_do_not_matter(db, tmp_path):
    """A step's identity is its kind, name and position: the same step called with another
    argument is not a divergence (its recorded result is returned), so this edit passes."""
    db_path, _ = db
    run_id = asyncio.run(start(deploy("v1"), "o-4"))
    history = load_history(export(db_path, run_id, tmp_path / "h.json").read_text())
    report = asyncio.run(replay_history(history))
    assert report.ok and report.operations == 3  # reserve, charge, sleep


def test_a_finished_run_must_end_the_same_way(db, tmp_path):
    db_path, clock = db
    flow = deploy("v1")

    async def finish() -> str:
        run_id = await start(flow, "o-5")
        clock.advance(3600)
        await resume(run_id)
        return run_id

    run_id = asyncio.run(finish())
    assert cli("--db", str(db_path), "replay", run_id).exit_code == 0
    deploy("extra-tail")  # one more step before returning: a finished run cannot have it
    result = cli("--db", str(db_path), "replay", run_id)
    assert result.exit_code == 1, result.output
    assert "the recorded run ended (workflow.completed)" in result.output


def test_unknown_workflow_and_bad_file_are_one_line_errors(db, tmp_path):
    db_path, _ = db
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "events"}')
    result = CliRunner().invoke(main, ["--db", str(db_path), "replay", str(bad)])
    assert result.exit_code != 0 and "is not a recorded history" in result.output
    missing = CliRunner().invoke(main, ["--db", str(db_path), "replay", str(tmp_path / "x.json")])
    assert "No such history file" in missing.output
    other = [
        {
            "event_id": "e1",
            "run_id": "r1",
            "type": "workflow.started",
            "timestamp": "2030-01-01T00:00:00Z",
            "sequence": 1,
            "data": {"workflow_name": "nobody_defines_this", "args": [], "kwargs": {}},
        }
    ]
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps(other))
    result = CliRunner().invoke(main, ["--db", str(db_path), "replay", str(unknown)])
    assert result.exit_code != 0 and "nobody_defines_this" in result.output

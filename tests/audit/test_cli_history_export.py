"""Versioning in CI (README, and the hint ``pyworkflow replay`` prints on a bad file): "export a
history with ``pyworkflow runs logs RUN_ID -o json``". That exact command is refused — ``-o`` is
an option of the top-level group only (``pyworkflow -o json runs logs RUN_ID`` works) — so the
documented export step of the replay check fails with "No such option '-o'"
(``pyworkflow/cli/app.py`` / ``pyworkflow/cli/runs.py``; text in README.md and
``pyworkflow/cli/replay.py``)."""

import asyncio
import json

from click.testing import CliRunner

import pyworkflow
from pyworkflow import start, step, workflow
from pyworkflow.cli.app import main
from pyworkflow.storage import SQLiteStorageBackend


@step
async def ce_add(x: int) -> int:
    return x + 1


@workflow
async def ce_flow(x: int) -> int:
    return await ce_add(x)


def test_the_documented_history_export_command_works(tmp_path, monkeypatch):
    db = tmp_path / "runs.db"
    pyworkflow.configure(storage=SQLiteStorageBackend(db))
    run_id = asyncio.run(start(ce_flow, 1))
    pyworkflow.reset_config()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--db", str(db), "runs", "logs", run_id, "-o", "json"])
    # Now: exit code 2, "Error: No such option '-o'."
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["type"] == "workflow.started"

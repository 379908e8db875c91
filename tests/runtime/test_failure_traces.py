"""Failed step attempts and failed runs record where they were raised, in the history and on
the run; ``runs show``, ``runs logs`` and ``workflows run --wait`` print it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import pyworkflow
from pyworkflow.cli import main
from pyworkflow.storage import SQLiteStorageBackend

FLOWS = """
from pyworkflow import step, workflow


@step(max_retries=1, retry_delay=0)
async def trace_charge(card: str) -> str:
    raise ValueError(f"card {card} declined")


@workflow(name="trace_order")
async def trace_order(card: str) -> str:
    return await trace_charge(card)
"""


def line_of(text: str) -> int:
    return FLOWS.splitlines().index(text) + 1


@pytest.fixture
def flows(tmp_path, monkeypatch):
    (tmp_path / "trace_flows.py").write_text(FLOWS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYWORKFLOW_MODULE", raising=False)
    import importlib

    module = importlib.import_module("trace_flows")
    yield tmp_path / "trace_flows.py", module
    pyworkflow.reset_config()


async def test_failed_attempts_and_the_failed_run_record_where_they_were_raised(flows, tmp_path):
    path, module = flows
    pyworkflow.configure(storage=SQLiteStorageBackend(str(tmp_path / "t.db")))
    with pytest.raises(ValueError) as raised:
        await pyworkflow.start(module.trace_order, "4242")
    run_id = raised.value.__notes__[0].split()[2]
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.error_traceback is not None
    workflow_line = line_of("    return await trace_charge(card)")
    assert f'File "{path}", line {workflow_line}, in trace_order' in run.error_traceback
    traces = {
        e.type.value: e.data["traceback"]
        for e in await pyworkflow.get_workflow_events(run_id)
        if "traceback" in e.data
    }
    assert set(traces) == {"step.retrying", "step.failed", "workflow.failed"}
    for kind in ("step.retrying", "step.failed"):
        step_line = line_of('    raise ValueError(f"card {card} declined")')
        assert f'File "{path}", line {step_line}, in trace_charge' in traces[kind]
        assert traces[kind].endswith("ValueError: card 4242 declined")


def test_the_cli_prints_where_a_run_and_its_attempts_failed(flows, tmp_path):
    path, _ = flows
    runner = CliRunner()
    opts = ["--db", str(tmp_path / "cli.db"), "-m", "trace_flows"]
    ran = runner.invoke(main, [*opts, "workflows", "run", "trace_order", "--arg", "card=a1"])
    assert ran.exit_code == 1, ran.output
    assert "Stack trace" in ran.output and "in trace_order" in ran.output
    as_json = runner.invoke(
        main, [*opts, "-o", "json", "workflows", "run", "trace_order", "--arg", "card=a2"]
    )
    data = json.loads(as_json.stdout)
    assert "in trace_order" in data["error_traceback"]

    run_id = data["run_id"]
    shown = runner.invoke(main, [*opts, "runs", "show", run_id])
    assert "Stack trace" in shown.output and f"{path.name}" in shown.output, shown.output
    logs = runner.invoke(main, [*opts, "runs", "logs", run_id])
    assert "step.retrying trace_charge (attempt 1)" in logs.output, logs.output
    assert "step.failed trace_charge (attempt 2)" in logs.output
    assert logs.output.count("in trace_charge") == 2

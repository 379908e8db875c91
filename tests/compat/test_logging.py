"""configure_logging() and get_logger() with pyworkflow-engine 0.1.9's signatures."""

import inspect
import json
import logging

import pytest

from pyworkflow import configure_logging, get_logger
from pyworkflow.observability.logging import bind_workflow_context


@pytest.fixture(autouse=True)
def _restore_root():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_configure_logging_signature_matches_engine():
    params = inspect.signature(configure_logging).parameters
    assert list(params) == ["level", "log_file", "json_logs", "show_context"]
    assert params["level"].default == "INFO" and params["json_logs"].default is False


def test_configure_logging_json_lines_carry_bound_context(capsys):
    configure_logging(level="DEBUG", json_logs=True)
    get_logger("compat.app").bind(run_id="run_1").info("step {} done", "charge", step_id="s1")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    record = lines[-1]
    assert record["message"] == "step charge done"
    assert record["level"] == "INFO"
    assert record["extra"]["run_id"] == "run_1" and record["extra"]["step_id"] == "s1"


def test_configure_logging_level_filters(capsys):
    configure_logging(level="WARNING")
    get_logger().info("hidden")
    get_logger().warning("shown")
    out = capsys.readouterr().out
    assert "shown" in out and "hidden" not in out


def test_configure_logging_text_shows_context_and_writes_file(tmp_path, capsys):
    log_file = tmp_path / "logs" / "wf.log"
    configure_logging(level="INFO", log_file=str(log_file))
    bind_workflow_context("run_9", "order").info("started")
    assert "run_id=run_9 workflow_name=order" in capsys.readouterr().out
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "started" in log_file.read_text()

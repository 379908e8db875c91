"""``pyworkflow init NAME`` scaffolds a project that passes its own tests out of the box: the
workflow in-process, and through the local AWS stack (DynamoDB Local, moto, both Lambdas)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pyworkflow.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_init_scaffolds_a_project_that_passes_its_own_tests(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "hello"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "hello"
    for name in (
        "workflows.py",
        "tests/test_workflows.py",
        "template.yaml",
        "README.md",
        "requirements.txt",
        "requirements-dev.txt",
        "pyworkflow.toml",
        "pytest.ini",
    ):
        assert (project / name).is_file(), name
    template = (project / "template.yaml").read_text()
    assert "Default: workflows" in template and "pyworkflow.handlers.worker.handler" in template
    # the published distribution, pinned: what sam build and any other machine can install
    from pyworkflow import __version__

    requirements = (project / "requirements.txt").read_text()
    assert f"pyworkflow-durable=={__version__}" in requirements
    assert "file://" not in requirements and "moto" not in requirements
    dev_requirements = (project / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev_requirements
    assert f"pyworkflow-durable[local]=={__version__}" in dev_requirements
    assert "pytest==" in dev_requirements and "pytest-asyncio==" in dev_requirements
    assert "pip install -r requirements-dev.txt" in (project / "README.md").read_text()

    # the same command again refuses to overwrite the project
    again = CliRunner().invoke(main, ["init", "hello"])
    assert again.exit_code != 0 and "not empty" in again.output

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYWORKFLOW_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout


def test_init_from_a_local_checkout_requires_it_by_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "hello", "--from", str(REPO)])
    assert result.exit_code == 0, result.output
    uri = REPO.resolve().as_uri()
    assert f"pyworkflow-durable @ {uri}" in (tmp_path / "hello/requirements.txt").read_text()
    assert (
        f"pyworkflow-durable[local] @ {uri}"
        in (tmp_path / "hello/requirements-dev.txt").read_text()
    )


def test_init_rejects_a_bad_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "9 lives"])
    assert result.exit_code != 0 and "Invalid project name" in result.output
    assert not any(tmp_path.iterdir())

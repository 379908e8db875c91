"""The pytest plugin, used as users would: a pytest run in a fresh directory, with the plugin
required by name (no installation) or found through the pytest11 entry point pyproject.toml
declares (an installed distribution is imitated by its dist-info on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

USER_TEST = """
from datetime import UTC, datetime, timedelta

import pytest

from pyworkflow import sleep, workflow
{plugins}

@workflow
async def probe_week() -> str:
    await sleep("7d")
    return "rested"


async def test_uses_the_fixture(workflow_env):
    start = workflow_env.now
    assert await workflow_env.run(probe_week) == "rested"
    assert workflow_env.now - start == timedelta(days=7)


@pytest.mark.workflow_env(start=datetime(2031, 5, 1, tzinfo=UTC), skip_time=False)
async def test_marker_options(workflow_env):
    assert workflow_env.now == datetime(2031, 5, 1, tzinfo=UTC)
    run_id = await workflow_env.start(probe_week)
    await workflow_env.sleep("7d")
    assert (await workflow_env.get_run(run_id)).status == "completed"


def test_each_test_gets_its_own_environment_and_config_comes_back():
    import pyworkflow

    assert pyworkflow.get_config().clock is None
"""


def run_pytest(tmp_path: Path, extra_path: list[Path] | None = None) -> str:
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS")
    }
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [ROOT, *(extra_path or [])])
    env["PYWORKFLOW_DB"] = str(tmp_path / "default.db")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def test_required_by_name_in_the_rootdir_conftest(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["pyworkflow.testing.plugin"]\n')
    (tmp_path / "test_user.py").write_text(USER_TEST.format(plugins=""))
    assert "3 passed" in run_pytest(tmp_path)


def test_required_by_name_in_a_test_module(tmp_path):
    (tmp_path / "test_user.py").write_text(
        USER_TEST.format(plugins='pytest_plugins = ["pyworkflow.testing.plugin"]')
    )
    assert "3 passed" in run_pytest(tmp_path)


def test_found_through_the_declared_entry_point(tmp_path):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    points = declared["pytest11"]
    assert list(points.values()) == ["pyworkflow.testing.plugin"]
    site = tmp_path / "site"
    dist = site / "pyworkflow_probe-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pyworkflow-probe\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(
        "[pytest11]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
    )
    project = tmp_path / "project"
    project.mkdir()
    # also named by pytest_plugins: the entry point's name is the module's, so it loads once
    (project / "test_user.py").write_text(
        USER_TEST.format(plugins='pytest_plugins = ["pyworkflow.testing.plugin"]')
    )
    (project / "test_plain.py").write_text(
        "async def test_fixture_without_any_import(workflow_env):\n"
        "    assert workflow_env.timers == []\n"
    )
    assert "4 passed" in run_pytest(project, [site])


def test_without_pytest_asyncio_the_fixture_says_what_is_missing(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["pyworkflow.testing.plugin"]\n')
    (tmp_path / "test_user.py").write_text("def test_sync(workflow_env):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no pytest-asyncio (nor anything else)
    # a module that fails to import stands for pytest-asyncio not being installed
    (tmp_path / "pytest_asyncio.py").write_text("raise ImportError('not installed')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "needs pytest-asyncio: pip install pytest-asyncio" in out

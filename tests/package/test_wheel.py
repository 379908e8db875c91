"""The built wheel, as a user's environment receives it: one top-level package (``pyworkflow``),
no generic ``handlers`` or ``infra`` package to collide with a user's own modules, and what
``template.yaml`` names — the Lambda handlers — importable from the wheel alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_only_the_pyworkflow_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"pyworkflow"}
    assert "pyworkflow/handlers/worker.py" in names and "pyworkflow/handlers/api.py" in names
    # the template pyworkflow dev and the scaffold use is package data, not a repository path
    assert "pyworkflow/scaffold/template.yaml" in names


def test_the_template_handlers_import_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(wheel).extractall(tmp_path)
    script = (
        "import importlib, json, pyworkflow\n"
        "from pyworkflow.dev.template import TEMPLATE_PATH, load_template\n"
        "template = load_template(TEMPLATE_PATH)\n"
        "handlers = [f['Properties']['Handler'] for f in template['Resources'].values()\n"
        "            if f['Type'] == 'AWS::Serverless::Function']\n"
        "for handler in handlers:\n"
        "    module, _, name = handler.rpartition('.')\n"
        "    assert callable(getattr(importlib.import_module(module), name)), handler\n"
        "print(json.dumps({'pyworkflow': pyworkflow.__file__, 'template': str(TEMPLATE_PATH),\n"
        "                  'handlers': handlers}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["pyworkflow"].startswith(str(tmp_path))
    assert seen["template"].startswith(str(tmp_path))
    assert sorted(seen["handlers"]) == [
        "pyworkflow.handlers.api.handler",
        "pyworkflow.handlers.worker.handler",
    ]


def test_sdist_and_wheel_build_and_pass_twine_check(tmp_path: Path) -> None:
    """What a release uploads: ``python -m build`` (sdist, then the wheel from it) and
    ``twine check`` (metadata and the README as PyPI renders it)."""
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    dists = sorted(p.name for p in tmp_path.iterdir())
    assert [d.rsplit(".", 1)[-1] for d in dists] == ["whl", "gz"], dists
    assert all(name.startswith("pyworkflow_durable-") for name in dists), dists
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, tmp_path.iterdir())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2, checked.stdout

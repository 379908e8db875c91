"""Fixtures for the compatibility tests.

``engine_sdist`` is pyworkflow-engine 0.1.9's own sdist, the specification these tests check
against. It is downloaded from PyPI once (``pip download``) into the repository's
``.cache/pyworkflow-engine-0.1.9/`` and unpacked there; later runs reuse it. Nothing of it is
copied into the repository.
"""

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

# The testing kit's fixture (workflow_env), as tests/testing takes it.
from pyworkflow.testing.plugin import workflow_env  # noqa: F401

ENGINE_VERSION = "0.1.9"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / f"pyworkflow-engine-{ENGINE_VERSION}"
SDIST_NAME = f"pyworkflow_engine-{ENGINE_VERSION}"


def _download_sdist(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    archive = target / f"{SDIST_NAME}.tar.gz"
    if archive.exists():
        return archive
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"pyworkflow-engine=={ENGINE_VERSION}",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--dest",
        str(target),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"Downloading pyworkflow-engine {ENGINE_VERSION}'s sdist from PyPI timed out "
            "(300s). These tests need it: check the network or PyPI, or put "
            f"{SDIST_NAME}.tar.gz in {target} by hand.",
            pytrace=False,
        )
    if done.returncode != 0 or not archive.exists():
        pytest.fail(
            f"Could not download pyworkflow-engine {ENGINE_VERSION}'s sdist from PyPI "
            f"({' '.join(command)}), which the compatibility tests read as their "
            f"specification. Is PyPI reachable? You can also put {SDIST_NAME}.tar.gz in "
            f"{target} by hand.\npip said:\n{done.stdout[-2000:]}{done.stderr[-2000:]}",
            pytrace=False,
        )
    return archive


@pytest.fixture(scope="session")
def engine_sdist() -> Path:
    """The unpacked root of 0.1.9's sdist (with ``pyworkflow/`` and ``examples/``)."""
    root = CACHE_DIR / SDIST_NAME
    if (root / "pyworkflow" / "__init__.py").exists():
        return root
    archive = _download_sdist(CACHE_DIR)
    unpacking = CACHE_DIR / "unpacking"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacking, filter="data")
    (unpacking / SDIST_NAME).rename(root)
    unpacking.rmdir()
    return root

"""``pyworkflow init NAME``: a new project that runs on SQLite at once and deploys with SAM.

The serverless counterpart of pyworkflow-engine's ``setup``/``quickstart``. The files come from
``pyworkflow/scaffold`` (package data); its ``template.yaml`` is pyworkflow's own stack (a link to
the repository's, so the two never drift), with the workflow module defaulting to the project's.
"""

from __future__ import annotations

import re
from importlib import metadata, resources
from pathlib import Path

import click

from pyworkflow.cli.errors import CliError
from pyworkflow.cli.output import console, info

#: pyworkflow's distribution on PyPI (``pyworkflow`` there is an unrelated package); the import
#: name is ``pyworkflow``
DISTRIBUTION = "pyworkflow-durable"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
#: the template's default workflow module, replaced by the project's
_REPO_MODULE = "Default: examples.order_processing"


def _test_requirements() -> list[str]:
    """pytest and pytest-asyncio as pinned by pyworkflow's own dev extra (one list of pins)."""
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        requires = []
    pins = [
        r.split(";")[0].strip()
        for r in requires
        if 'extra == "dev"' in r and r.startswith(("pytest==", "pytest-asyncio=="))
    ]
    return sorted(pins) or ["pytest", "pytest-asyncio"]


def pyworkflow_requirement(source: Path | None = None, extras: str = "") -> str:
    """How the new project's requirements name pyworkflow: the published distribution at this
    version (what ``sam build`` and every other machine can install), or, with ``--from PATH``,
    a checkout or wheel on this machine (for developing pyworkflow itself)."""
    name = DISTRIBUTION + (f"[{extras}]" if extras else "")
    if source is not None:
        return f"{name} @ {source.resolve().as_uri()}"
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from pyworkflow import __version__ as version
    return f"{name}=={version}"


def render(name: str, source: Path | None = None) -> dict[str, str]:
    """The project's files (path -> text)."""
    scaffold = resources.files("pyworkflow.scaffold")

    def read(file: str) -> str:
        return scaffold.joinpath(file).read_text(encoding="utf-8")

    template = read("template.yaml")
    if _REPO_MODULE not in template:
        raise CliError("pyworkflow's template.yaml has no WorkflowModule default to replace")
    files = {
        "workflows.py": read("workflows.py.tmpl").format(name=name),
        "tests/test_workflows.py": read("test_workflows.py.tmpl").format(name=name),
        "tests/__init__.py": "",
        "README.md": read("README.md.tmpl").format(name=name),
        "template.yaml": template.replace(_REPO_MODULE, "Default: workflows", 1),
        "pytest.ini": read("pytest.ini"),
        "pyworkflow.toml": read("pyworkflow.toml"),
        "requirements.txt": (
            "# The Lambda functions' dependencies (sam build installs them) and yours.\n"
            f"{pyworkflow_requirement(source)}\n"
        ),
        "requirements-dev.txt": (
            "# This machine's: the tests and `pyworkflow dev`'s local AWS stack (moto).\n"
            "-r requirements.txt\n"
            f"{pyworkflow_requirement(source, extras='local')}\n"
            + "".join(f"{r}\n" for r in _test_requirements())
        ),
        ".gitignore": ".venv/\n.aws-sam/\n.pyworkflow/\n.cache/\n__pycache__/\n",
    }
    return files


@click.command("init")
@click.argument("name")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty directory.")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, path_type=Path),
    help="Require pyworkflow from this checkout or wheel instead of PyPI (developing "
    "pyworkflow itself; such a project builds on this machine only).",
)
def init(name: str, force: bool, source: Path | None) -> None:
    """Create a project NAME/: workflows, tests, a SAM template and a README.

    \b
      pyworkflow init hello && cd hello
      pyworkflow workflows run greet --arg name=world --wait
    """
    if not _NAME.match(Path(name).name):
        raise CliError(
            f"Invalid project name {name!r}: use letters, digits, - and _, starting with a letter"
        )
    target = Path(name)
    if target.exists() and any(target.iterdir()) and not force:
        raise CliError(f"{target} exists and is not empty: pick another name or pass --force")
    for relative, text in render(target.name, source).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        info(f"created {path}")
    console().print(
        f"\n[bold]Next:[/bold]\n  cd {target}\n"
        "  python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt\n"
        "  .venv/bin/pyworkflow workflows run greet --arg name=world --wait\n"
        "  .venv/bin/python -m pytest\n"
        "  .venv/bin/pyworkflow dev          # the AWS stack on this machine\n"
        "  sam build && sam deploy --guided  # the real one"
    )

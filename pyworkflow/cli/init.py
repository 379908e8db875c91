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

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
#: the template's default workflow module, replaced by the project's
_REPO_MODULE = "Default: examples.order_processing"


def pyworkflow_requirement() -> str:
    """How the new project's ``requirements.txt`` names pyworkflow: the local checkout it was
    installed from (an editable or path install), else the installed version."""
    try:
        dist = metadata.distribution("pyworkflow")
    except metadata.PackageNotFoundError:
        return "pyworkflow"
    direct = dist.read_text("direct_url.json")
    if direct:
        import json

        url = json.loads(direct).get("url", "")
        if url.startswith("file://"):
            return f"pyworkflow @ {url}"
    return f"pyworkflow=={dist.version}"


def render(name: str) -> dict[str, str]:
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
            f"{pyworkflow_requirement()}\n"
        ),
        ".gitignore": ".venv/\n.aws-sam/\n.pyworkflow/\n.cache/\n__pycache__/\n",
    }
    return files


@click.command("init")
@click.argument("name")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty directory.")
def init(name: str, force: bool) -> None:
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
    for relative, text in render(target.name).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        info(f"created {path}")
    console().print(
        f"\n[bold]Next:[/bold]\n  cd {target}\n"
        "  python3 -m venv .venv && .venv/bin/pip install -r requirements.txt pytest "
        "pytest-asyncio\n"
        "  .venv/bin/pyworkflow workflows run greet --arg name=world --wait\n"
        "  .venv/bin/python -m pytest\n"
        "  .venv/bin/pyworkflow dev          # the AWS stack on this machine\n"
        "  sam build && sam deploy --guided  # the real one"
    )

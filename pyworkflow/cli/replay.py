"""``pyworkflow replay FILE|RUN_ID``: replay a recorded history against the current code.

Nothing runs and nothing is written (see ``pyworkflow.runtime.replay``). Exit 0 when the code
still fits the history, 1 at the first nondeterminism, so CI can replay saved histories before a
deploy::

    pyworkflow runs logs RUN_ID -o json > tests/histories/order-v1.json
    pyworkflow -m myapp.workflows replay tests/histories/order-v1.json
"""

from __future__ import annotations

from pathlib import Path

import click

from pyworkflow.cli.config import MODULE_HINT, run_async, state
from pyworkflow.cli.errors import CliError
from pyworkflow.cli.output import console, print_json
from pyworkflow.core.events import Event
from pyworkflow.core.models import WorkflowRun
from pyworkflow.exceptions import WorkflowNotFoundError
from pyworkflow.runtime.replay import ReplayReport, load_history, replay_history


@click.command("replay")
@click.argument("sources", nargs=-1, required=True, metavar="FILE|RUN_ID...")
def replay(sources: tuple[str, ...]) -> None:
    """Replay recorded histories against the current code, without running steps or writing.

    Each source is a JSON file of events (pyworkflow runs logs RUN_ID -o json) or the id of a
    run in the database (or behind --api-url). Exits 1 at the first nondeterminism.
    """
    st = state()
    st.load_modules()
    reports: list[ReplayReport] = []
    for source in sources:
        reports.append(run_async(_replay_one(source, _read_file(source))))
    if st.json:
        print_json(
            [r.model_dump(mode="json") for r in reports]
            if len(reports) > 1
            else reports[0].model_dump(mode="json")
        )
    else:
        for source, report in zip(sources, reports, strict=True):
            _show(source, report)
    if not all(r.ok for r in reports):
        raise SystemExit(1)


def _read_file(source: str) -> list[Event] | None:
    """The history in file ``source``; None when ``source`` names a run instead."""
    path = Path(source)
    if path.suffix.lower() != ".json" and not path.is_file():
        return None
    if not path.is_file():
        raise CliError(f"No such history file: {source}")
    try:
        return load_history(path.read_text())
    except ValueError as exc:  # JSON and pydantic errors are ValueErrors
        raise CliError(
            f"{source} is not a recorded history: {exc}",
            "export one with: pyworkflow runs logs RUN_ID -o json > FILE",
        ) from None


async def _replay_one(source: str, history: list[Event] | None) -> ReplayReport:
    st = state()
    run: WorkflowRun | None = None
    if history is None:
        run = await st.backend.get_run(source)
        history = await st.backend.events(source)
        if not history:
            raise CliError(f"Run {source} has no recorded events")
    try:
        return await replay_history(history, run=run)
    except WorkflowNotFoundError:
        name = history[0].data.get("workflow_name")
        raise CliError(
            f"Workflow {name!r} is not defined in the imported modules "
            f"({', '.join(st.imported) or 'none imported'})",
            MODULE_HINT,
        ) from None


def _show(source: str, report: ReplayReport) -> None:
    out = console()
    versions = ""
    if report.recorded_version or report.code_version:
        versions = (
            f", recorded with version {report.recorded_version or '-'}, code version "
            f"{report.code_version or '-'}"
        )
    head = (
        f"{source}: workflow {report.workflow_name}, run {report.run_id}, "
        f"{report.events} events, {report.operations} operations{versions}"
    )
    if report.ok:
        out.print(f"[green]ok[/green]  {head}", highlight=False)
        out.print(
            f"    replay ended: {report.ending.value}"
            + (f" ({report.detail})" if report.detail else ""),
            highlight=False,
            markup=False,
        )
        return
    d = report.divergence
    out.print(f"[red]nondeterminism[/red]  {head}", highlight=False)
    if d is None:  # replay_history sets one whenever the report is not ok
        out.print(
            f"    {report.detail or 'the replay did not match the history'}",
            highlight=False,
            markup=False,
        )
        return
    out.print(
        f"    at operation #{d.op}" if d.op is not None else "    at the run's end", highlight=False
    )
    out.print(f"    expected (history): {d.expected}", highlight=False, markup=False)
    out.print(f"    found (code):       {d.found}", highlight=False, markup=False)
    out.print(f"    {d.message}", highlight=False, markup=False)

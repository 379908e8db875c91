"""The run list (``GET /ui``): filters by status and workflow, a page of runs newest first, and
a link to the next page carrying the API's cursor."""

from __future__ import annotations

from pyworkflow.core.models import RunStatus, WorkflowRun
from pyworkflow.handlers.ui_templates.html import (
    Html,
    fmt_seconds,
    fmt_time,
    h,
    join,
    page,
    query_href,
    run_href,
    status_badge,
)


def _options(values: list[str], selected: str | None, any_label: str) -> Html:
    opts = [h('<option value="">{}</option>', any_label)]
    for value in values:
        opts.append(
            h(
                '<option value="{v}"{sel}>{v}</option>',
                v=value,
                sel=Html(" selected") if value == selected else Html(""),
            )
        )
    return join(opts)


def _filters(status: str | None, workflow: str | None, limit: int, workflows: list[str]) -> Html:
    names = sorted(set(workflows) | ({workflow} if workflow else set()))
    return h(
        '<form class="filters" method="get" action="">'
        '<label>Status<select name="status" id="filter-status">{statuses}</select></label>'
        '<label>Workflow<select name="workflow" id="filter-workflow">{workflows}</select>'
        "</label>"
        '<label>Per page<input type="number" name="limit" min="1" max="1000" value="{limit}">'
        '</label><button type="submit" id="apply">Apply</button>'
        '<a href="ui">Clear</a></form>',
        statuses=_options([s.value for s in RunStatus], status, "any status"),
        workflows=_options(names, workflow, "any workflow"),
        limit=limit,
    )


def _duration(run: WorkflowRun) -> str:
    if run.started_at is None:
        return "—"
    if run.completed_at is None:
        return "running"
    return fmt_seconds((run.completed_at - run.started_at).total_seconds())


def _row(run: WorkflowRun) -> Html:
    links = []
    if run.parent_run_id:
        links.append(
            h(
                'child of <a href="{}">{}</a>',
                run_href(run.parent_run_id, from_list=True),
                run.parent_run_id,
            )
        )
    if run.continued_from_run_id:
        links.append(
            h(
                'continues <a href="{}">{}</a>',
                run_href(run.continued_from_run_id, from_list=True),
                run.continued_from_run_id,
            )
        )
    if run.continued_to_run_id:
        links.append(
            h(
                'continued as <a href="{}">{}</a>',
                run_href(run.continued_to_run_id, from_list=True),
                run.continued_to_run_id,
            )
        )
    return h(
        '<tr class="run" data-run-id="{id}" data-status="{status}">'
        '<td class="mono"><a class="run-link" href="{href}">{id}</a></td><td>{workflow}</td>'
        '<td>{badge}</td><td>{created}</td><td class="num">{duration}</td>'
        '<td class="muted">{links}</td></tr>',
        id=run.run_id,
        status=run.status.value,
        href=run_href(run.run_id, from_list=True),
        workflow=run.workflow_name,
        badge=status_badge(run.status.value),
        created=fmt_time(run.created_at),
        duration=_duration(run),
        links=join(links, "; "),
    )


def render_run_list(
    runs: list[WorkflowRun],
    *,
    status: str | None,
    workflow: str | None,
    limit: int,
    cursor: str | None,
    next_cursor: str | None,
    workflows: list[str],
) -> Html:
    filters = {"status": status, "workflow": workflow, "limit": limit}
    pager = []
    if cursor:
        pager.append(h('<a id="first-page" href="{}">⇤ first page</a>', query_href(filters)))
    if next_cursor:
        pager.append(
            h(
                '<a id="next-page" href="{}">next page →</a>',
                query_href({**filters, "cursor": next_cursor}),
            )
        )
    if runs:
        table = h(
            '<table id="runs"><thead><tr><th>Run</th><th>Workflow</th><th>Status</th>'
            '<th>Created</th><th class="num">Duration</th><th>Links</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            join(_row(r) for r in runs),
        )
    else:
        table = Html('<p class="muted" id="no-runs">No runs match.</p>')
    body = h(
        '<h1>Runs</h1>{filters}{table}<nav class="pager">{pager}</nav>',
        filters=_filters(status, workflow, limit, workflows),
        table=table,
        pager=join(pager),
    )
    return page("Runs", body)

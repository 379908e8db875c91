"""``pyworkflow --db URL``: the CLI on PostgreSQL/MySQL (workflows run, runs list, worker's
storage) and ``pyworkflow db migrate``."""

from __future__ import annotations

import pytest

from tests.cli.test_cli import MODULE, as_json, cli, flows, flows_dir  # noqa: F401 - fixtures
from tests.storage.sql_servers import SQL_SERVERS, database_url


@pytest.mark.parametrize("kind", SQL_SERVERS)
def test_db_url_runs_workflows_on_the_server(cli, flows, kind, tmp_path) -> None:  # noqa: F811
    url = database_url(kind, tmp_path)
    migrated = cli("db", "migrate", db_path=url, output="json")
    assert as_json(migrated)["schema_version"] == 1
    started = as_json(
        cli("workflows", "run", "cli_adder", "--arg", "a=2", db_path=url, output="json")
    )
    assert started["status"] == "completed" and started["result"] == 3
    listed = as_json(cli("runs", "list", db_path=url, output="json"))
    assert [r["run_id"] for r in listed["runs"]] == [started["run_id"]]


def test_db_url_password_is_not_shown(cli, tmp_path) -> None:  # noqa: F811
    result = cli("db", "migrate", db_path="postgresql://app:s3cret@127.0.0.1:1/x", module=None)
    assert result.exit_code == 1
    assert "s3cret" not in result.output and "app:***@" in result.output, result.output
    assert "Cannot reach database" in result.output

"""``pyworkflow db rekey`` on a DynamoDB table (DynamoDB Local) written with the keys of the code
before write-sharding: the dry run counts, the pass re-keys, the listings then find the runs,
and a second pass finds everything current. The CLI only translates: the logic and its cases
are tests/storage/test_dynamodb_rekey.py's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import pyworkflow
from pyworkflow import config
from pyworkflow.cli.app import main
from pyworkflow.core.models import RunStatus
from tests.storage.conftest import dynamodb_endpoint, dynamodb_table_name, make_dynamodb
from tests.storage.test_dynamodb_rekey import RUNS, old_run_item


@pytest.fixture
def rekey_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        config.ENV_STORAGE: "dynamodb",
        config.ENV_DYNAMODB_TABLE: dynamodb_table_name(tmp_path),
        config.ENV_DYNAMODB_ENDPOINT: dynamodb_endpoint(),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("PYWORKFLOW_MODULE", raising=False)
    monkeypatch.delenv("PYWORKFLOW_DB", raising=False)
    pyworkflow.reset_config()
    yield CliRunner()
    pyworkflow.reset_config()


async def _old_table(tmp_path: Path) -> None:
    storage = make_dynamodb(tmp_path)
    await storage.ensure_table()
    client = await storage._db()
    for run in RUNS:
        await client.put_item(TableName=storage.table_name, Item=old_run_item(run))
    await storage.close()


async def _completed(tmp_path: Path) -> set[str]:
    storage = make_dynamodb(tmp_path)
    try:
        page = await storage.list_runs_page(status=RunStatus.COMPLETED)
        return {r.run_id for r in page.items}
    finally:
        await storage.close()


def _rekey(runner: CliRunner, *args: str) -> dict[str, object]:
    result = runner.invoke(main, ["--output", "json", "db", "rekey", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_db_rekey_dry_runs_then_rekeys_an_old_table(rekey_cli: CliRunner, tmp_path: Path) -> None:
    import asyncio

    asyncio.run(_old_table(tmp_path))
    assert asyncio.run(_completed(tmp_path)) == set()
    dry = _rekey(rekey_cli, "--dry-run")
    assert dry["dry_run"] is True and dry["rekeyed"] == len(RUNS)
    assert asyncio.run(_completed(tmp_path)) == set()
    done = _rekey(rekey_cli, "--segments", "2")
    assert done["rekeyed"] == len(RUNS) and done["finished"] is True
    assert asyncio.run(_completed(tmp_path)) == {"r_done", "r_child"}
    again = _rekey(rekey_cli)
    assert again["rekeyed"] == 0 and again["current"] == len(RUNS)


def test_db_rekey_refuses_a_database_without_index_keys(
    rekey_cli: CliRunner, tmp_path: Path
) -> None:
    result = rekey_cli.invoke(main, ["--db", str(tmp_path / "x.db"), "db", "rekey"])
    assert result.exit_code == 1 and "rekey is for DynamoDB tables" in result.output

"""The ``storage`` fixture: every contract test runs once per backend.

DynamoDB runs against AWS's DynamoDB Local (``pyworkflow/dev/dynamodb_local.py``): one JVM per test
session, started on first use, and one fresh table per test so tests never see each other's
data. Missing Java or npm makes those tests fail with the install hint, never skip.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioboto3
import pytest

from pyworkflow.dev.dynamodb_local import DynamoDBLocal, DynamoDBLocalError
from pyworkflow.dev.dynamodb_local import start as start_dynamodb_local
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.dynamodb import DynamoDBStorageBackend
from pyworkflow.storage.file import FileStorageBackend
from pyworkflow.storage.memory import InMemoryStorageBackend
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.storage.sql_servers import SQL_SERVERS, make_sql_backend

BACKENDS = ["memory", "sqlite", "file", "dynamodb", *SQL_SERVERS]
PERSISTENT_BACKENDS = ["sqlite", "file", "dynamodb", *SQL_SERVERS]

_dynamodb_local: DynamoDBLocal | None = None


def dynamodb_endpoint() -> str:
    """The session's DynamoDB Local, started on first call (so runs that select no DynamoDB
    test never start a JVM); stopped by ``_stop_dynamodb_local`` at the end of the session."""
    global _dynamodb_local
    if _dynamodb_local is None:
        try:
            _dynamodb_local = start_dynamodb_local()
        except DynamoDBLocalError as exc:
            pytest.fail(str(exc), pytrace=False)
    return _dynamodb_local.endpoint_url


@pytest.fixture(scope="session", autouse=True)
def _stop_dynamodb_local() -> Iterator[None]:
    yield
    global _dynamodb_local
    if _dynamodb_local is not None:
        _dynamodb_local.stop()
        _dynamodb_local = None


def dynamodb_session() -> aioboto3.Session:
    """Dummy credentials: DynamoDB Local checks none, and the machine's must never be used."""
    return aioboto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )


def dynamodb_table_name(tmp_path: Path) -> str:
    """One table per test directory: same path, same table (so reopening finds the data)."""
    return "pw-" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:20]


def make_dynamodb(
    tmp_path: Path, *, create_table: bool = True, retention_days: float | None = 30
) -> DynamoDBStorageBackend:
    return DynamoDBStorageBackend(
        dynamodb_table_name(tmp_path),
        endpoint_url=dynamodb_endpoint(),
        session=dynamodb_session(),
        create_table=create_table,
        retention_days=retention_days,
    )


def make_backend(kind: str, tmp_path: Path) -> StorageBackend:
    """A fresh backend of ``kind``; persistent ones live under ``tmp_path`` (same path, same
    data, so calling this twice opens the same store)."""
    if kind == "memory":
        return InMemoryStorageBackend()
    if kind == "sqlite":
        return SQLiteStorageBackend(tmp_path / "db" / "pyworkflow.db")
    if kind == "file":
        return FileStorageBackend(tmp_path / "data")
    if kind == "dynamodb":
        return make_dynamodb(tmp_path)
    if kind in SQL_SERVERS:
        return make_sql_backend(kind, tmp_path)
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageBackend]:
    backend = make_backend(request.param, tmp_path)
    if isinstance(backend, DynamoDBStorageBackend):
        await backend.ensure_table()  # before the test, so its request counts start clean
        backend.requests.clear()
    yield backend
    if isinstance(backend, DynamoDBStorageBackend):
        await backend.delete_table()  # keeps the in-memory JVM small
    await backend.close()

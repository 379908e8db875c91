"""The session's PostgreSQL and MariaDB servers, for every suite that runs on them.

Each is started on first use (so a run that selects no SQL-server test starts none) by
``pyworkflow.dev.sql_servers`` and stopped when the test process exits. A missing binary
fails the test with the ``apt-get install`` command, never skips it. Every test gets its own
schema (PostgreSQL) or database (MariaDB), named after its ``tmp_path``: same path, same data.
"""

from __future__ import annotations

import atexit
import hashlib
from pathlib import Path

import pytest

from pyworkflow.dev.sql_servers import SQLServer, SQLServerError, start_mysql, start_postgres
from pyworkflow.storage.sql.mysql import MySQLStorageBackend
from pyworkflow.storage.sql.postgres import PostgresStorageBackend
from pyworkflow.storage.sql.server import ServerSQLStorageBackend

SQL_SERVERS = ["postgres", "mysql"]
_servers: dict[str, SQLServer] = {}


def server(kind: str) -> SQLServer:
    """The session's server of ``kind``, started on first call."""
    if kind not in _servers:
        try:
            _servers[kind] = (start_postgres if kind == "postgres" else start_mysql)()
        except SQLServerError as exc:
            pytest.fail(str(exc), pytrace=False)
        atexit.register(_servers[kind].stop)
    return _servers[kind]


def store_name(tmp_path: Path) -> str:
    return "pw_" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:20]


def database_url(kind: str, tmp_path: Path) -> str:
    """A URL of a store of its own for this test (created on first connect)."""
    url = server(kind).url
    if kind == "postgres":
        return f"{url}?schema={store_name(tmp_path)}"
    return url.rsplit("/", 1)[0] + "/" + store_name(tmp_path)


def make_sql_backend(kind: str, tmp_path: Path, **kwargs: object) -> ServerSQLStorageBackend:
    url = database_url(kind, tmp_path)
    if kind == "postgres":
        return PostgresStorageBackend(url, **kwargs)  # type: ignore[arg-type]
    return MySQLStorageBackend(url, **kwargs)  # type: ignore[arg-type]

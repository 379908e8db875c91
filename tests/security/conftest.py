"""Fixtures of the security tests: the API Lambda over an ``AwsRuntime`` on SQLite (as in
``tests/handlers/api``, whose ``Api`` helper is reused), importing the security workflows too, and a
view of everything the store holds, so a test can prove that a refused request wrote nothing.

``Store.snapshot()`` reads every row of every table straight from the SQLite file, through a
connection of its own: what is compared is what is on disk, not what the runtime believes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyworkflow import config
from pyworkflow.core.clock import ManualClock
from pyworkflow.runtime.aws import AwsRuntime
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.handlers.api.conftest import Api, RecordingDispatcher

MODULES = "tests.handlers.api.workflows,tests.security.workflows"

Snapshot = dict[str, list[tuple[Any, ...]]]


@dataclass
class Store:
    """The API's SQLite database, read directly."""

    path: Path

    def snapshot(self) -> Snapshot:
        """Every row of every table, sorted: equal snapshots mean nothing was written."""
        with sqlite3.connect(self.path) as db:
            tables = [
                name
                for (name,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            return {
                t: sorted(
                    db.execute(f'SELECT * FROM "{t}"').fetchall(),  # noqa: S608
                    key=repr,
                )
                for t in tables
            }

    def rows(self, table: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.path) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(f'SELECT * FROM "{table}"')]  # noqa: S608


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "api.db"


@pytest.fixture
def api(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """``pyworkflow.handlers.api`` with a fresh runtime; ``Api.drive()`` plays the worker."""
    from pyworkflow.handlers import api as module

    monkeypatch.setenv(config.ENV_MODULE, MODULES)
    monkeypatch.delenv(config.ENV_MAX_REQUEST_BYTES, raising=False)
    clock = ManualClock()
    dispatcher = RecordingDispatcher()
    runtime = AwsRuntime(
        SQLiteStorageBackend(db_path),
        dispatcher,  # type: ignore[arg-type]
        clock=clock,
        lease_seconds=30,
        max_receives=3,
    )
    module.reset(runtime)
    yield Api(module=module, runtime=runtime, dispatcher=dispatcher, clock=clock)
    module.reset()


@pytest.fixture
def store(api: Api, db_path: Path) -> Store:
    api.run(
        api.runtime.storage.list_runs_page(limit=1)
    )  # the backend makes its tables on first use
    return Store(db_path)

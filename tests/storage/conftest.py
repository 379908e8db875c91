"""The ``storage`` fixture: every contract test runs once per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.file import FileStorageBackend
from pyworkflow.storage.memory import InMemoryStorageBackend
from pyworkflow.storage.sqlite import SQLiteStorageBackend

BACKENDS = ["memory", "sqlite", "file"]
PERSISTENT_BACKENDS = ["sqlite", "file"]


def make_backend(kind: str, tmp_path: Path) -> StorageBackend:
    """A fresh backend of ``kind``; persistent ones live under ``tmp_path`` (same path, same
    data, so calling this twice opens the same store)."""
    if kind == "memory":
        return InMemoryStorageBackend()
    if kind == "sqlite":
        return SQLiteStorageBackend(tmp_path / "db" / "pyworkflow.db")
    if kind == "file":
        return FileStorageBackend(tmp_path / "data")
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageBackend]:
    backend = make_backend(request.param, tmp_path)
    yield backend
    await backend.close()

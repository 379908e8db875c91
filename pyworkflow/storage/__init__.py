"""Storage backends: in-memory, file (JSON lines) and SQLite (the embedded default);
PostgreSQL and MySQL (``pyworkflow.storage.sql``), imported on first use as pyworkflow-engine
0.1.9 exports them here too (their drivers are the ``postgres`` / ``mysql`` extras)."""

from typing import Any

from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.file import FileStorageBackend
from pyworkflow.storage.memory import InMemoryStorageBackend
from pyworkflow.storage.sqlite import SQLiteStorageBackend

__all__ = [
    "StorageBackend",
    "InMemoryStorageBackend",
    "FileStorageBackend",
    "SQLiteStorageBackend",
    "PostgresStorageBackend",
    "MySQLStorageBackend",
]

_LAZY = {
    "PostgresStorageBackend": "pyworkflow.storage.sql.postgres",
    "MySQLStorageBackend": "pyworkflow.storage.sql.mysql",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyworkflow.storage' has no attribute {name!r}")

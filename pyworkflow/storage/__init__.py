"""Storage backends: in-memory, file (JSON lines) and SQLite (the embedded default)."""

from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.file import FileStorageBackend
from pyworkflow.storage.memory import InMemoryStorageBackend
from pyworkflow.storage.sqlite import SQLiteStorageBackend

__all__ = [
    "StorageBackend",
    "InMemoryStorageBackend",
    "FileStorageBackend",
    "SQLiteStorageBackend",
]

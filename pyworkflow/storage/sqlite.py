"""SQLite storage, by its public path: the backend is the SQLite dialect of the shared SQL
backend, in ``pyworkflow/storage/sql/sqlite.py``."""

from pyworkflow.storage.sql.sqlite import SCHEMA_VERSION, SQLiteStorageBackend, to_db_time

__all__ = ["SCHEMA_VERSION", "SQLiteStorageBackend", "to_db_time"]

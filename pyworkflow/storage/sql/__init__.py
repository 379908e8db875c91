"""SQL storage: ``base.py`` is the contract in SQL, written once; each database is a small
dialect module beside it (``sqlite.py`` today; its docstring lists what a dialect provides)."""

from pyworkflow.storage.sql.base import SQLConnection, SQLStorageBackend

__all__ = ["SQLConnection", "SQLStorageBackend"]

"""SQL storage: ``base.py`` is the contract in SQL, written once; each database is a small
dialect module beside it: ``sqlite.py``, and ``postgres.py`` / ``mysql.py`` over ``server.py``
(pool, migrations, retention). ``urls.backend_from_url`` opens any of them from a URL."""

from pyworkflow.storage.sql.base import SQLConnection, SQLStorageBackend

__all__ = ["SQLConnection", "SQLStorageBackend"]

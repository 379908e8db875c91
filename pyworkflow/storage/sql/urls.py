"""A storage backend from a database URL, the one spelling shared by ``configure(storage=...)``,
``PYWORKFLOW_DATABASE_URL``, ``pyworkflow --db URL`` and the YAML file.

============================================  =================================================
``postgresql://user:pw@host:5432/db``          ``PostgresStorageBackend`` (``postgres://`` too)
``mysql://user:pw@host:3306/db``               ``MySQLStorageBackend`` (``mariadb://`` too)
``sqlite:///relative.db``, ``sqlite:////abs``  ``SQLiteStorageBackend``
``secretsmanager://<arn or name>``             the URL (or RDS JSON secret) stored in AWS
                                               Secrets Manager, then as above
============================================  =================================================

Query options of ours (removed before the driver sees the URL): ``pool_size=N``;
``schema=NAME`` (PostgreSQL); ``iam=1`` with ``region=...`` to log in with RDS IAM tokens
instead of a password (``pyworkflow.storage.sql.aws``); ``ssl=required`` (MySQL).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.sql.aws import url_from_parts

__all__ = ["SCHEMES", "backend_from_url", "is_database_url", "redact", "url_from_parts"]

SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite", "secretsmanager")


def is_database_url(value: str | None) -> bool:
    """Whether ``value`` is a URL this module opens (not a SQLite file path)."""
    if not value or "://" not in value:
        return False
    return value.split("://", 1)[0].split("+")[0].lower() in SCHEMES


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def backend_from_url(
    url: str, *, pool_size: int | None = None, endpoint_url: str | None = None
) -> StorageBackend:
    """The backend ``url`` names (see the module docstring). ``endpoint_url``: Secrets
    Manager's (tests; on AWS the default endpoint, or ``AWS_ENDPOINT_URL_SECRETS_MANAGER``)."""
    scheme = url.split("://", 1)[0].split("+")[0].lower() if "://" in url else ""
    if scheme == "secretsmanager":
        from pyworkflow.storage.sql.aws import url_from_secret

        return backend_from_url(
            url_from_secret(url.split("://", 1)[1], endpoint_url=endpoint_url),
            pool_size=pool_size,
        )
    if scheme == "sqlite":
        from pyworkflow.storage.sqlite import SQLiteStorageBackend

        path = url.split("://", 1)[1]
        return SQLiteStorageBackend(path[1:] if path.startswith("/") else path)
    if scheme not in ("postgresql", "postgres", "mysql", "mariadb"):
        raise ConfigurationError(
            f"Not a database URL: {url!r}; use postgresql://, mysql://, sqlite:/// or "
            "secretsmanager://"
        )
    url, options = _pop_options(url, ("iam", "region"))
    kwargs: dict[str, Any] = {}
    if pool_size is not None:
        kwargs["pool_size"] = pool_size
    if options.get("iam", "").lower() in ("1", "true", "yes"):
        from pyworkflow.storage.sql.aws import RDSAuthToken

        parts = urlsplit(url)
        default_port = 5432 if scheme.startswith("postgres") else 3306
        kwargs["password"] = RDSAuthToken(
            host=parts.hostname or "localhost",
            port=parts.port or default_port,
            user=parts.username or "",
            region=options.get("region"),
        )
        if scheme.startswith("postgres") and "sslmode" not in parts.query:
            url += ("&" if "?" in url else "?") + "sslmode=require"  # IAM logins need TLS
        elif not scheme.startswith("postgres") and "ssl" not in parts.query:
            url += ("&" if "?" in url else "?") + "ssl=required"
    if scheme.startswith("postgres"):
        from pyworkflow.storage.sql.postgres import PostgresStorageBackend

        return PostgresStorageBackend(url, **kwargs)
    from pyworkflow.storage.sql.mysql import MySQLStorageBackend

    return MySQLStorageBackend(url, **kwargs)


def _pop_options(url: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    popped = {k: v for k, v in query if k in names}
    rest = [(k, v) for k, v in query if k not in names]
    return urlunsplit(parts._replace(query=urlencode(rest))), popped

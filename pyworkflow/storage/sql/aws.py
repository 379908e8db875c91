"""Aurora / RDS on AWS: IAM authentication tokens and the DSN from Secrets Manager.

``RDSAuthToken`` is a password provider: RDS IAM tokens are signed locally by boto3
(``generate_db_auth_token``, no request) with the process's credentials (the Lambda role's)
and are accepted for 15 minutes, so each new connection of the pool asks the provider and it
signs a new one once the cached one is ``refresh_after`` old (10 minutes: a connection opened
just before then still logs in). Open connections are not affected by a token's expiry.

``url_from_secret`` reads a secret holding either a database URL or RDS's standard JSON
(``engine``, ``host``, ``port``, ``username``, ``password``, ``dbname``, the shape RDS-managed
and rotated secrets have), so the URL is ``secretsmanager://<arn or name>``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from pyworkflow.exceptions import ConfigurationError

__all__ = ["RDSAuthToken", "url_from_parts", "url_from_secret"]

TOKEN_LIFETIME_SECONDS = 15 * 60


class RDSAuthToken:
    """A cached RDS IAM token, signed anew ``refresh_after`` seconds after the last one."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str,
        region: str | None = None,
        refresh_after: float = 10 * 60,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < refresh_after < TOKEN_LIFETIME_SECONDS:
            raise ConfigurationError(
                f"refresh_after must be under the token's {TOKEN_LIFETIME_SECONDS}s lifetime"
            )
        self.host, self.port, self.user, self.region = host, port, user, region
        self.refresh_after = refresh_after
        self._client = client
        self._clock = clock
        self._token: str | None = None
        self._signed_at = 0.0
        self._lock = threading.Lock()
        self.signed = 0  # how many tokens were signed (read by tests)

    def _rds(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("rds", region_name=self.region)
        return self._client

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._signed_at >= self.refresh_after:
                self._token = self._rds().generate_db_auth_token(
                    DBHostname=self.host, Port=self.port, DBUsername=self.user
                )
                self._signed_at = now
                self.signed += 1
            return self._token

    def __repr__(self) -> str:  # never the token
        return f"RDSAuthToken({self.user}@{self.host}:{self.port})"


def url_from_secret(secret_id: str, *, endpoint_url: str | None = None, client: Any = None) -> str:
    """The database URL a Secrets Manager secret holds (a URL, or RDS's JSON)."""
    if client is None:
        import boto3

        region = secret_id.split(":")[3] if secret_id.startswith("arn:") else None
        client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
    value = client.get_secret_value(SecretId=secret_id)["SecretString"]
    text = value.strip()
    if not text.startswith("{"):
        return text
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"secret {secret_id} is neither a URL nor JSON") from exc
    engine = str(data.get("engine", "postgres")).lower()
    if engine not in (
        "postgres",
        "postgresql",
        "aurora-postgresql",
        "mysql",
        "mariadb",
        "aurora-mysql",
        "aurora",
    ):
        raise ConfigurationError(f"secret {secret_id}: engine {engine!r} is not supported")
    return url_from_parts(
        "postgresql" if "postgres" in engine else "mysql",
        host=data["host"],
        port=int(data["port"]) if data.get("port") else None,
        user=data["username"],
        password=data.get("password"),
        database=data.get("dbname") or data.get("database") or "pyworkflow",
    )


def url_from_parts(
    kind: str,
    *,
    host: str = "localhost",
    port: int | None = None,
    user: str = "pyworkflow",
    password: str | None = None,
    database: str = "pyworkflow",
) -> str:
    """pyworkflow-engine 0.1.9's separate keys (``host``, ``port``...) as one URL."""
    scheme = "postgresql" if kind.startswith("postgres") else "mysql"
    port = port or (5432 if scheme == "postgresql" else 3306)
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return f"{scheme}://{auth}@{host}:{port}/{database}"

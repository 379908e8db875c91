"""Selecting PostgreSQL/MySQL by URL: ``backend_from_url``, ``PYWORKFLOW_DATABASE_URL`` (API and
the Lambda worker's ``storage_from_env``), 0.1.9's YAML keys, Secrets Manager (moto's server)
and RDS IAM tokens. The servers are the session's (``tests/storage/sql_servers.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

import pyworkflow
from pyworkflow.config import configure_from_yaml, get_storage
from pyworkflow.core.models import RunStatus
from pyworkflow.dev import moto_server
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.runtime.aws import storage_from_env
from pyworkflow.settings import reset_settings
from pyworkflow.storage.sql.aws import RDSAuthToken, url_from_secret
from pyworkflow.storage.sql.mysql import MySQLStorageBackend
from pyworkflow.storage.sql.postgres import PostgresStorageBackend
from pyworkflow.storage.sql.urls import backend_from_url, is_database_url, redact
from pyworkflow.storage.sqlite import SQLiteStorageBackend
from tests.storage.sql_servers import database_url, server, store_name
from tests.storage.test_contract import make_events, make_run

KINDS = {"postgres": PostgresStorageBackend, "mysql": MySQLStorageBackend}


@pytest.fixture(autouse=True)
def _clean_config(monkeypatch: pytest.MonkeyPatch):
    for name in ("PYWORKFLOW_DATABASE_URL", "PYWORKFLOW_STORAGE", "PYWORKFLOW_DB"):
        monkeypatch.delenv(name, raising=False)
    yield
    pyworkflow.reset_config()
    reset_settings()


async def round_trip(backend) -> None:
    """The backend really stores: a run and its history come back."""
    try:
        await backend.create_run(make_run("sel-1"), make_events("sel-1", 1, 2))
        assert [e.sequence for e in await backend.get_events("sel-1")] == [1, 2]
    finally:
        await backend.close()


def test_urls_name_their_backends() -> None:
    assert isinstance(backend_from_url("postgresql://u@h:5432/d"), PostgresStorageBackend)
    assert isinstance(backend_from_url("postgres://u@h/d?schema=s1"), PostgresStorageBackend)
    assert isinstance(backend_from_url("mysql://u:p@h:3306/d"), MySQLStorageBackend)
    assert isinstance(backend_from_url("mariadb://u@h/d"), MySQLStorageBackend)
    assert isinstance(backend_from_url("sqlite:///x/runs.db"), SQLiteStorageBackend)
    pg = backend_from_url("postgresql://u@h/d?schema=s1&pool_size=25&application_name=a")
    assert (pg.schema, pg.pool_size) == ("s1", 25)
    assert "schema" not in pg.dsn and "application_name=a" in pg.dsn  # the rest: for asyncpg
    assert backend_from_url("mysql://u@h/d?pool_size=3").pool_size == 3
    assert not is_database_url("./runs.db") and is_database_url("postgresql://h/d")
    with pytest.raises(ConfigurationError, match="Not a database URL"):
        backend_from_url("redis://h/0")
    with pytest.raises(ConfigurationError, match="must name a database"):
        backend_from_url("mysql://u@h/")


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact("mysql://app@db/x") == "mysql://app@db/x"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("storage_env", "select"),
    [
        # the API (configure / get_storage)
        (None, get_storage),
        # the Lambda worker on Aurora: the template says dynamodb, the URL wins
        ("dynamodb", storage_from_env),
    ],
    ids=["api", "lambda-worker-over-dynamodb"],
)
async def test_pyworkflow_database_url_selects_the_backend(
    kind: str,
    storage_env: str | None,
    select: Callable[[], object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if storage_env is not None:
        monkeypatch.setenv("PYWORKFLOW_STORAGE", storage_env)
    monkeypatch.setenv("PYWORKFLOW_DATABASE_URL", database_url(kind, tmp_path))
    reset_settings()
    pyworkflow.reset_config()
    storage = select()
    assert isinstance(storage, KINDS[kind])
    await round_trip(storage)


@pytest.mark.parametrize("kind", KINDS)
async def test_yaml_keys_of_0_1_9_select_the_backend(kind: str, tmp_path: Path) -> None:
    url = server(kind).url
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    user = url.split("://", 1)[1].split("@", 1)[0]
    database = "postgres" if kind == "postgres" else store_name(tmp_path)
    (tmp_path / "pyworkflow.config.yaml").write_text(
        f"storage:\n  type: {kind}\n  host: {host}\n  port: {port}\n  user: {user}\n"
        f"  database: {database}\n  max_pool_size: 4\n"
    )
    configure_from_yaml(tmp_path / "pyworkflow.config.yaml", discover=False)
    storage = get_storage()
    assert isinstance(storage, KINDS[kind]) and storage.pool_size == 4
    if kind == "postgres":  # its own schema, so the test leaves the shared database alone
        storage.schema = store_name(tmp_path)
    await round_trip(storage)
    (tmp_path / "dsn.yaml").write_text(f"storage:\n  type: {kind}\n  dsn: {url}\n")
    configure_from_yaml(tmp_path / "dsn.yaml", discover=False)
    assert isinstance(get_storage(), KINDS[kind])


@pytest.fixture(scope="module")
def secrets() -> object:
    with moto_server.start() as moto:
        yield boto3.client(
            "secretsmanager",
            endpoint_url=moto.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )


@pytest.mark.parametrize("kind", KINDS)
async def test_secretsmanager_url_reads_the_dsn(
    kind: str, tmp_path: Path, secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret holding a URL, and one in RDS's JSON shape, both open the server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")  # moto's; never the machine's
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    url = database_url(kind, tmp_path)
    arn = secrets.create_secret(Name=f"pw-url-{kind}-{tmp_path.name}", SecretString=url)["ARN"]
    backend = backend_from_url(f"secretsmanager://{arn}", endpoint_url=secrets.meta.endpoint_url)
    assert isinstance(backend, KINDS[kind])
    await round_trip(backend)

    base = server(kind)
    rds = {
        "engine": "postgres" if kind == "postgres" else "mysql",
        "host": "127.0.0.1",
        "port": base.port,
        "username": base.url.split("://", 1)[1].split("@", 1)[0],
        "password": "",
        "dbname": "postgres" if kind == "postgres" else store_name(tmp_path) + "_json",
    }
    name = f"pw-json-{kind}-{tmp_path.name}"
    secrets.create_secret(Name=name, SecretString=json.dumps(rds))
    found = url_from_secret(name, client=secrets)
    assert found == f"{'postgresql' if kind == 'postgres' else 'mysql'}://{rds['username']}@" + (
        f"127.0.0.1:{base.port}/{rds['dbname']}"
    )
    suffix = f"?schema={store_name(tmp_path)}_json" if kind == "postgres" else ""
    await round_trip(backend_from_url(found + suffix))


class FakeRDS:
    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def generate_db_auth_token(self, **kwargs: object) -> str:
        self.calls.append(kwargs)
        return f"token-{len(self.calls)}"


def test_rds_auth_token_is_signed_again_before_it_expires() -> None:
    now = [0.0]
    rds = FakeRDS()
    token = RDSAuthToken(host="db", port=5432, user="app", client=rds, clock=lambda: now[0])
    assert token() == "token-1" and token() == "token-1"  # cached
    now[0] = 9 * 60
    assert token() == "token-1"
    now[0] = 10 * 60  # 5 minutes before the 15-minute expiry: a new one
    assert token() == "token-2"
    assert rds.calls[0] == {"DBHostname": "db", "Port": 5432, "DBUsername": "app"}
    assert "db" in repr(token) and "token" not in repr(token)
    with pytest.raises(ConfigurationError):
        RDSAuthToken(host="db", port=5432, user="app", refresh_after=15 * 60)


def test_iam_url_logs_in_with_signed_tokens_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    pg = backend_from_url("postgresql://app@db.example:5432/d?iam=1&region=eu-west-1")
    assert isinstance(pg, PostgresStorageBackend) and "sslmode=require" in pg.dsn
    provider = pg._password
    assert isinstance(provider, RDSAuthToken) and provider.region == "eu-west-1"
    signed = provider()  # boto3's real signer, offline
    assert signed.startswith("db.example:5432/?Action=connect&DBUser=app")
    assert "X-Amz-Signature=" in signed and provider.signed == 1
    my = backend_from_url("mysql://app@db.example/d?iam=1&region=eu-west-1")
    assert isinstance(my, MySQLStorageBackend) and isinstance(my._password, RDSAuthToken)
    assert my._password.port == 3306 and "ssl" in my._params


async def test_status_survives_in_a_postgres_schema_of_its_own(tmp_path: Path) -> None:
    """``schema=`` keeps the tables apart: another schema sees nothing."""
    first = backend_from_url(database_url("postgres", tmp_path))
    await first.create_run(make_run("only-here"), [])
    await first.close()
    other = backend_from_url(server("postgres").url + f"?schema={store_name(tmp_path)}_other")
    try:
        assert await other.get_run("only-here") is None
    finally:
        await other.close()
    again = backend_from_url(database_url("postgres", tmp_path))
    try:
        run = await again.get_run("only-here")
        assert run is not None and run.status == RunStatus.PENDING
    finally:
        await again.close()


def test_the_backends_are_exported_where_0_1_9_has_them() -> None:
    from pyworkflow.storage import MySQLStorageBackend as My
    from pyworkflow.storage import PostgresStorageBackend as Pg

    assert (Pg, My) == (PostgresStorageBackend, MySQLStorageBackend)
    pg = Pg(dsn="postgresql://u@h:5432/d", pool_size=3)
    assert pg.pool_size == 3 and pg.dsn.startswith("postgresql://u@h:5432/d")

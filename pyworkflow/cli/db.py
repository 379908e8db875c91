"""``pyworkflow db migrate`` / ``pyworkflow db purge``: the database's schema and retention.

Backends migrate on first connect anyway; ``migrate`` does it ahead of a deploy (so the first
requests do not wait for it) and says which version the database is at. ``purge`` deletes runs
finished more than ``--older-than`` days ago on PostgreSQL/MySQL (DynamoDB has TTL): run it
from cron or a scheduled task.

    pyworkflow --db postgresql://app@db:5432/app db migrate
    pyworkflow --db mysql://app:pw@db:3306/app db purge --older-than 30
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from pyworkflow.cli.config import run_async, state
from pyworkflow.cli.errors import CliError
from pyworkflow.cli.output import console, print_json
from pyworkflow.config import get_storage
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.offload import OffloadingStorage
from pyworkflow.storage.sql.server import ServerSQLStorageBackend


def _backend() -> StorageBackend:
    if state().remote:
        raise CliError("db commands work on a database (--db), not behind --api-url")
    storage = get_storage()
    return storage.inner if isinstance(storage, OffloadingStorage) else storage


@click.group("db")
def db() -> None:
    """The database's schema and retention."""


@db.command("migrate")
def migrate() -> None:
    """Apply pending schema migrations (idempotent; safe from several processes at once)."""
    backend = _backend()

    async def go() -> int | None:
        if isinstance(backend, ServerSQLStorageBackend):
            return await backend.migrate()
        await backend.get_run("-")  # SQLite and the others create their schema on first use
        return getattr(backend, "schema_version", None)

    version = run_async(go())
    label = state().db_label()
    if state().json:
        print_json({"database": label, "schema_version": version})
    else:
        console().print(f"{label}: schema version {version if version is not None else 'current'}")


@db.command("purge")
@click.option("--older-than", "days", type=float, required=True, help="Days since finishing.")
def purge(days: float) -> None:
    """Delete runs that finished more than --older-than days ago (PostgreSQL, MySQL)."""
    backend = _backend()
    if not isinstance(backend, ServerSQLStorageBackend):
        raise CliError(
            "purge is for PostgreSQL/MySQL databases", "DynamoDB expires runs by TTL instead"
        )
    before = datetime.now(UTC) - timedelta(days=days)
    deleted = run_async(backend.purge_finished(before))
    if state().json:
        print_json({"deleted": deleted})
    else:
        console().print(f"deleted {deleted} finished run(s)")

"""``pyworkflow db migrate`` / ``purge`` / ``rekey``: the database's schema, retention and keys.

Backends migrate on first connect anyway; ``migrate`` does it ahead of a deploy (so the first
requests do not wait for it) and says which version the database is at. ``purge`` deletes runs
finished more than ``--older-than`` days ago on PostgreSQL/MySQL (DynamoDB has TTL): run it
from cron or a scheduled task. ``rekey`` moves a DynamoDB table's items to the index keys this
version writes and lists (``storage/dynamodb_migrate.py``; docs/scale.md): deploy, then run it.

    pyworkflow --db postgresql://app@db:5432/app db migrate
    pyworkflow --db mysql://app:pw@db:3306/app db purge --older-than 30
    PYWORKFLOW_STORAGE=dynamodb PYWORKFLOW_TABLE=pyworkflow pyworkflow db rekey --dry-run
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


@db.command("rekey")
@click.option("--dry-run", is_flag=True, help="Count the items to re-key; write nothing.")
@click.option("--segments", type=click.IntRange(1, 1000), default=1, help="Parallel scans.")
@click.option("--resume", "resume", default=None, help="A token printed by an earlier pass.")
def rekey(dry_run: bool, segments: int, resume: str | None) -> None:
    """Re-key a DynamoDB table's index attributes to this version's layout (idempotent).

    The table is PYWORKFLOW_TABLE (PYWORKFLOW_DYNAMODB_ENDPOINT, AWS_REGION), as the worker's."""
    # imported here: boto3 is not what every CLI command should pay to start
    from pyworkflow.runtime.storage_factory import dynamodb_backend
    from pyworkflow.settings import get_settings
    from pyworkflow.storage.dynamodb_migrate import RekeyReport
    from pyworkflow.storage.dynamodb_migrate import rekey as rekey_table

    settings = get_settings()
    if state().remote or state().db or settings.storage_kind != "dynamodb" or not settings.table:
        raise CliError(
            "rekey is for DynamoDB tables",
            "set PYWORKFLOW_STORAGE=dynamodb and PYWORKFLOW_TABLE (no --db, no --api-url)",
        )
    backend = dynamodb_backend(settings)
    label = f"DynamoDB table {settings.table}"
    last: list[str] = []

    def remember(report: RekeyReport) -> None:  # an interrupted pass can go on from here
        last[:] = [report.resume_token()]

    async def go() -> RekeyReport:
        try:
            return await rekey_table(
                backend, dry_run=dry_run, segments=segments, resume=resume, on_page=remember
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
        finally:
            await backend.close()

    try:
        report = run_async(go())
    except KeyboardInterrupt:
        hint = f"go on with: pyworkflow db rekey --resume {last[0]}" if last else None
        raise CliError("interrupted", hint) from None
    result = {"dry_run": dry_run, **report.as_dict()}
    if state().json:
        print_json(result)
        return
    verb = "would re-key" if dry_run else "re-keyed"
    console().print(
        f"{label}: scanned {report.scanned} item(s); {verb} {report.rekeyed}, "
        f"{report.current} already current, {report.raced} changed meanwhile (left as "
        f"written), {report.unreadable} unreadable"
    )
    for problem in report.problems:
        console().print(f"  unreadable: {problem}")

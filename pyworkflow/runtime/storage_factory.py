"""Storage backends built from ``Settings``: the one place that turns ``PYWORKFLOW_STORAGE``,
``PYWORKFLOW_TABLE``, ``PYWORKFLOW_BLOB_*``... into constructor arguments. The backends in
``pyworkflow.storage`` take explicit arguments only and never read settings themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyworkflow.settings import Settings, get_settings
from pyworkflow.storage.base import StorageBackend
from pyworkflow.storage.blobs import BlobStore, FileBlobStore, S3BlobStore
from pyworkflow.storage.offload import OffloadingStorage

if TYPE_CHECKING:
    from pyworkflow.storage.dynamodb import DynamoDBStorageBackend


def embedded_storage(settings: Settings) -> StorageBackend:
    """``PYWORKFLOW_DATABASE_URL`` (PostgreSQL, MySQL...; a URL in ``PYWORKFLOW_STORAGE`` or
    ``PYWORKFLOW_DB`` too), else ``PYWORKFLOW_STORAGE``: "memory", "file[:<dir>]", else SQLite
    at ``PYWORKFLOW_DB``; large payloads to a blob store if ``PYWORKFLOW_BLOB_*`` names one."""
    choice = settings.storage_kind
    storage: StorageBackend
    url = database_url(settings)
    if url is not None:
        from pyworkflow.storage.sql.urls import backend_from_url

        storage = backend_from_url(url)
    elif choice == "memory":
        from pyworkflow.storage.memory import InMemoryStorageBackend

        storage = InMemoryStorageBackend()
    elif choice.startswith("file"):
        from pyworkflow.storage.file import FileStorageBackend

        storage = FileStorageBackend(choice.partition(":")[2] or None)
    else:
        from pyworkflow.storage.sqlite import SQLiteStorageBackend

        storage = SQLiteStorageBackend(settings.db_path)
    return with_offload(storage, settings)


def dynamodb_backend(
    settings: Settings, *, session: Any = None, create_table: bool = False
) -> DynamoDBStorageBackend:
    """The DynamoDB backend of ``PYWORKFLOW_TABLE``, with the endpoint, region and retention
    of their variables; nothing else around it."""
    from pyworkflow.storage.dynamodb import DynamoDBStorageBackend  # aioboto3: only where used

    return DynamoDBStorageBackend(
        settings.table,
        region=settings.region,
        endpoint_url=settings.dynamodb_endpoint,
        retention_days=settings.retention_days,
        session=session,
        create_table=create_table,
    )


def dynamodb_storage(settings: Settings, *, session: Any = None) -> StorageBackend:
    """``dynamodb_backend`` wrapped for large payloads: to ``PYWORKFLOW_BLOB_BUCKET``, or,
    without one, a clear error at DynamoDB's item limit."""
    return with_offload(dynamodb_backend(settings, session=session), settings, item_limit=True)


def database_url(settings: Settings) -> str | None:
    """The database URL the settings name: ``PYWORKFLOW_DATABASE_URL``, else a URL given as
    ``PYWORKFLOW_STORAGE`` or ``PYWORKFLOW_DB``; None if none does."""
    from pyworkflow.storage.sql.urls import is_database_url

    for value in (settings.database_url, settings.storage_kind, settings.db_path):
        if is_database_url(value):
            return value
    if settings.database_url:
        return settings.database_url  # not a URL we know: backend_from_url says so
    return None


def storage_from_settings(settings: Settings) -> StorageBackend:
    """A database URL (``PYWORKFLOW_DATABASE_URL``) first; ``PYWORKFLOW_STORAGE=dynamodb``
    gives ``dynamodb_storage``; anything else the embedded choice. (``pyworkflow.get_storage()``
    keeps the embedded one for the process.)"""
    if database_url(settings) is None and settings.storage_kind.lower() == "dynamodb":
        return dynamodb_storage(settings)
    return embedded_storage(settings)


def with_offload(
    storage: StorageBackend, settings: Settings, *, item_limit: bool = False
) -> StorageBackend:
    """``storage`` wrapped as the settings say: blobs in S3 (``PYWORKFLOW_BLOB_BUCKET``) or a
    directory (``PYWORKFLOW_BLOB_DIR``). Without either, ``storage`` itself, unless it has an
    item limit (DynamoDB): then a wrapper that says so, so the limit is met with a clear
    ``PayloadTooLargeError`` instead of the service's refusal."""
    if isinstance(storage, OffloadingStorage):
        return storage
    blobs: BlobStore | None = None
    if settings.blob_bucket:
        blobs = S3BlobStore(settings.blob_bucket)
    elif settings.blob_dir:
        blobs = FileBlobStore(settings.blob_dir)
    elif not item_limit:
        return storage
    return OffloadingStorage(
        storage,
        blobs,
        threshold_bytes=settings.offload_threshold_bytes,
        max_payload_bytes=settings.max_payload_bytes,
    )


def offload_from_env(storage: StorageBackend, *, item_limit: bool = False) -> StorageBackend:
    """``with_offload`` with the current settings (the name it had in ``storage.offload``)."""
    return with_offload(storage, get_settings(), item_limit=item_limit)


__all__ = [
    "database_url",
    "dynamodb_backend",
    "dynamodb_storage",
    "embedded_storage",
    "offload_from_env",
    "storage_from_settings",
    "with_offload",
]

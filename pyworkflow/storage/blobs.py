"""Blob stores: where payloads too large for a storage item live (``pyworkflow.storage.offload``).

A blob store maps a key to bytes and nothing else: ``put`` (overwrite allowed), ``get``. Keys are
made by the offloader, ``/``-separated parts of ``[A-Za-z0-9_.=-]``; a key's content never
changes (its name ends with the SHA-256 of the bytes), so stores need no locking or versioning.

- ``S3BlobStore``: a bucket (``PYWORKFLOW_BLOB_BUCKET``), one aioboto3 client per instance,
  created on first use and kept. Endpoint and region come from botocore's own environment
  (``AWS_ENDPOINT_URL_S3`` points it at moto locally).
- ``FileBlobStore``: one file per key under a directory (``PYWORKFLOW_BLOB_DIR``), written
  atomically (temporary file + rename).
- ``MemoryBlobStore``: a dict, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pyworkflow.exceptions import WorkflowError

_KEY = re.compile(r"[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*")


class BlobNotFoundError(WorkflowError):
    """A stored pointer names a blob the store does not have (deleted, or expired by the
    bucket's lifecycle rule before its run ended)."""


class BlobIntegrityError(WorkflowError):
    """A blob's bytes do not match the SHA-256 or size its pointer recorded."""


def check_key(key: str) -> str:
    """``key`` if it is a well-formed blob key (no ``..``, no leading ``/``), else ValueError:
    a key becomes a file path in ``FileBlobStore``."""
    if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"not a blob key: {key!r}")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """Bytes by key. ``requests`` counts calls by ``"service.Operation"`` (read by bench/)."""

    requests: Counter[str]

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes:
        """The bytes under ``key``; ``BlobNotFoundError`` if there are none."""
        ...

    async def close(self) -> None: ...


class MemoryBlobStore:
    """Blobs in a dict: tests and the in-memory backend."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()

    async def put(self, key: str, data: bytes) -> None:
        self.requests["memory.Put"] += 1
        self.blobs[check_key(key)] = bytes(data)

    async def get(self, key: str) -> bytes:
        self.requests["memory.Get"] += 1
        try:
            return self.blobs[check_key(key)]
        except KeyError:
            raise BlobNotFoundError(f"No blob {key!r} in memory") from None

    async def close(self) -> None:
        pass


class FileBlobStore:
    """One file per key under ``root`` (the embedded runtime's blob "table")."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.requests: Counter[str] = Counter()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, data: bytes) -> None:
        self.requests["file.Put"] += 1
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A reader never sees half a blob: write aside, then rename over.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def get(self, key: str) -> bytes:
        self.requests["file.Get"] += 1
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise BlobNotFoundError(f"No blob {key!r} under {self.root}") from None

    async def close(self) -> None:
        pass


class S3BlobStore:
    """Blobs as objects of one S3 bucket, under ``prefix``."""

    def __init__(
        self, bucket: str, *, prefix: str = "", session: Any = None, endpoint_url: str | None = None
    ) -> None:
        if not bucket:
            raise ValueError("S3BlobStore needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self._session = session
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._lock: asyncio.Lock | None = None
        self.requests: Counter[str] = Counter()

    async def _s3(self) -> Any:
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                if self._session is None:
                    import aioboto3

                    self._session = aioboto3.Session()
                stack = contextlib.AsyncExitStack()
                kwargs = {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}
                self._client = await stack.enter_async_context(self._session.client("s3", **kwargs))
                self._stack = stack
            return self._client

    async def put(self, key: str, data: bytes) -> None:
        s3 = await self._s3()
        self.requests["s3.PutObject"] += 1
        await s3.put_object(
            Bucket=self.bucket,
            Key=self.prefix + check_key(key),
            Body=data,
            ContentType="application/json",
        )

    async def get(self, key: str) -> bytes:
        s3 = await self._s3()
        self.requests["s3.GetObject"] += 1
        try:
            response = await s3.get_object(Bucket=self.bucket, Key=self.prefix + check_key(key))
        except Exception as exc:
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                raise BlobNotFoundError(
                    f"No object {self.prefix + key!r} in bucket {self.bucket!r}: deleted, or "
                    "expired by the bucket's lifecycle rule"
                ) from None
            if code in ("AccessDenied", "403"):
                # Without s3:ListBucket (the template grants none) S3 answers a missing
                # object with 403 as well: say both.
                raise BlobNotFoundError(
                    f"Cannot read object {self.prefix + key!r} of bucket {self.bucket!r}: "
                    "access denied (missing, or this role may not read it)"
                ) from exc
            raise
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        return data

    async def close(self) -> None:
        """Close the client (it is recreated if used again)."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


__all__ = [
    "BlobIntegrityError",
    "BlobNotFoundError",
    "BlobStore",
    "FileBlobStore",
    "MemoryBlobStore",
    "S3BlobStore",
    "check_key",
]

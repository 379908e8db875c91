"""File storage: plain JSON files, for compatibility with pyworkflow-engine examples.

Layout under ``base_path``::

    runs/<run_id>.json          one run record (replaced atomically: temp file + os.replace)
    events/<run_id>.jsonl       the run's history, one event per line, append-only
    hooks/<token_hash>.json     one hook
    schedules/<id>.json         one schedule
    idempotency.json            {idempotency key: run id}
    .locks/storage.lock         flock'ed around every operation (shared for reads)

Why this shape: every file is human-readable and a run's history can be inspected with ``tail``.
The contract itself is ``RecordStorageBackend``'s (shared with the memory backend); this module
only says where records live. Safety comes from one lock: ``fcntl.flock`` on
``.locks/storage.lock``, shared for reads. Within a process no lock is needed besides: a method
body never awaits, so asyncio tasks cannot interleave with one (where ``fcntl`` is missing, e.g.
Windows, that is the only protection). File I/O is synchronous inside the async methods on
purpose: the files are small and local, and a body without awaits is what keeps the blocking
flock from stalling other tasks for long.

Atomicity: a run exists iff its run file exists, and that file is written last, so a crash in
``create_run`` leaves only orphans that a retry overwrites. ``append_events(run=...)`` appends the
events before replacing the run file; a crash between the two leaves the history ahead of the
run record (a retried append then gets ``ConcurrencyError`` and reloads), never the reverse. A
torn last line (crash mid-append) is ignored on read and cut off by the next append. Use SQLite
when this is not good enough.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from pyworkflow.core.events import Event
from pyworkflow.storage.records import HOOKS, MODELS, RUNS, SCHEDULES, RecordStorageBackend

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _name(key: str) -> str:
    """A file name for any id: percent-encoded so '/', '..' or ':' cannot escape the folder."""
    return quote(key, safe="").replace(".", "%2E") or "%00"


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and ``os.replace`` so readers see the old or the new file, never
    a partial one; fsync first so a crash cannot leave an empty file behind the rename."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonl(events: list[Event]) -> str:
    return "".join(e.model_dump_json() + "\n" for e in events)


#: Where ``FileStorageBackend()`` keeps data by default.
DEFAULT_DIR = Path(".pyworkflow/data")
#: pyworkflow-engine 0.1.9's default directory: ``FileStorageBackend()`` uses it when it exists
#: and ``DEFAULT_DIR`` does not. Its runs and event logs read as they are (same file names and
#: fields); its hooks (stored by hook id) and step files are not read.
ENGINE_DEFAULT_DIR = Path("pyworkflow_data")


def default_dir() -> Path:
    """The directory ``FileStorageBackend()`` uses, relative to the working directory."""
    if ENGINE_DEFAULT_DIR.is_dir() and not DEFAULT_DIR.exists():
        return ENGINE_DEFAULT_DIR
    return DEFAULT_DIR


class FileStorageBackend(RecordStorageBackend):
    """The ``StorageBackend`` contract on a directory of JSON files (see module docstring).

    Without ``base_path``: ``./.pyworkflow/data``, or pyworkflow-engine 0.1.9's
    ``./pyworkflow_data`` if that exists and ours does not (``default_dir()``). ``base_path``
    and ``repr()`` say which.
    """

    def __init__(self, base_path: str | Path | None = None) -> None:
        super().__init__()
        self.base_path = Path(base_path) if base_path is not None else default_dir()
        self._ready = False

    def __repr__(self) -> str:
        return f"FileStorageBackend({str(self.base_path.absolute())!r})"

    @contextmanager
    def _guard(self, exclusive: bool = True) -> Iterator[None]:
        """Hold the cross-process lock; the body must not await."""
        if not self._ready:
            for kind in (RUNS, "events", HOOKS, SCHEDULES):
                (self.base_path / kind).mkdir(parents=True, exist_ok=True)
            self._ready = True
        # Kept in a hidden folder so a listing of the data shows only data.
        (self.base_path / ".locks").mkdir(parents=True, exist_ok=True)
        fd = os.open(self.base_path / ".locks" / "storage.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _path(self, kind: str, key: str, suffix: str = ".json") -> Path:
        return self.base_path / kind / f"{_name(key)}{suffix}"

    def _peek(self, kind: str, key: str) -> Any | None:
        try:
            return MODELS[kind].model_validate_json(self._path(kind, key).read_bytes())
        except FileNotFoundError:
            return None

    def _scan(self, kind: str) -> Iterable[Any]:
        model = MODELS[kind]
        found = []
        for path in (self.base_path / kind).glob("*.json"):
            try:
                found.append(model.model_validate_json(path.read_bytes()))
            except FileNotFoundError:
                continue
        return found

    def _put(self, kind: str, key: str, record: BaseModel) -> None:
        _write_atomic(self._path(kind, key), record.model_dump_json(indent=2))

    def _drop(self, kind: str, key: str) -> bool:
        try:
            self._path(kind, key).unlink()
        except FileNotFoundError:
            return False
        return True

    def _exists(self, kind: str, key: str) -> bool:
        return self._path(kind, key).exists()

    def _history(self, run_id: str) -> list[Event]:
        """The complete lines: a torn tail (crash mid-append) is ignored."""
        try:
            raw = self._path("events", run_id, ".jsonl").read_bytes()
        except FileNotFoundError:
            return []
        lines = raw[: raw.rfind(b"\n") + 1].splitlines()
        return [Event.model_validate_json(line) for line in lines if line.strip()]

    def _replace_history(self, run_id: str, events: list[Event]) -> None:
        _write_atomic(self._path("events", run_id, ".jsonl"), _jsonl(events))

    def _extend_history(self, run_id: str, events: list[Event]) -> None:
        # sync I/O by design: see the module docstring
        with open(self._path("events", run_id, ".jsonl"), "r+b") as f:
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a torn tail left by a crash: cut it off
                    f.seek(0)
                    end = f.read().rfind(b"\n") + 1
                    f.truncate(end)
            f.seek(end)
            f.write(_jsonl(events).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def _idem(self) -> dict[str, str]:
        try:
            return dict(json.loads((self.base_path / "idempotency.json").read_text("utf-8")))
        except FileNotFoundError:
            return {}

    def _idem_get(self, key: str) -> str | None:
        return self._idem().get(key)

    def _idem_put(self, key: str, run_id: str) -> None:
        idem = self._idem()
        idem[key] = run_id
        _write_atomic(self.base_path / "idempotency.json", json.dumps(idem, indent=1))

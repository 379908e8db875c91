"""Throwaway PostgreSQL and MariaDB servers for tests and benchmarks.

Each one is a fresh data directory under a temporary folder (``initdb`` /
``mariadb-install-db``), a server on 127.0.0.1 on a free port, and a URL to give
``PostgresStorageBackend`` / ``MySQLStorageBackend``; ``stop()`` ends the server and removes the
folder. The binaries are Debian's (``apt-get install -y postgresql mariadb-server``); a missing
one raises ``SQLServerError`` naming that command, so tests fail with the fix instead of
skipping.

PostgreSQL refuses to run as root: as root, the data directory is handed to the ``postgres``
system user the Debian package creates and the server runs under ``runuser -u postgres``.
Durability settings are off (``fsync``, ``synchronous_commit``): the data dies with the test.

    python -m pyworkflow.dev.sql_servers postgres     # start one, print its URL, wait for ^C

In code::

    with start_postgres() as pg:
        backend = PostgresStorageBackend(pg.url)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pyworkflow.dev.processes import free_port, listens, stop_process, wait_ready

__all__ = [
    "APT_HINT",
    "SQLServer",
    "SQLServerError",
    "start_mysql",
    "start_postgres",
]

APT_HINT = "apt-get install -y postgresql mariadb-server"
PG_USER = "pyworkflow"
_PG_SYSTEM_USER = "postgres"  # created by Debian's postgresql package
_PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class SQLServerError(RuntimeError):
    """A server cannot be started; the message says what to install or where its log is."""


@dataclass
class SQLServer:
    """A running server: ``url`` for the storage backends, ``stop()`` to end it."""

    kind: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    folder: Path
    _log: object = field(default=None, repr=False)

    def stop(self) -> None:
        """Terminate the server (kill it if it ignores SIGTERM for 20 s); idempotent."""
        stop_process(self.process, grace=20)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> SQLServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _binary(name: str, dirs: list[Path]) -> str:
    for d in dirs:
        if (d / name).is_file():
            return str(d / name)
    found = shutil.which(name)
    if found is None:
        raise SQLServerError(f"{name} is missing: {APT_HINT}")
    return found


def _as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL's commands under the ``postgres`` user when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser is None:
        raise SQLServerError("runuser is missing (util-linux); run the tests as a non-root user")
    return [runuser, "-u", _PG_SYSTEM_USER, "--", *argv]


def _initialise(folder: Path, argv: list[str], what: str) -> None:
    """Make the data directory; ``folder`` goes if that fails."""
    try:
        _run(argv, what)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _launch(
    kind: str,
    folder: Path,
    argv: Callable[[int], list[str]],
    url: Callable[[int], str],
    timeout: float,
) -> SQLServer:
    """Start ``argv(port)`` on a free port, logging to ``folder/server.log``, and wait until it
    listens; a server that exits or stays silent is stopped and its log's end raised."""
    port = free_port()
    log_path = folder / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(
        argv(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = SQLServer(kind, url(port), port, process, folder, log)
    _ready(server, lambda: listens(port), timeout)
    return server


def _ready(server: SQLServer, ready: Callable[[], bool], timeout: float) -> None:
    why = wait_ready(server.process, ready, timeout=timeout)
    if why is not None:
        log = _tail(server.folder / "server.log")  # before stop() removes the folder
        server.stop()
        raise SQLServerError(f"{server.kind} {why} at start: {log}")


def _tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")[-2000:]
    return "(no log)"


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SQLServerError(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}")


def start_postgres(*, timeout: float = 60.0, max_connections: int = 300) -> SQLServer:
    """``initdb`` a fresh cluster (trust auth, user ``pyworkflow``) and start it on loopback."""
    initdb = _binary("initdb", _PG_BIN_DIRS)
    postgres = _binary("postgres", _PG_BIN_DIRS)
    pg_isready = _binary("pg_isready", _PG_BIN_DIRS)
    folder = Path(tempfile.mkdtemp(prefix="pyworkflow-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        try:
            shutil.chown(folder, user=_PG_SYSTEM_USER, group=_PG_SYSTEM_USER)
        except LookupError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise SQLServerError(f"no '{_PG_SYSTEM_USER}' system user: {APT_HINT}") from exc
    _initialise(
        folder,
        _as_server_user(
            [initdb, "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync"]
        ),
        "initdb",
    )
    settings = {
        "listen_addresses": "127.0.0.1",
        "max_connections": str(max_connections),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "32MB",
    }
    options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
    server = _launch(
        "postgres",
        folder,
        lambda port: _as_server_user(
            [postgres, "-D", str(data), "-p", str(port), "-k", str(folder), *options]
        ),
        lambda port: f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres",
        timeout,
    )
    # the port opens before recovery ends; pg_isready says when connections are accepted
    ready = [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(server.port)]
    _ready(server, lambda: subprocess.run(ready, check=False).returncode == 0, timeout)
    return server


def start_mysql(*, timeout: float = 60.0, max_connections: int = 400) -> SQLServer:
    """``mariadb-install-db`` a fresh data directory and start ``mariadbd`` on loopback; root
    without a password (the server listens on 127.0.0.1 only and dies with the test)."""
    install = _binary("mariadb-install-db", [Path("/usr/bin")])
    mariadbd = _binary("mariadbd", [Path("/usr/sbin")])
    folder = Path(tempfile.mkdtemp(prefix="pyworkflow-mysql-"))
    data = folder / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []
    _initialise(
        folder,
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
        ],
        "mariadb-install-db",
    )
    options = [
        "--no-defaults",
        f"--datadir={data}",
        "--bind-address=127.0.0.1",
        f"--socket={folder / 'mysqld.sock'}",
        f"--pid-file={folder / 'mysqld.pid'}",
        f"--max-connections={max_connections}",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=32M",
        *user,
    ]
    return _launch(
        "mysql",
        folder,
        lambda port: [mariadbd, *options, f"--port={port}"],
        lambda port: f"mysql://root@127.0.0.1:{port}/pyworkflow",
        timeout,
    )


STARTERS = {"postgres": start_postgres, "mysql": start_mysql}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyworkflow.dev.sql_servers")
    parser.add_argument("kind", choices=sorted(STARTERS))
    args = parser.parse_args(argv)
    try:
        server = STARTERS[args.kind]()
    except SQLServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(server.url, flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

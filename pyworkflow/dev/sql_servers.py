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
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pyworkflow.dev.dynamodb_local import free_port

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
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
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


def _wait_for_port(server: SQLServer, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            server.stop()
            raise SQLServerError(f"{server.kind} exited at start: {_tail(log)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    server.stop()
    raise SQLServerError(f"{server.kind} did not listen within {timeout:.0f}s: {_tail(log)}")


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
    folder = Path(tempfile.mkdtemp(prefix="pyworkflow-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        try:
            shutil.chown(folder, user=_PG_SYSTEM_USER, group=_PG_SYSTEM_USER)
        except LookupError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise SQLServerError(f"no '{_PG_SYSTEM_USER}' system user: {APT_HINT}") from exc
    try:
        _run(
            _as_server_user(
                [initdb, "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync"]
            ),
            "initdb",
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    port = free_port()
    log_path = folder / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
    argv = [
        postgres,
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(folder),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"max_connections={max_connections}",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "shared_buffers=32MB",
    ]
    process = subprocess.Popen(
        _as_server_user(argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
    server = SQLServer("postgres", url, port, process, folder, log)
    _wait_for_port(server, log_path, timeout)
    # the port opens before recovery ends; pg_isready says when connections are accepted
    ready = [_binary("pg_isready", _PG_BIN_DIRS), "-q", "-h", "127.0.0.1", "-p", str(port)]
    deadline = time.monotonic() + timeout
    while subprocess.run(ready, check=False).returncode != 0:
        if time.monotonic() > deadline or process.poll() is not None:
            server.stop()
            raise SQLServerError(f"postgres is not ready: {_tail(log_path)}")
        time.sleep(0.05)
    return server


def start_mysql(*, timeout: float = 60.0, max_connections: int = 400) -> SQLServer:
    """``mariadb-install-db`` a fresh data directory and start ``mariadbd`` on loopback; root
    without a password (the server listens on 127.0.0.1 only and dies with the test)."""
    install = _binary("mariadb-install-db", [Path("/usr/bin")])
    mariadbd = _binary("mariadbd", [Path("/usr/sbin")])
    folder = Path(tempfile.mkdtemp(prefix="pyworkflow-mysql-"))
    data = folder / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []
    try:
        _run(
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
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    port = free_port()
    log_path = folder / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
    argv = [
        mariadbd,
        "--no-defaults",
        f"--datadir={data}",
        f"--port={port}",
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
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"mysql://root@127.0.0.1:{port}/pyworkflow"
    server = SQLServer("mysql", url, port, process, folder, log)
    _wait_for_port(server, log_path, timeout)
    return server


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

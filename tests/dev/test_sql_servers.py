"""The throwaway PostgreSQL and MariaDB servers (``pyworkflow/dev/sql_servers.py``): started on
a free loopback port, and gone with their folder after ``stop()``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from pyworkflow.dev.processes import listens
from pyworkflow.dev.sql_servers import STARTERS, SQLServerError, _launch


@pytest.mark.parametrize("kind", sorted(STARTERS))
def test_a_started_server_listens_until_stopped(kind: str) -> None:
    server = STARTERS[kind]()
    try:
        assert server.kind == kind and f":{server.port}/" in server.url
        assert listens(server.port)
    finally:
        server.stop()
    assert server.process.returncode is not None and not server.folder.exists()
    assert not listens(server.port)


def test_a_server_that_exits_at_start_fails_with_its_log() -> None:
    folder = Path(tempfile.mkdtemp(prefix="pyworkflow-test-"))
    with pytest.raises(SQLServerError, match="exited at start: .*no data directory"):
        _launch(
            "fake",
            folder,
            lambda port: [sys.executable, "-c", "print('no data directory'); raise SystemExit(1)"],
            lambda port: f"fake://127.0.0.1:{port}",
            timeout=60,
        )
    assert not folder.exists()  # stop() removed it

"""The local servers' shared process helpers (``pyworkflow/dev/processes.py``)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

from pyworkflow.dev.processes import free_port, listens, stop_process, wait_ready

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


def test_stop_process_kills_a_process_that_ignores_sigterm() -> None:
    process = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    stop_process(process, grace=0.2)
    assert process.returncode == -signal.SIGKILL
    process.stdout.close()
    stop_process(process, grace=0.2)  # idempotent


def test_stop_process_terminates_a_process_that_obeys() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    stop_process(process, grace=30)
    assert process.returncode == -signal.SIGTERM


def test_wait_ready_says_a_process_exited() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert wait_ready(process, lambda: False, timeout=30) == "exited"


def test_wait_ready_returns_none_once_ready() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        calls = iter([False, False, True])
        assert wait_ready(process, lambda: next(calls), timeout=30, interval=0) is None
    finally:
        stop_process(process, grace=10)


def test_listens_tells_a_listening_port_from_a_free_one() -> None:
    port = free_port()
    assert not listens(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert listens(port)

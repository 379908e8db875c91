"""What the local servers share (DynamoDB Local, PostgreSQL, MariaDB): a free loopback port,
waiting until a started process is ready, and stopping it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

__all__ = ["free_port", "listens", "stop_process", "wait_ready"]


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it, so parallel runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens(port: int) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
) -> str | None:
    """Poll ``ready()`` until it says yes (None), the process exits (``"exited"``) or
    ``timeout`` seconds pass (``"did not answer in N s"``)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return "exited"
        if time.monotonic() > deadline:
            return f"did not answer in {timeout:.0f}s"
        time.sleep(interval)
    return None


def stop_process(process: subprocess.Popen[bytes], *, grace: float) -> None:
    """Terminate ``process``, kill it if it ignores SIGTERM for ``grace`` seconds; idempotent."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

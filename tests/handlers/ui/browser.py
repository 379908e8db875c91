"""Headless Chromium for the viewer's browser test: Debian's ``chromium`` driven by Playwright's
npm package ``playwright-core`` (pinned; no browser download: it drives the machine's browser by
``executablePath``), installed into ``.cache/playwright-core`` like DynamoDB Local.

What a machine needs (CI installs both): ``apt-get install -y chromium`` and Node.js with npm
(``apt-get install -y nodejs npm``; npm fetches ``playwright-core`` on first use). A missing
piece fails with that hint, never a skip.

``Browser`` talks to ``driver.cjs`` over its stdin/stdout, one JSON line each way.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

VERSION = "1.65.1"
PACKAGE = f"playwright-core@{VERSION}"
REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALL_DIR = REPO_ROOT / ".cache" / "playwright-core"
SCREENSHOT_DIR = REPO_ROOT / ".cache" / "screenshots"
DRIVER = Path(__file__).with_name("driver.cjs")
ENV_CHROMIUM = "PYWORKFLOW_CHROMIUM"  # a browser other than the one on PATH
CHROMIUM_HINT = (
    "the viewer's browser test needs Chromium: apt-get install -y chromium "
    f"(or set {ENV_CHROMIUM} to a Chromium binary)"
)
NODE_HINT = (
    f"the viewer's browser test needs Node.js and npm for {PACKAGE}: apt-get install -y nodejs npm"
)


class BrowserError(RuntimeError):
    """The browser cannot be installed, started or driven; the message says what to do."""


def find_chromium() -> str:
    path = (
        os.environ.get(ENV_CHROMIUM) or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not path or not Path(path).exists():
        raise BrowserError(CHROMIUM_HINT)
    return path


def _module_dir(directory: Path) -> Path:
    return directory / "node_modules" / "playwright-core"


def _installed(directory: Path) -> bool:
    package = _module_dir(directory) / "package.json"
    return package.is_file() and json.loads(package.read_text()).get("version") == VERSION


def ensure_installed(directory: Path = INSTALL_DIR) -> Path:
    """``playwright-core`` at the pinned version in ``directory`` (installed once; a file lock
    keeps parallel test runs from installing at the same time). Returns the module's folder."""
    if _installed(directory):
        return _module_dir(directory)
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise BrowserError(NODE_HINT)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed(directory):
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--prefix", str(directory), PACKAGE],
                capture_output=True,
                text=True,
                check=False,
                # playwright-core downloads nothing on install; say so anyway.
                env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
            )
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
                raise BrowserError(f"npm install {PACKAGE} failed:\n{tail}")
    if not _installed(directory):
        raise BrowserError(f"npm install {PACKAGE} left no playwright-core in {directory}")
    return _module_dir(directory)


class Browser:
    """One headless page. Each method is one driver command; a failed command raises
    ``BrowserError`` with the driver's message."""

    def __init__(self) -> None:
        chromium = find_chromium()
        module = ensure_installed()
        node = shutil.which("node")
        if node is None:
            raise BrowserError(NODE_HINT)
        self._ids = itertools.count(1)
        self._proc = subprocess.Popen(
            [node, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PLAYWRIGHT_CORE": str(module), "CHROMIUM_PATH": chromium},
        )

    def call(self, cmd: str, **args: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        request_id = next(self._ids)
        try:
            self._proc.stdin.write(json.dumps({"id": request_id, "cmd": cmd, **args}) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise BrowserError(f"the browser driver exited: {self._stderr()}") from None
        line = self._proc.stdout.readline()
        if not line:
            raise BrowserError(f"the browser driver exited: {self._stderr()}")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise BrowserError(f"{cmd} {args}: {answer.get('error')}")
        return answer["result"]

    def _stderr(self) -> str:
        self._proc.wait(timeout=10)
        assert self._proc.stderr is not None
        return self._proc.stderr.read()[-3000:]

    def goto(self, url: str) -> int:
        return int(self.call("goto", url=url)["status"])

    def click(self, selector: str) -> str:
        return str(self.call("click", selector=selector)["url"])

    def fill(self, selector: str, value: str) -> None:
        self.call("fill", selector=selector, value=value)

    def select(self, selector: str, value: str) -> None:
        self.call("select", selector=selector, value=value)

    def texts(self, selector: str) -> list[str]:
        return list(self.call("texts", selector=selector))

    def attrs(self, selector: str, name: str) -> list[str | None]:
        return list(self.call("attrs", selector=selector, name=name))

    def count(self, selector: str) -> int:
        return int(self.call("count", selector=selector))

    def evaluate(self, expression: str) -> Any:
        return self.call("evaluate", expression=expression)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.call("screenshot", path=str(path))
        return path

    def problems(self) -> list[str]:
        return list(self.call("problems"))

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(json.dumps({"cmd": "close"}) + "\n")
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def main() -> int:
    """``python -m tests.handlers.ui.browser --install``: install playwright-core and check that
    Chromium starts (for CI, before the tests); prints the browser's version."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="install and check, then exit")
    parser.parse_args()
    try:
        with Browser() as browser:
            print(
                f"{PACKAGE} in {INSTALL_DIR}; Chromium {browser.call('version')} at "
                f"{find_chromium()}"
            )
    except BrowserError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

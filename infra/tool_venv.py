"""A virtualenv of pinned command-line tools under ``.cache/`` (SAM CLI + cfn-lint, checkov):
tools that pin their own boto3 and so cannot share the project's environment.

Built once and rebuilt only when the pins change (``pins.json`` records them); a file lock
serialises parallel installs; an ignore-everything ``.gitignore`` keeps it out of git.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ToolVenv:
    path: Path
    pins: tuple[str, ...]
    probe: str = "python"  # a file in bin/ that exists once the tools are installed
    error: type[Exception] = RuntimeError
    label: str = "tool venv"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def installed_pins(self) -> tuple[str, ...] | None:
        marker = self.path / "pins.json"
        if not self.bin(self.probe).exists() or not marker.exists():
            return None
        try:
            return tuple(json.loads(marker.read_text()))
        except ValueError:
            return None

    def ensure(self, *, reinstall: bool = False) -> float | None:
        """Create the venv with the pinned tools unless it is there with these pins. Returns
        the seconds a fresh install took, None when the venv was reused."""
        if not reinstall and self.installed_pins() == self.pins:
            return None
        with self._install_lock():
            if not reinstall and self.installed_pins() == self.pins:  # another process did it
                return None
            start = time.monotonic()
            self._empty()  # not `venv --clear`: it would delete the lock we hold
            done = subprocess.run(
                [sys.executable, "-m", "venv", str(self.path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise self.error(f"python -m venv {self.path} failed:\n{done.stdout}{done.stderr}")
            log = self.path / "pip-install.log"
            with open(log, "w") as out:
                installed = subprocess.run(
                    [
                        str(self.bin("python")),
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "--no-input",
                        *self.pins,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if installed.returncode != 0:
                tail = "\n".join(log.read_text().splitlines()[-30:])
                raise self.error(f"pip install {' '.join(self.pins)} failed (log: {log}):\n{tail}")
            (self.path / "pins.json").write_text(json.dumps(list(self.pins)))
            return time.monotonic() - start

    @contextlib.contextmanager
    def _install_lock(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / ".gitignore").write_text(f"# the {self.label}\n*\n")
        with open(self.path / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _empty(self) -> None:
        for entry in self.path.iterdir():
            if entry.name in (".lock", ".gitignore"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

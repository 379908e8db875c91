"""A newcomer's first hour, on a fresh venv: ``pyworkflow init`` (pyworkflow from the freshly
built wheel), then the scaffold README's own commands, literally — install, a run on SQLite, the
project's tests (in-process and through the local AWS stack), ``pyworkflow dev`` — and a run
started over HTTP. Slow (a venv with the AWS stack's dependencies): it is the path users take."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def readme_commands(readme: str) -> list[str]:
    """The first ``bash`` block's commands, comments dropped."""
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block is not None, readme
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def user_env(project: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYWORKFLOW_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PATH"] = f"{project / '.venv/bin'}:{env.get('PATH', '')}"
    # DynamoDB Local's npm package: the copy CI installed, instead of a second download
    env["PYWORKFLOW_DYNAMODB_LOCAL_DIR"] = str(REPO / ".cache" / "dynamodb-local")
    return env


def http(method: str, url: str, body: object | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_scaffold_readme_commands_work_on_a_fresh_venv_with_the_wheel(
    wheel: Path, tmp_path: Path
) -> None:
    init = subprocess.run(
        [sys.executable, "-m", "pyworkflow", "init", "hello", "--from", str(wheel)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert init.returncode == 0, init.stdout + init.stderr
    project = tmp_path / "hello"
    commands = readme_commands((project / "README.md").read_text())
    assert commands[0].startswith("python3 -m venv .venv") and commands[-1].endswith(
        "pyworkflow dev"
    ), commands
    env = user_env(project)
    for command in commands[:-1]:
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{command}\n{output[-4000:]}"
        print(f"[scaffold] {command}: {time.monotonic() - started:.1f}s")
        if "workflows run greet" in command:
            assert "completed" in output and "Hello, world!" in output, output
        if "pytest" in command:
            assert "2 passed" in output, output

    dev = subprocess.Popen(
        ["bash", "-c", f"exec {commands[-1]}"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(
        target=lambda: lines.extend(iter(dev.stdout.readline, "")), daemon=True
    ).start()  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + 180
        while "Ctrl-C stops" not in "".join(lines):
            assert dev.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        api = re.search(r"API:\s+(http://127\.0\.0\.1:\d+)", "".join(lines))
        assert api is not None, "".join(lines)
        run_id = http("POST", f"{api.group(1)}/runs", {"workflow": "greet", "args": ["world"]})[
            "run_id"
        ]
        deadline = time.monotonic() + 90
        while (run := http("GET", f"{api.group(1)}/runs/{run_id}"))["status"] != "completed":
            assert run["status"] in ("pending", "running", "suspended"), run
            assert time.monotonic() < deadline, run
            time.sleep(0.3)
        assert "Hello, world!" in json.dumps(run["result"]), run
    finally:
        dev.send_signal(signal.SIGTERM)
        code = dev.wait(timeout=60)
    assert code == 0, "".join(lines)

"""``pyworkflow dev`` never hangs and never leaves a process behind: a busy port, a workflow
module that fails to import and a folder without a project are clear errors at start, and any
exit (SIGTERM included, also while DynamoDB Local is starting) stops DynamoDB Local's JVM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pyworkflow.cli import main
from tests.e2e.conftest import until

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = str(REPO / "template.yaml")


class Dev:
    """``pyworkflow dev ...`` in a child process, its output collected line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from pyworkflow.cli import main; main()", *args],
            cwd=cwd,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
                "PYWORKFLOW_DB": str(cwd / "dev.db"),
                **(env or {}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(iter(self.process.stdout.readline, "")),  # type: ignore[union-attr]
            daemon=True,
        )
        self._reader.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"pyworkflow dev hung for {timeout}s:\n{self.text}") from None
        self._reader.join(timeout=10)
        return code

    def descendants(self) -> set[int]:
        return descendants(self.process.pid)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def jvms(pids: set[int]) -> set[int]:
    """Those of ``pids`` that run DynamoDB Local."""
    out = set()
    for pid in pids:
        try:
            if b"DynamoDBLocal.jar" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.add(pid)
        except OSError:
            continue
    return out


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_busy_port_is_an_immediate_clear_error(busy_port: int, tmp_path: Path) -> None:
    dev = Dev(["dev", "--template", TEMPLATE, "--port", str(busy_port)], tmp_path)
    code = dev.wait(timeout=30)
    assert code != 0
    assert f"port {busy_port} on 127.0.0.1 is in use" in dev.text, dev.text
    assert "--port 0" in dev.text
    assert "Traceback" not in dev.text
    # checked before anything starts: no JVM was launched for nothing
    assert "starting DynamoDB Local" not in dev.text


def test_a_workflow_module_that_fails_to_import_fails_dev_at_start(
    dynamodb_endpoint: str, tmp_path: Path
) -> None:
    (tmp_path / "broken_flows.py").write_text(
        "import pyworkflow\n\nraise RuntimeError('the settings file is missing')\n"
    )
    dev = Dev(
        [
            "-m",
            "broken_flows",
            "dev",
            "--template",
            TEMPLATE,
            "--port",
            "0",
            "--dynamodb-endpoint",
            dynamodb_endpoint,
        ],
        tmp_path,
    )
    code = dev.wait(timeout=120)
    assert code != 0
    assert "'broken_flows' failed to import" in dev.text, dev.text
    assert "RuntimeError: the settings file is missing" in dev.text
    assert "broken_flows.py:3" in dev.text
    assert "Ctrl-C stops" not in dev.text  # no "ready" banner
    assert "Traceback" not in dev.text


def test_outside_a_project_dev_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["dev"])
    assert result.exit_code != 0
    assert f"No template.yaml in {tmp_path}" in result.output
    assert "pyworkflow init NAME" in result.output and "--template PATH" in result.output


def test_missing_local_stack_dependencies_name_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from pyworkflow.cli import dev as dev_command

    real = importlib.util.find_spec
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        dev_command.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "moto" else real(name, *a),
    )
    result = CliRunner().invoke(main, ["dev", "--template", TEMPLATE])
    assert result.exit_code != 0
    assert "moto missing" in result.output
    assert "pip install 'pyworkflow-durable[local]'" in result.output


def _sigterm_leaves_nothing(dev: Dev, ready_line: str, timeout: float) -> None:
    until(
        lambda: ready_line in dev.text or dev.process.poll() is not None,
        timeout,
        what=f"{ready_line!r} from pyworkflow dev",
    )
    assert dev.process.poll() is None, dev.text
    children = dev.descendants()
    assert jvms(children), "DynamoDB Local is not running under pyworkflow dev"
    dev.process.send_signal(signal.SIGTERM)
    dev.wait(timeout=60)
    assert "Traceback" not in dev.text, dev.text
    until(lambda: not alive(children), 15, what="dev's child processes to exit")


def test_sigterm_stops_dynamodb_local_and_leaves_no_child_process(tmp_path: Path) -> None:
    dev = Dev(["dev", "--template", TEMPLATE, "--port", "0"], tmp_path)
    try:
        _sigterm_leaves_nothing(dev, "Ctrl-C stops", 180)
    finally:
        if dev.process.poll() is None:
            dev.process.kill()
    assert dev.process.returncode == 0, dev.text
    assert "stopped" in dev.lines[-1]


def test_sigterm_while_dynamodb_local_starts_leaves_no_jvm(tmp_path: Path) -> None:
    dev = Dev(["dev", "--template", TEMPLATE, "--port", "0"], tmp_path)
    try:
        # SIGTERM as soon as the JVM exists, while it boots (it answers HTTP seconds later)
        until(lambda: jvms(dev.descendants()) or dev.process.poll() is not None, 60, what="the JVM")
        jvm = jvms(dev.descendants())
        assert jvm and "Ctrl-C stops" not in dev.text, dev.text
        _sigterm_leaves_nothing(dev, "starting DynamoDB Local", 60)
        assert not alive(jvm)
    finally:
        if dev.process.poll() is None:
            dev.process.kill()


def test_persist_keeps_dynamodb_local_data_in_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "ddb"
    dev = Dev(["dev", "--template", TEMPLATE, "--port", "0", "--persist", str(data)], tmp_path)
    try:
        until(
            lambda: "Ctrl-C stops" in dev.text or dev.process.poll() is not None,
            180,
            what="pyworkflow dev to come up",
        )
        assert dev.process.poll() is None, dev.text
        assert f"DynamoDB Local keeps its data in {data}" in dev.text
    finally:
        dev.process.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    assert any(data.glob("*.db")), list(data.iterdir())


def runtime_clients(pids: set[int]) -> set[int]:
    """Those of ``pids`` that run awslambdaric (a function under --lambda-runtime)."""
    out = set()
    for pid in pids:
        try:
            if b"awslambdaric" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.add(pid)
        except OSError:
            continue
    return out


def test_lambda_runtime_functions_cold_start_and_sigterm_stops_them(
    dynamodb_endpoint: str, tmp_path: Path
) -> None:
    dev = Dev(
        [
            "dev",
            "--template",
            TEMPLATE,
            "--port",
            "0",
            "--dynamodb-endpoint",
            dynamodb_endpoint,
            "--lambda-runtime",
        ],
        tmp_path,
    )
    try:
        until(
            lambda: "Ctrl-C stops" in dev.text or dev.process.poll() is not None,
            120,
            what="pyworkflow dev to come up",
        )
        assert dev.process.poll() is None, dev.text
        functions = runtime_clients(dev.descendants())
        assert len(functions) == 2, dev.text  # the API and the worker, one process each
        for name in ("WorkerFunction", "ApiFunction"):
            assert re.search(rf"Lambda +\S*{name}\S* cold start \d+ ms \(pid \d+\)", dev.text), (
                dev.text
            )
        dev.process.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=60) == 0, dev.text
        assert "Traceback" not in dev.text, dev.text
        until(lambda: not alive(functions), 15, what="the functions' processes to exit")
    finally:
        if dev.process.poll() is None:
            dev.process.kill()


def test_quiet_hides_the_request_and_machinery_lines(
    dynamodb_endpoint: str, tmp_path: Path
) -> None:
    import json
    import re
    import urllib.request

    dev = Dev(
        [
            "-m",
            "tests.e2e.workflows",
            "dev",
            "--template",
            TEMPLATE,
            "--port",
            "0",
            "--dynamodb-endpoint",
            dynamodb_endpoint,
            "--quiet",
        ],
        tmp_path,
    )
    try:
        until(
            lambda: "Ctrl-C stops" in dev.text or dev.process.poll() is not None,
            120,
            what="pyworkflow dev to come up",
        )
        api = re.search(r"API:\s+(http://127\.0\.0\.1:\d+)", dev.text)
        assert api is not None, dev.text
        request = urllib.request.Request(
            f"{api.group(1)}/runs",
            method="POST",
            data=json.dumps({"workflow": "e2e_add", "args": [1, 2]}).encode(),
            headers={"content-type": "application/json"},
        )
        run_id = json.loads(urllib.request.urlopen(request, timeout=10).read())["run_id"]

        def done() -> bool:
            with urllib.request.urlopen(f"{api.group(1)}/runs/{run_id}", timeout=10) as r:
                return json.loads(r.read())["status"] == "completed"

        until(done, 60, what="the run to complete")
    finally:
        dev.process.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    after_banner = dev.text.split("Ctrl-C stops", 1)[1]
    assert "POST" not in after_banner and "SQS" not in after_banner, after_banner

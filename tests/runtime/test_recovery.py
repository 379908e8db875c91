"""A process killed with SIGKILL mid-run loses nothing: the worker finishes the run and
completed steps do not run again."""

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyworkflow
from pyworkflow import EventType, RunStatus
from pyworkflow.runtime.local import get_runtime
from pyworkflow.runtime.worker import owner_is_dead, run_once
from pyworkflow.storage import SQLiteStorageBackend

MODULE = textwrap.dedent(
    """
    import os, signal
    from pathlib import Path
    from pyworkflow import step, workflow, sleep

    LOG = Path(os.environ["CRASH_LOG"])

    @step
    async def work(i: int) -> int:
        with LOG.open("a") as f:
            f.write(f"{i}\\n")
        if i == 3 and os.environ.get("CRASH_AT_3") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        return i * i

    @workflow
    async def crashy() -> int:
        total = 0
        for i in range(1, 6):
            total += await work(i)
        return total
    """
)

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[1])
    import crash_module_{tag}
    from pyworkflow import start
    asyncio.run(start(crash_module_{tag}.crashy))
    """
)


def test_kill_9_mid_run_then_worker_finishes_without_rerunning_steps(tmp_path: Path, monkeypatch):
    tag = tmp_path.name.replace("-", "_")
    (tmp_path / f"crash_module_{tag}.py").write_text(MODULE)
    db = tmp_path / "crash.db"
    log = tmp_path / "steps.log"
    env = {
        **os.environ,
        "PYWORKFLOW_DB": str(db),
        "CRASH_LOG": str(log),
        "CRASH_AT_3": "1",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), *sys.path]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tag=tag), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    assert log.read_text().split() == ["1", "2", "3"]

    # A fresh process (this one) with the same database finishes the run.
    monkeypatch.setenv("CRASH_LOG", str(log))
    monkeypatch.setenv("CRASH_AT_3", "0")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(f"crash_module_{tag}")
    store = SQLiteStorageBackend(db)
    pyworkflow.configure(storage=store)

    import asyncio

    async def recover():
        [run] = (await store.list_runs_page()).items
        assert run.status == RunStatus.RUNNING
        assert owner_is_dead(run.lease_owner)
        stats = await run_once(get_runtime())
        return run.run_id, stats

    run_id, stats = asyncio.run(recover())
    assert stats.completed == 1
    run = asyncio.run(store.get_run(run_id))
    assert run.status == RunStatus.COMPLETED
    assert run.get_result() == 1 + 4 + 9 + 16 + 25
    # Steps 1 and 2 were recorded before the kill: they did not run again. Step 3 was running
    # when the process died (at-least-once), so it ran a second time.
    assert log.read_text().split() == ["1", "2", "3", "3", "4", "5"]
    events = asyncio.run(store.get_events(run_id))
    completed = [e.data["op"] for e in events if e.type == EventType.STEP_COMPLETED]
    assert completed == [0, 1, 2, 3, 4]

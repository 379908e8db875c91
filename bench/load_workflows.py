"""The workflow ``bench/load.py`` drives through the local stack: ``steps`` trivial steps.

Each step execution appends ``<run_id> <index>`` to the file named by ``LOAD_EXECUTIONS`` (a side
channel outside the engine's own records): a step executed twice shows up as a repeated line,
whatever the run's history says. The stack's functions import this module from
``PYWORKFLOW_MODULE``; they run in this process (one thread per function), so the lock is enough;
``O_APPEND`` keeps lines whole across processes too (``--lambda-runtime``).
"""

from __future__ import annotations

import os
import threading

from pyworkflow import get_context, step, workflow

EXECUTIONS = "LOAD_EXECUTIONS"
_lock = threading.Lock()


def _record(run_id: str, index: int) -> None:
    path = os.environ.get(EXECUTIONS)
    if not path:
        return
    line = f"{run_id} {index}\n".encode()
    with _lock:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


@step
async def load_step(run_id: str, index: int, x: int) -> int:
    _record(run_id, index)
    return x + 1


@workflow(name="load_steps")
async def load_steps(steps: int) -> int:
    run_id = get_context().run_id
    x = 0
    for index in range(steps):
        x = await load_step(run_id, index, x)
    return x

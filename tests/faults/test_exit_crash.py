"""The subprocess variant: a process really dies (``os._exit`` at the crash point, no cleanup,
no ``finally``), and a new process recovers its runs: a worker pass finds the dead process's
lease (same host, pid gone) and the hook, whose token died with the process, is resumed by name.
A sample of the points: every write kind once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from pyworkflow.core.clock import ManualClock, new_id
from pyworkflow.runtime.faults import EXIT_CODE, Faults
from tests.faults.harness import EmbeddedDriver, broken_invariants, family

REPO = Path(__file__).resolve().parents[2]
LATER = datetime(2030, 1, 2, tzinfo=UTC)  # the dead process's clock starts a day earlier
SCRIPT = """
import asyncio, sys
from pathlib import Path
from pyworkflow.core.clock import ManualClock
from pyworkflow.runtime.faults import Faults
from tests.faults.harness import EmbeddedDriver

async def main():
    driver = EmbeddedDriver(Path(sys.argv[1]), Faults(crash_at=int(sys.argv[3]), mode="exit"),
                            ManualClock())
    await driver.run(sys.argv[2])

asyncio.run(main())
sys.exit(0)  # reached only if the crash point was never reached
"""


def sample(labels: list[str]) -> list[int]:
    """The first point of each distinct label (1-based)."""
    firsts: dict[str, int] = {}
    for number, label in enumerate(labels, start=1):
        firsts.setdefault(label, number)
    return sorted(firsts.values())


async def test_a_killed_process_is_recovered_by_the_next(tmp_path: Path) -> None:
    faults = Faults()
    driver = EmbeddedDriver(tmp_path / "clean.db", faults, ManualClock())
    outcome = await driver.run(new_id("clean"))
    assert driver.rt is not None and outcome.run_id is not None
    clean = await family(driver.rt.storage, outcome.run_id)
    await driver.close()
    chosen = sample(faults.labels)
    failures: list[str] = []
    for number in chosen:
        db, key = tmp_path / f"p{number}.db", new_id(f"p{number}")
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", SCRIPT, str(db), key, str(number)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={
                "PYTHONPATH": str(REPO),
                "PATH": "/usr/bin:/bin",
                "PYWORKFLOW_DB": str(tmp_path / "default.db"),
            },
        )
        where = f"point {number} ({faults.labels[number - 1]})"
        if proc.returncode != EXIT_CODE:
            failures.append(f"{where}: exit code {proc.returncode}: {proc.stderr[-500:]}")
            continue
        # The new process starts later than the dead one's last write: a manual clock restarted
        # at the same instant would stamp a re-created hook with its orphan's created_at, and
        # "the newest hook of this id" would be a coin toss (never so with a real clock).
        recovery = EmbeddedDriver(db, Faults(armed=False), ManualClock(LATER))
        try:
            recovered = await recovery.run(key)
            assert recovery.rt is not None and recovered.run_id is not None
            fam = await family(recovery.rt.storage, recovered.run_id)
        finally:
            await recovery.close()
        if recovered.stuck:
            failures.append(f"{where}: lost")
        failures += [f"{where}: {p}" for p in broken_invariants(fam)]
        if fam.result != clean.result:
            failures.append(f"{where}: result {fam.result!r} != {clean.result!r}")
    print(f"\nkilled at {len(chosen)} of {len(faults.labels)} points, {len(failures)} failures")
    assert failures == [], "\n".join(failures)

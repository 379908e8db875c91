"""The soak (bench/soak.py) at CI size: 40 runs through the local AWS stack (moto SQS, SQLite)
with duplicated messages and crashed worker invocations. Figures are printed; the test asserts
the invariants only (no timings)."""

from __future__ import annotations

from bench.soak import soak


async def test_soak_ci_size() -> None:
    report = await soak(
        runs=40, dup=0.12, crash=0.07, seed=7, quiet=30.0, sweep_every=10.0, batch_size=4
    )
    print("\n" + "\n".join(report.lines()))
    assert report.problems == []
    assert report.started == report.completed == 40
    assert report.lost == report.broken == report.failed == 0
    assert report.dlq == 0
    assert report.duplicated > 0 and report.crashes > 0  # the faults did happen

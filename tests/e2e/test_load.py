"""bench/load.py's core at test size: runs pushed through the local stack (HTTP API, SQS event
source with the template's batch size, worker, DynamoDB Local) all complete, each exactly once,
each step executed exactly once. Figures are printed; only correctness is asserted."""

from __future__ import annotations

from bench.load import load


def test_load_loses_and_duplicates_no_run_or_step(dynamodb_endpoint: str) -> None:
    report = load(runs=20, steps=10, starters=4, dynamodb_endpoint=dynamodb_endpoint)
    print("\n" + "\n".join(report.lines()))
    assert report.problems == []
    assert report.started == report.completed == 20
    assert report.lost == report.duplicated_runs == report.duplicated_steps == 0
    assert report.missing_steps == 0
    assert len(report.latencies) == 20 and all(s >= 0 for s in report.latencies)
    assert report.invocations >= 1 and report.messages >= 20  # the worker, fed by SQS, did it

"""Scan ``template.yaml`` for insecure settings with checkov, the way CI does.

    python -m infra.security_scan              # install (once) and scan
    python -m infra.security_scan --reinstall  # rebuild the tool venv first

Every finding is either fixed in the template or skipped there, on its resource, with the
reason (``Metadata: checkov: skip: [{id, comment}]``); this prints each skip with its reason,
so the justifications are read, not only written. The scan fails on any finding not skipped.

Also scanned when present: the plain CloudFormation that SAM's transform makes of the template
(``python -m infra.lint_template`` writes it to ``.aws-sam/lint/template.cfn.json``, before
this step in CI), where the roles, stages and permissions SAM generates can be seen.

Why a separate venv (``.cache/checkov-venv``): checkov pins its own boto3 and many libraries
that clash with the project's. It is rebuilt whenever the pins below change.

Offline: ``--skip-download`` (no policies fetched from a platform), no API key, no telemetry,
dummy AWS credentials; nothing is uploaded anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"
TRANSFORMED = REPO_ROOT / ".aws-sam" / "lint" / "template.cfn.json"
VENV = REPO_ROOT / ".cache" / "checkov-venv"
# Exact pin: checkov's policies change with every release, and so would the verdict.
PINS = ("checkov==3.3.30",)


class ScanError(RuntimeError):
    """The tool venv could not be set up, or checkov did not produce a report."""


@dataclass
class Finding:
    check_id: str
    name: str
    resource: str
    lines: tuple[int, int] | None
    comment: str = ""

    @classmethod
    def from_checkov(cls, raw: dict[str, Any]) -> Finding:
        lines = raw.get("file_line_range")
        suppress = raw.get("check_result", {}).get("suppress_comment") or ""
        return cls(
            check_id=str(raw.get("check_id")),
            name=str(raw.get("check_name")),
            resource=str(raw.get("resource")),
            lines=(int(lines[0]), int(lines[1])) if lines else None,
            comment=" ".join(str(suppress).split()),
        )


@dataclass
class Report:
    target: str
    passed: int = 0
    failed: list[Finding] = field(default_factory=list)
    skipped: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def offline_env() -> dict[str, str]:
    """No API key, no profile, dummy credentials, no telemetry: nothing leaves the machine."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "BC_", "PRISMA_", "CKV_"))
        and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "offline-scan",
            "AWS_SECRET_ACCESS_KEY": "offline-scan",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "BC_SKIP_MAPPING": "TRUE",  # no guideline mapping download
            "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


# --- the tool venv ------------------------------------------------------------------------
def _tools() -> Any:
    # imported here: this file also runs as a plain script inside the tool venv (python -I),
    # where the infra package is not importable
    from infra.tool_venv import ToolVenv

    return ToolVenv(
        VENV,
        PINS,
        probe="checkov",
        error=ScanError,
        label="checkov tool venv (infra/security_scan.py)",
    )


def venv_bin(name: str) -> Path:
    return _tools().bin(name)


def ensure_venv(*, reinstall: bool = False) -> float | None:
    """Create ``VENV`` with the pinned tools unless it is there with these pins; the seconds a
    fresh install took, None when it was reused."""
    return _tools().ensure(reinstall=reinstall)


# --- the scan -----------------------------------------------------------------------------
def scan(target: Path) -> Report:
    """checkov's CloudFormation checks (SAM included) on one file, as a report."""
    start = time.monotonic()
    argv = [
        str(venv_bin("checkov")),
        "--file",
        str(target),
        "--framework",
        "cloudformation",
        "--skip-download",
        "--output",
        "json",
        "--compact",
    ]
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env=offline_env(), capture_output=True, text=True, check=False
    )
    shown = _short(str(target))
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise ScanError(
            f"checkov gave no JSON report for {shown} (exit {done.returncode}):"
            f"\n{(done.stdout + done.stderr)[-3000:]}"
        ) from None
    if isinstance(data, list):  # one report per framework; we asked for one
        data = next((d for d in data if d.get("check_type") == "cloudformation"), {})
    results = data.get("results") or {}
    summary = data.get("summary") or {}
    if not results and not summary:
        raise ScanError(f"checkov found nothing to scan in {shown}: {done.stderr[-2000:]}")
    return Report(
        target=shown,
        seconds=time.monotonic() - start,
        passed=int(summary.get("passed", len(results.get("passed_checks") or []))),
        failed=[Finding.from_checkov(r) for r in results.get("failed_checks") or []],
        skipped=[Finding.from_checkov(r) for r in results.get("skipped_checks") or []],
    )


def _short(path: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(REPO_ROOT))
    return path


def targets(template: Path) -> list[Path]:
    """The template, and SAM's transform of it when that is at least as new."""
    found = [template]
    if (
        template == TEMPLATE
        and TRANSFORMED.exists()
        and TRANSFORMED.stat().st_mtime >= template.stat().st_mtime
    ):
        found.append(TRANSFORMED)
    return found


# --- report -------------------------------------------------------------------------------
def print_report(report: Report) -> None:
    mark = "PASS" if report.ok else "FAIL"
    print(
        f"[{mark}] checkov {report.target}: {report.passed} passed, {len(report.failed)} "
        f"failed, {len(report.skipped)} skipped (justified)  ({report.seconds:.1f}s)"
    )
    for finding in report.failed:
        where = f" lines {finding.lines[0]}-{finding.lines[1]}" if finding.lines else ""
        print(f"       FAILED {finding.check_id} {finding.resource}{where}: {finding.name}")
    for finding in report.skipped:
        print(f"       skipped {finding.check_id} {finding.resource}: {finding.comment}")
    if report.failed:
        print(
            "       Fix it in the template, or skip it on the resource with the reason:\n"
            "         Metadata: {checkov: {skip: [{id: CKV_..., comment: why}]}}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.security_scan",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--reinstall", action="store_true", help="rebuild .cache/checkov-venv")
    args = parser.parse_args(argv)

    print(f"tools: {' '.join(PINS)} in {_short(str(VENV))}")
    try:
        seconds = ensure_venv(reinstall=args.reinstall)
        print("tools: reused" if seconds is None else f"tools: installed in {seconds:.0f}s")
        reports = [scan(target) for target in targets(args.template.resolve())]
    except ScanError as exc:
        print(f"[FAIL] {exc}")
        return 1
    for report in reports:
        print_report(report)
    failed = sum(len(r.failed) for r in reports)
    print(
        f"security scan: {failed} unjustified finding(s)"
        if failed
        else "security scan: no unjustified findings"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

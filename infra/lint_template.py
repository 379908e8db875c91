"""Check ``template.yaml`` the way CI does: SAM's validator, cfn-lint, and cfn-lint again on
the plain CloudFormation that SAM's transform makes of it.

    python -m infra.lint_template              # install (once) and run every check
    python -m infra.lint_template --reinstall  # rebuild the tool venv first

Why a separate venv (``.cache/sam-venv``): SAM CLI pins its own boto3/botocore, which clash
with the project's (aioboto3 caps them), so it never goes into the project's environment. The
venv is rebuilt whenever the pins below change.

Why the transformed check: SAM expands functions into roles, permissions, event source
mappings, rules and API stages. Some mistakes exist only in that expansion, circular
dependencies above all (a function's environment naming something that depends on the
function), so cfn-lint must see the expanded template too.

Everything runs offline: a region and dummy credentials are set, nothing calls AWS
(``sam validate --lint`` only lints; without ``--lint`` it would call IAM).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"
VENV = REPO_ROOT / ".cache" / "sam-venv"
# The transformed template lands in SAM's own (git-ignored) build folder, kept for reading.
TRANSFORMED = REPO_ROOT / ".aws-sam" / "lint" / "template.cfn.json"
# Exact pins: an unpinned aws-sam-cli resolves a different dependency set every week.
PINS = ("aws-sam-cli==1.170.0", "cfn-lint==1.58.0")
# What `sam package` would put in place of a local CodeUri; SAM's transform wants an S3 URI.
CODE_PLACEHOLDER = "s3://pyworkflow-lint-placeholder/code.zip"
OUTPUT_LINES = 40  # per failed check


class LintError(RuntimeError):
    """The tool venv could not be set up; the message says why."""


@dataclass
class Result:
    name: str
    command: str
    ok: bool
    seconds: float
    output: str
    show_output: bool = False  # also when it passes (a short summary worth reading)


def offline_env() -> dict[str, str]:
    """The environment of every check: a region, dummy credentials, no profile, no telemetry,
    SAM's settings kept inside the venv. Nothing here can reach an AWS account."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "offline-lint",
            "AWS_SECRET_ACCESS_KEY": "offline-lint",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAM_CLI_TELEMETRY": "0",
            # SAM CLI's settings folder (otherwise ~/.aws-sam); it also records its weekly
            # "newer version?" check there.
            "__SAM_CLI_APP_DIR": str(VENV / "sam-app-dir"),
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
        probe="python",
        error=LintError,
        label="SAM CLI tool venv (infra/lint_template.py)",
    )


def venv_bin(name: str) -> Path:
    return _tools().bin(name)


def ensure_venv(*, reinstall: bool = False) -> float | None:
    """Create ``VENV`` with the pinned tools unless it is there with these pins; the seconds a
    fresh install took, None when it was reused."""
    return _tools().ensure(reinstall=reinstall)


# --- the checks ---------------------------------------------------------------------------
def run_check(name: str, argv: Sequence[str], *, show_output: bool = False) -> Result:
    start = time.monotonic()
    done = subprocess.run(
        list(argv), cwd=REPO_ROOT, env=offline_env(), capture_output=True, text=True, check=False
    )
    shown = " ".join(_short(a) for a in argv)
    return Result(
        name=name,
        command=shown,
        ok=done.returncode == 0,
        seconds=time.monotonic() - start,
        output=(done.stdout + done.stderr).strip(),
        show_output=show_output,
    )


def _short(arg: str) -> str:
    """Paths relative to the repository, for readable command lines."""
    with contextlib.suppress(ValueError):
        return str(Path(arg).relative_to(REPO_ROOT))
    return arg


def checks(template: Path) -> list[Result]:
    """Every check, in order; the last one only if the transform produced its input."""
    python, sam, cfn_lint = (str(venv_bin(n)) for n in ("python", "sam", "cfn-lint"))
    results = [
        run_check(
            "sam validate --lint",
            [sam, "validate", "--lint", "--region", "us-east-1", "-t", str(template)],
        ),
        run_check("cfn-lint (SAM template)", [cfn_lint, "--", str(template)]),
        run_check(
            "SAM transform (samtranslator)",
            [
                python,
                "-I",
                str(Path(__file__).resolve()),
                "--transform",
                str(template),
                str(TRANSFORMED),
            ],
            show_output=True,
        ),
    ]
    if results[-1].ok:
        results.append(
            run_check("cfn-lint (transformed CloudFormation)", [cfn_lint, "--", str(TRANSFORMED)])
        )
    return results


def transform(template: Path, out: Path) -> None:
    """SAM template -> CloudFormation JSON with SAM's own translator. Runs inside the tool
    venv (``--transform``), where samtranslator is installed; the project's venv lacks it."""
    from samtranslator.translator.transform import transform as sam_transform
    from samtranslator.yaml_helper import yaml_parse

    document = yaml_parse(template.read_text())
    for resource in _functions(document):
        resource.setdefault("Properties", {})
        _placeholder_code(resource["Properties"])
    _placeholder_code((document.get("Globals") or {}).get("Function") or {})

    class NoManagedPolicies:
        """Managed policies named by name would need IAM to resolve; ours are ARNs."""

        def load(self) -> dict[str, str]:
            return {}

    output = sam_transform(document, {}, NoManagedPolicies())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(output, indent=2, sort_keys=True) + "\n")
    kinds: dict[str, int] = {}
    for resource in output.get("Resources", {}).values():
        kinds[resource["Type"]] = kinds.get(resource["Type"], 0) + 1
    print(f"{len(output.get('Resources', {}))} CloudFormation resources -> {_short(str(out))}")
    for kind, count in sorted(kinds.items()):
        print(f"  {count} x {kind}")


def _functions(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r
        for r in (document.get("Resources") or {}).values()
        if isinstance(r, dict) and r.get("Type") == "AWS::Serverless::Function"
    ]


def _placeholder_code(properties: dict[str, Any]) -> None:
    code = properties.get("CodeUri")
    if isinstance(code, str) and not code.startswith("s3://"):
        properties["CodeUri"] = CODE_PLACEHOLDER


# --- report -------------------------------------------------------------------------------
def report(results: Sequence[Result]) -> bool:
    for result in results:
        mark = "PASS" if result.ok else "FAIL"
        print(f"[{mark}] {result.name}  ({result.seconds:.1f}s)")
        print(f"       $ {result.command}")
        lines = result.output.splitlines()
        if not result.ok or result.show_output:
            for line in lines[:OUTPUT_LINES]:
                print(f"       | {line}")
            if len(lines) > OUTPUT_LINES:
                print(f"       | ... {len(lines) - OUTPUT_LINES} more lines")
    failed = [r.name for r in results if not r.ok]
    if failed:
        print(f"template: {len(failed)} of {len(results)} checks FAILED: {', '.join(failed)}")
        return False
    print(f"template: all {len(results)} checks passed")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.lint_template",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--reinstall", action="store_true", help="rebuild .cache/sam-venv")
    parser.add_argument(
        "--transform", nargs=2, type=Path, metavar=("TEMPLATE", "OUT"), help=argparse.SUPPRESS
    )  # internal: runs inside the tool venv
    args = parser.parse_args(argv)
    if args.transform:
        transform(*args.transform)
        return 0

    template = args.template.resolve()
    print(f"tools: {' '.join(PINS)} in {_short(str(VENV))}")
    try:
        seconds = ensure_venv(reinstall=args.reinstall)
    except LintError as exc:
        print(f"[FAIL] tool venv: {exc}")
        return 1
    print("tools: reused" if seconds is None else f"tools: installed in {seconds:.0f}s")
    return 0 if report(checks(template)) else 1


if __name__ == "__main__":
    sys.exit(main())

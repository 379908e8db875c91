"""Build the Lambda artifact the way ``sam deploy`` would ship it, and check it.

    python -m infra.build_artifact                # sam build (arm64 + x86 stand-in), checks
    python -m infra.build_artifact --find-python  # print the python3.12 it would use

How the arm64 build is done: by SAM itself, ``sam build`` on ``template.yaml`` as written
(``Architectures: [arm64]``), without Docker. SAM's pip workflow (aws-lambda-builders) runs
``pip download`` with the local python3.12, then replaces every wheel that is not compatible
with the function's platform by a ``pip download --only-binary=:all: --platform
manylinux2014_aarch64`` (and the newer manylinux_2_x_aarch64 tags Lambda's glibc allows). So no
hand-made dependency layer is needed, as long as every dependency publishes aarch64 wheels (an
sdist with C code would fail the build, which is what we want to know). The check below reads
every native extension's ELF header to prove they are aarch64.

The checks, for every ``AWS::Serverless::Function`` of the template:

(a) imports: this x86_64 machine cannot run aarch64 code, so a second ``sam build`` of the
    same template with only ``Architectures`` switched to x86_64 stands in. Its function
    directory is imported by a clean ``python3.12 -I -S`` (no site-packages, no user site,
    no PYTHONPATH: the build directory is the only entry added to ``sys.path``), with the
    function's environment from the template (references replaced by placeholders): the
    handler module imports, its handler is callable, the ``WorkflowModule`` default imports,
    so does every top-level module installed from requirements.txt (the dependencies the
    handler imports lazily), and every module loaded came from the build directory or the
    standard library. Both builds must hold the same distributions at the same versions.
(b) size: the unzipped size of each arm64 function directory, in MB (MiB, as Lambda counts its
    250 MB limit), must stay below ``SIZE_LIMIT_MB``.
(c) contents: no test or development distribution (moto, pytest, ruff, mypy, import-linter,
    schemathesis, hypothesis, build, twine...) is in it. boto3/botocore are pinned by
    requirements.txt and kept (Lambda's runtime also has a copy, of its own version); their
    size is reported. So is everything ``CodeUri: .`` copies from the repository root besides
    the code (tests/, docs/, a leftover build/...): SAM's pip workflow has no way to exclude
    it, beyond its fixed list (.git, .venv, .cache, __pycache__...).

Cached under ``.cache/``: the SAM CLI venv (shared with ``infra.lint_template``) and pip's
HTTP cache (``.cache/lambda-pip``, ``PIP_CACHE_DIR``; it fills only where the index allows its
responses to be cached). The builds themselves are redone on every run. SAM's own build cache
(``--cached``) is not used: it keys on a hash of the whole repository and keeps dependencies
in ``.aws-sam/deps``, so it would rarely hit in CI and can serve stale dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.lint_template import REPO_ROOT, TEMPLATE, LintError, ensure_venv, offline_env, venv_bin

OUT = REPO_ROOT / ".aws-sam" / "artifact"  # git-ignored, like every SAM build
PIP_CACHE = REPO_ROOT / ".cache" / "lambda-pip"
RUNTIME = (3, 12)  # template.yaml's python3.12
SIZE_LIMIT_MB = 100.0  # far below Lambda's 250 MB (unzipped, function + layers)
LAMBDA_LIMIT_MB = 250.0
MB = 1024 * 1024
# Distributions / top-level modules of the dev extras and the tests: never in the artifact.
FORBIDDEN = frozenset(
    {
        "moto",
        "pytest",
        "_pytest",
        "pytest_asyncio",
        "ruff",
        "mypy",
        "mypyc",
        "import_linter",
        "importlinter",
        "schemathesis",
        "hypothesis",
        "build",
        "twine",
    }
)
# In the artifact on purpose (requirements.txt pins them), reported for their size.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
ELF_MACHINES = {"arm64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64


class ArtifactError(RuntimeError):
    """The build could not run (no python3.12, no SAM CLI); the message says why."""


# --- pure parts (tests/dev/test_build_artifact.py) ----------------------------------------
def canonical(name: str) -> str:
    """A distribution or module name compared the PEP 503 way, with ``_`` for separators."""
    return re.sub(r"[-_.]+", "_", name).lower()


def distributions(build_dir: Path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``*.dist-info`` folders at the top of a build."""
    found = {}
    for entry in build_dir.glob("*.dist-info"):
        name, _, version = entry.name[: -len(".dist-info")].rpartition("-")
        found[canonical(name)] = version
    return found


def top_level_modules(build_dir: Path) -> set[str]:
    """Importable top-level names: packages (folders with ``__init__.py``; a folder without
    one, such as setuptools' ``build/``, is not the ``build`` package), ``x.py`` and ``x.*.so``
    files."""
    names = set()
    for entry in build_dir.iterdir():
        if entry.is_dir() and (entry / "__init__.py").is_file():
            names.add(entry.name)
        elif entry.suffix in (".py", ".so"):
            names.add(entry.name.split(".", 1)[0])
    return {name for name in names if name.isidentifier()}


def forbidden_found(build_dir: Path, forbidden: Iterable[str] = FORBIDDEN) -> list[str]:
    """The forbidden distributions and modules present, sorted (``dist:`` / ``module:``)."""
    banned = {canonical(n) for n in forbidden}
    hits = [f"dist:{name}" for name in distributions(build_dir) if name in banned]
    hits += [f"module:{name}" for name in top_level_modules(build_dir) if canonical(name) in banned]
    return sorted(hits)


def copied_from_source(build_dir: Path, source_dir: Path) -> list[str]:
    """Top-level entries of the build that ``CodeUri`` copied from the source folder (as
    opposed to installed dependencies): the project's code and whatever else lies there."""
    installed = {p.name for p in build_dir.glob("*.dist-info")}
    return sorted(
        entry.name
        for entry in build_dir.iterdir()
        if entry.name not in installed and (source_dir / entry.name).exists()
    )


def tree_size(path: Path) -> int:
    """Bytes of every file under ``path`` (symlinks counted as links, not followed): the
    unzipped size Lambda measures."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += (Path(root) / name).lstat().st_size
    return total


def sizes_of(build_dir: Path, names: Iterable[str]) -> dict[str, int]:
    """Bytes of each named top-level entry (module folder or ``name.py``) and of its
    ``*.dist-info``; names absent from the build are left out."""
    result = {}
    for name in names:
        paths = [build_dir / name, build_dir / f"{name}.py"]
        paths += [p for p in build_dir.glob("*.dist-info") if _dist_name(p) == canonical(name)]
        present = [p for p in paths if p.exists()]
        if present:
            result[name] = sum(tree_size(p) for p in present)
    return result


def _dist_name(dist_info: Path) -> str:
    return canonical(dist_info.name[: -len(".dist-info")].rpartition("-")[0])


def elf_machine(path: Path) -> int | None:
    """The ELF ``e_machine`` of a shared object (183 aarch64, 62 x86_64), None if not ELF."""
    with open(path, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    order = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], order)


def foreign_extensions(build_dir: Path, architecture: str) -> list[str]:
    """Native files (``*.so*``) not built for ``architecture``, relative to the build."""
    want = ELF_MACHINES[architecture]
    bad = []
    for path in sorted(build_dir.rglob("*.so*")):
        if path.is_file() and not path.is_symlink() and elf_machine(path) != want:
            bad.append(str(path.relative_to(build_dir)))
    return bad


def native_count(build_dir: Path) -> int:
    return sum(1 for p in build_dir.rglob("*.so*") if p.is_file() and elf_machine(p))


def with_architecture(template: dict[str, Any], architecture: str) -> dict[str, Any]:
    """A copy of a (long-form) template whose functions all build for ``architecture``."""
    copy = json.loads(json.dumps(template))
    function_globals = (copy.get("Globals") or {}).get("Function")
    if isinstance(function_globals, dict):
        function_globals["Architectures"] = [architecture]
    for resource in (copy.get("Resources") or {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["Architectures"] = [architecture]
    return copy


def mb(size: int) -> float:
    return size / MB


# --- python3.12 ---------------------------------------------------------------------------
def _probe(python: str) -> str | None:
    """The real executable behind ``python`` if it is CPython 3.12, else None."""
    code = "import sys; print(sys.version_info[:2] == (3, 12), sys.executable)"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
        ok, _, executable = done.stdout.strip().partition(" ")
        if done.returncode == 0 and ok == "True":
            return executable
    return None


def python312_candidates() -> list[str]:
    """Where Lambda's python3.12 may be: ``$PYWORKFLOW_PYTHON312``, pyenv's newest 3.12,
    the Debian/Ubuntu package, anything on PATH."""
    found = []
    if os.environ.get("PYWORKFLOW_PYTHON312"):
        found.append(os.environ["PYWORKFLOW_PYTHON312"])
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))]
    if shutil.which("pyenv"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
            roots.insert(0, Path(root.stdout.strip()))
    for root in roots:
        versions = sorted(
            (root / "versions").glob("3.12.*"),
            key=lambda p: [int(x) if x.isdigit() else -1 for x in p.name.split(".")],
            reverse=True,
        )
        found += [str(v / "bin" / "python3.12") for v in versions]
    found += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    if shutil.which("python3.12"):
        found.append(str(shutil.which("python3.12")))
    return list(dict.fromkeys(found))


def find_python312() -> Path:
    for candidate in python312_candidates():
        if Path(candidate).exists() and (real := _probe(candidate)):
            return Path(real)
    raise ArtifactError(
        "no python3.12 found (Lambda's runtime; sam build uses it to resolve the wheels). "
        "Install one: `pyenv install 3.12`, or `apt-get install python3.12` where the Debian "
        "release has it (`apt-cache policy python3.12`), or set PYWORKFLOW_PYTHON312."
    )


# --- the builds ---------------------------------------------------------------------------
@dataclass
class Build:
    architecture: str
    directory: Path
    seconds: float
    functions: dict[str, Path] = field(default_factory=dict)  # logical id -> its directory


def build_env(python: Path) -> dict[str, str]:
    env = offline_env()
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        {
            "PIP_CACHE_DIR": str(PIP_CACHE),
            "PIP_NO_INPUT": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    return env


def sam_build(template: Path, architecture: str, python: Path, *, base_dir: Path) -> Build:
    """``sam build`` of ``template`` into ``OUT/<architecture>``: fresh, not cached."""
    directory = OUT / architecture
    shutil.rmtree(directory, ignore_errors=True)
    argv = [
        str(venv_bin("sam")),
        "build",
        "--template-file",
        str(template),
        "--build-dir",
        str(directory),
        "--base-dir",
        str(base_dir),
        "--no-cached",
        "--parallel",
    ]
    start = time.monotonic()
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env=build_env(python), capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - start
    log = OUT / f"sam-build-{architecture}.log"
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise ArtifactError(f"sam build ({architecture}) failed (log: {log}):\n{tail}")
    return Build(architecture, directory, seconds, built_functions(directory))


def built_functions(directory: Path) -> dict[str, Path]:
    """Each function of the built template and the folder its CodeUri points to."""
    from pyworkflow.dev.template import load_template

    built = load_template(directory / "template.yaml")
    found = {}
    for logical_id, resource in built["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            code = resource["Properties"]["CodeUri"]
            found[logical_id] = (directory / code).resolve()
    return found


# --- the import check ---------------------------------------------------------------------
IMPORT_SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys, sysconfig
    build, module, attribute, workflows, others = sys.argv[1:6]
    sys.path.insert(0, build)
    handler = getattr(importlib.import_module(module), attribute)
    assert callable(handler), f"{module}.{attribute} is not callable"
    for name in filter(None, (workflows + "," + others).split(",")):
        importlib.import_module(name.strip())
    allowed = (build, sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"))
    outside = sorted(
        f"{name}: {mod.__file__}"
        for name, mod in list(sys.modules.items())
        if getattr(mod, "__file__", None) and not mod.__file__.startswith(allowed)
    )
    assert not outside, "modules from outside the build: " + ", ".join(outside)
    print(json.dumps({"modules": len(sys.modules), "site": "site" in sys.modules}))
    """
)


def function_env(logical_id: str, directory: Path) -> dict[str, str]:
    """What Lambda gives the function at init: its template environment (references to other
    resources replaced by placeholder names and ARNs) and the runtime's own variables."""
    from pyworkflow.dev.template import ACCOUNT_ID, StackTemplate

    stack = StackTemplate.load(TEMPLATE, stack_name="artifact-check")
    for rid, resource in stack.data["Resources"].items():
        service = str(resource.get("Type", "")).split("::")[1].lower()
        stack.set_physical(
            rid,
            Ref=f"artifact-check-{rid}",
            Arn=f"arn:aws:{service}:us-east-1:{ACCOUNT_ID}:artifact-check-{rid}",
            QueueName=f"artifact-check-{rid}",
        )
    env = dict(stack.function_spec(logical_id).environment)
    env.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "offline-artifact-check",
            "AWS_SECRET_ACCESS_KEY": "offline-artifact-check",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "LAMBDA_TASK_ROOT": str(directory),
            "LANG": "C.UTF-8",
            "PATH": "/usr/bin:/bin",
        }
    )
    return env


def handlers() -> dict[str, str]:
    """``{logical id: handler}`` of every function, Globals merged."""
    from pyworkflow.dev.template import StackTemplate

    stack = StackTemplate.load(TEMPLATE)
    globals_ = (stack.data.get("Globals") or {}).get("Function") or {}
    return {
        rid: str(
            stack.resolver.resolve(stack.properties(rid).get("Handler", globals_.get("Handler")))
        )
        for rid in stack.function_ids()
    }


@dataclass
class ImportResult:
    ok: bool
    output: str
    seconds: float


def import_check(python: Path, directory: Path, logical_id: str, handler: str) -> ImportResult:
    module, attribute = handler.rsplit(".", 1)
    env = function_env(logical_id, directory)
    start = time.monotonic()
    done = subprocess.run(
        [
            str(python),
            "-I",
            "-S",
            "-c",
            IMPORT_SCRIPT,
            str(directory),
            module,
            attribute,
            env.get("PYWORKFLOW_MODULE", ""),
            ",".join(
                sorted(top_level_modules(directory) - set(copied_from_source(directory, REPO_ROOT)))
            ),
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    return ImportResult(done.returncode == 0, output, time.monotonic() - start)


# --- main ---------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:  # noqa: C901, PLR0912, PLR0915 - one report
    parser = argparse.ArgumentParser(
        prog="python -m infra.build_artifact",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--find-python", action="store_true", help="print python3.12 and exit")
    args = parser.parse_args(argv)
    try:
        python = find_python312()
    except ArtifactError as exc:
        print(f"[FAIL] {exc}")
        return 1
    if args.find_python:
        print(python)
        return 0

    total = time.monotonic()
    print(f"python: {python}")
    try:
        seconds = ensure_venv()
    except LintError as exc:
        print(f"[FAIL] tool venv: {exc}")
        return 1
    print("tools: reused" if seconds is None else f"tools: installed in {seconds:.0f}s")
    cached = PIP_CACHE.exists() and any(PIP_CACHE.iterdir())
    print(f"pip cache: {PIP_CACHE.relative_to(REPO_ROOT)} ({'warm' if cached else 'cold'})")

    from pyworkflow.dev.template import load_template

    OUT.mkdir(parents=True, exist_ok=True)
    x86_template = OUT / "template.x86_64.json"
    x86_template.write_text(json.dumps(with_architecture(load_template(TEMPLATE), "x86_64")))
    try:
        arm = sam_build(TEMPLATE, "arm64", python, base_dir=REPO_ROOT)
        print(f"sam build arm64:  {arm.seconds:.0f}s -> {arm.directory.relative_to(REPO_ROOT)}")
        x86 = sam_build(x86_template, "x86_64", python, base_dir=REPO_ROOT)
        print(f"sam build x86_64: {x86.seconds:.0f}s (import stand-in)")
    except (ArtifactError, LintError) as exc:
        print(f"[FAIL] {exc}")
        return 1

    failures: list[str] = []
    wanted = handlers()
    if set(arm.functions) != set(wanted) or set(x86.functions) != set(wanted):
        failures.append(f"built functions {sorted(arm.functions)} != template {sorted(wanted)}")
    rows = []
    for logical_id, handler in wanted.items():
        arm_dir, x86_dir = arm.functions.get(logical_id), x86.functions.get(logical_id)
        if arm_dir is None or x86_dir is None:
            continue
        size = tree_size(arm_dir)
        banned = forbidden_found(arm_dir)
        foreign = foreign_extensions(arm_dir, "arm64")
        dists_arm, dists_x86 = distributions(arm_dir), distributions(x86_dir)
        imported = import_check(python, x86_dir, logical_id, handler)
        if not imported.ok:
            failures.append(f"{logical_id}: {handler} does not import:\n{imported.output}")
        if mb(size) >= SIZE_LIMIT_MB:
            failures.append(f"{logical_id}: {mb(size):.1f} MB >= {SIZE_LIMIT_MB:.0f} MB")
        if banned:
            failures.append(f"{logical_id}: test/dev packages in the artifact: {banned}")
        if foreign:
            failures.append(f"{logical_id}: not aarch64: {foreign[:10]}")
        if dists_arm != dists_x86:
            diff = sorted(set(dists_arm.items()) ^ set(dists_x86.items()))
            failures.append(f"{logical_id}: arm64 and x86_64 builds differ: {diff}")
        rows.append(
            (
                logical_id,
                handler,
                "ok" if imported.ok else "FAIL",
                f"{mb(size):.1f}",
                f"{len(dists_arm)}",
                f"{native_count(arm_dir)}" + ("" if not foreign else f" ({len(foreign)} not arm)"),
                "none" if not banned else ",".join(banned),
            )
        )

    header = ("function", "handler", "import", "MB", "dists", "aarch64 .so", "test/dev")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    if arm.functions:
        first = next(iter(arm.functions.values()))
        _report_parts("kept on purpose (requirements.txt pins them)", first, RUNTIME_PROVIDED)
        copied = copied_from_source(first, REPO_ROOT)
        _report_parts(
            "copied from CodeUri: . (the handlers need pyworkflow/, examples/)", first, copied
        )
        biggest = sorted(((tree_size(p), p.name) for p in first.iterdir()), reverse=True)[:5]
        print("largest entries: " + ", ".join(f"{n} {mb(s):.1f}" for s, n in biggest))
    print(
        f"limit: {SIZE_LIMIT_MB:.0f} MB each (Lambda allows {LAMBDA_LIMIT_MB:.0f} MB unzipped); "
        f"total {time.monotonic() - total:.0f}s"
    )
    if failures:
        for failure in failures:
            print(f"[FAIL] {failure}")
        return 1
    print(f"artifact: all checks passed for {len(rows)} functions")
    return 0


def _report_parts(title: str, directory: Path, names: Sequence[str]) -> None:
    parts: Mapping[str, int] = sizes_of(directory, names)
    listed = ", ".join(f"{n} {mb(s):.1f}" for n, s in parts.items()) or "none"
    print(f"{title}: {listed} MB")


if __name__ == "__main__":
    sys.exit(main())

"""The pure parts of ``python -m infra.build_artifact`` (CI runs the builds themselves): the
test/dev package scan, the size sums, the ELF architecture check, the x86_64 template copy and
the environment the import check gives each function, on fake build directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import build_artifact as ba
from pyworkflow.dev.template import load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _elf(machine: int) -> bytes:
    # e_ident (16 bytes, little-endian class 64), e_type (2), e_machine (2), padding
    return (
        b"\x7fELF\x02\x01\x01"
        + b"\0" * 9
        + (3).to_bytes(2, "little")
        + machine.to_bytes(2, "little")
        + b"\0" * 44
    )


def fake_build(root: Path, *, extra: tuple[str, ...] = ()) -> Path:
    """A function directory as sam build lays it out: code, packages, their dist-info."""
    build = root / "WorkerFunction"
    (build / "pyworkflow" / "handlers").mkdir(parents=True)
    (build / "pyworkflow" / "__init__.py").write_text("")
    (build / "pyworkflow" / "handlers" / "worker.py").write_text("def handler(e, c): ...\n")
    (build / "boto3").mkdir()
    (build / "boto3" / "__init__.py").write_bytes(b"x" * 1000)
    (build / "boto3-1.40.61.dist-info").mkdir()
    (build / "boto3-1.40.61.dist-info" / "RECORD").write_bytes(b"y" * 24)
    (build / "yaml").mkdir()
    (build / "yaml" / "__init__.py").write_text("")
    (build / "yaml" / "_yaml.cpython-312-aarch64-linux-gnu.so").write_bytes(_elf(183))
    (build / "pyyaml-6.0.4.dist-info").mkdir()
    (build / "six.py").write_text("")
    (build / ".ci").mkdir()
    (build / ".ci" / "run").write_text("#!/bin/sh\n")
    (build / "README.md").write_text("readme")
    for name in extra:
        if name.endswith(".dist-info"):
            (build / name).mkdir()
        elif name.endswith(".py"):
            (build / name).write_text("")
        else:
            (build / name).mkdir()
            (build / name / "__init__.py").write_text("")
    return build


def test_a_clean_build_has_no_test_or_dev_package(tmp_path: Path) -> None:
    build = fake_build(tmp_path)
    assert ba.forbidden_found(build) == []
    assert ba.distributions(build) == {"boto3": "1.40.61", "pyyaml": "6.0.4"}
    assert ba.top_level_modules(build) == {"pyworkflow", "boto3", "yaml", "six"}


def test_test_and_dev_packages_are_found_by_distribution_and_by_module(tmp_path: Path) -> None:
    build = fake_build(
        tmp_path,
        extra=(
            "moto",
            "moto-5.1.0.dist-info",
            "_pytest",
            "pytest.py",
            "import_linter-2.17.dist-info",
            "importlinter",
            "Hypothesis-6.170.17.dist-info",
            "pytest_helpers_namespace",  # not pytest
        ),
    )
    assert ba.forbidden_found(build) == [
        "dist:hypothesis",
        "dist:import_linter",
        "dist:moto",
        "module:_pytest",
        "module:importlinter",
        "module:moto",
        "module:pytest",
    ]


def test_setuptools_build_folder_is_not_the_build_package_but_is_reported(
    tmp_path: Path,
) -> None:
    build = fake_build(tmp_path)
    (build / "build" / "lib" / "pyworkflow").mkdir(parents=True)  # a leftover of `pip wheel .`
    assert ba.forbidden_found(build) == []
    (build / "build" / "__init__.py").write_text("")  # the build package itself
    assert ba.forbidden_found(build) == ["module:build"]
    source = tmp_path / "repo"
    for name in ("pyworkflow", ".ci", "README.md", "build", "tests"):
        (source / name).mkdir(parents=True)
    (build / "boto3-1.40.61.dist-info").rename(build / "tests-1.0.dist-info")  # installed
    (source / "tests-1.0.dist-info").mkdir()
    assert ba.copied_from_source(build, source) == [".ci", "README.md", "build", "pyworkflow"]


def test_sizes_count_files_once_and_do_not_follow_symlinks(tmp_path: Path) -> None:
    build = fake_build(tmp_path)
    outside = tmp_path / "big"
    outside.write_bytes(b"z" * 10_000)
    (build / "link").symlink_to(outside)
    own = sum(p.lstat().st_size for p in build.rglob("*") if p.is_file() or p.is_symlink())
    assert ba.tree_size(build) == own
    assert ba.tree_size(build) < 10_000
    assert ba.sizes_of(build, ["boto3", "six", "moto", ".ci"]) == {
        "boto3": 1024,  # the package and its dist-info
        "six": 0,
        ".ci": len("#!/bin/sh\n"),
    }
    assert ba.mb(3 * 1024 * 1024) == 3.0


def test_native_extensions_must_match_the_architecture(tmp_path: Path) -> None:
    build = fake_build(tmp_path)
    assert ba.elf_machine(build / "yaml" / "_yaml.cpython-312-aarch64-linux-gnu.so") == 183
    assert ba.elf_machine(build / "six.py") is None
    assert ba.foreign_extensions(build, "arm64") == []
    (build / "yaml" / "_x.cpython-312-x86_64-linux-gnu.so").write_bytes(_elf(62))
    assert ba.foreign_extensions(build, "arm64") == ["yaml/_x.cpython-312-x86_64-linux-gnu.so"]
    assert ba.foreign_extensions(build, "x86_64") == ["yaml/_yaml.cpython-312-aarch64-linux-gnu.so"]
    assert ba.native_count(build) == 2


def _without_architectures(template: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(template))
    copy["Globals"]["Function"].pop("Architectures", None)
    for resource in copy["Resources"].values():
        resource.get("Properties", {}).pop("Architectures", None)
    return copy


def test_the_x86_stand_in_changes_only_the_architecture() -> None:
    template = load_template(TEMPLATE)
    x86 = ba.with_architecture(template, "x86_64")
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]  # not mutated
    assert x86["Globals"]["Function"]["Architectures"] == ["x86_64"]
    functions = [r for r in x86["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 2
    assert all(f["Properties"]["Architectures"] == ["x86_64"] for f in functions)
    assert _without_architectures(x86) == _without_architectures(template)


def test_every_function_is_checked_with_its_template_environment() -> None:
    assert ba.handlers() == {
        "WorkerFunction": "pyworkflow.handlers.worker.handler",
        "ApiFunction": "pyworkflow.handlers.api.handler",
    }
    env = ba.function_env("WorkerFunction", Path("/var/task"))
    assert env["PYWORKFLOW_STORAGE"] == "dynamodb"
    assert env["PYWORKFLOW_MODULE"] == "examples.order_processing"
    assert env["PYWORKFLOW_MAX_RECEIVES"] == "5"  # MaxReceiveCount 6, minus one
    assert env["POWERTOOLS_SERVICE_NAME"] == "pyworkflow-worker"
    assert env["PYWORKFLOW_QUEUE_ARN"].startswith("arn:aws:sqs:")
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert not any(k.startswith("PYTHON") for k in env)


def test_python312_is_looked_for_where_ci_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWORKFLOW_PYTHON312", "/opt/py312/bin/python3.12")
    candidates = ba.python312_candidates()
    assert candidates[0] == "/opt/py312/bin/python3.12"
    assert "/usr/bin/python3.12" in candidates  # Debian's package
    assert len(candidates) == len(set(candidates))

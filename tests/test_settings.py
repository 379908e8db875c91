"""``pyworkflow.settings``: every variable read in one place, by its documented name, typed."""

import ast
import os
from pathlib import Path

import pytest

import pyworkflow
from pyworkflow import settings as settings_module
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.settings import VARIABLES, get_settings, settings_generation

REPO = Path(__file__).resolve().parents[1]

# Every documented variable and the field it fills (README, template.yaml)
DOCUMENTED = {
    "PYWORKFLOW_DB": "db_path",
    "PYWORKFLOW_MODULE": "module",
    "PYWORKFLOW_STORAGE": "storage_kind",
    "PYWORKFLOW_API_URL": "api_url",
    "PYWORKFLOW_TABLE": "table",
    "PYWORKFLOW_DYNAMODB_ENDPOINT": "dynamodb_endpoint",
    "PYWORKFLOW_QUEUE_URL": "queue_url",
    "PYWORKFLOW_QUEUE_ARN": "queue_arn",
    "PYWORKFLOW_SCHEDULER_GROUP": "scheduler_group",
    "PYWORKFLOW_SCHEDULER_ROLE_ARN": "scheduler_role_arn",
    "PYWORKFLOW_SQS_DELAY_MAX_SECONDS": "sqs_delay_max_seconds",
    "PYWORKFLOW_SCHEDULER_LEAD_SECONDS": "scheduler_lead_seconds",
    "PYWORKFLOW_TIMERS": "timers",
    "PYWORKFLOW_VISIBILITY_TIMEOUT": "visibility_timeout",
    "PYWORKFLOW_MAX_RECEIVES": "max_receives",
    "PYWORKFLOW_RETENTION_DAYS": "retention_days",
    "PYWORKFLOW_MAX_REQUEST_BYTES": "max_request_bytes",
    "PYWORKFLOW_BLOB_BUCKET": "blob_bucket",
    "PYWORKFLOW_BLOB_DIR": "blob_dir",
    "PYWORKFLOW_OFFLOAD_THRESHOLD_BYTES": "offload_threshold_bytes",
    "PYWORKFLOW_MAX_PAYLOAD_BYTES": "max_payload_bytes",
    "PYWORKFLOW_UI_ORIGINS": "ui_origins",
}
SAMPLE = {
    "sqs_delay_max_seconds": ("0", 0.0),
    "scheduler_lead_seconds": ("90", 90.0),
    "visibility_timeout": ("30", 30.0),
    "max_receives": ("5.0", 5),
    "retention_days": ("7", 7.0),
    "max_request_bytes": ("100", 100),
    "offload_threshold_bytes": ("1000", 1000),
    "max_payload_bytes": ("5000", 5000),
}


@pytest.mark.parametrize("variable,field", sorted(DOCUMENTED.items()))
def test_each_documented_variable_fills_its_field(variable, field, monkeypatch):
    raw, expected = SAMPLE.get(field, ("some-value", "some-value"))
    monkeypatch.setenv(variable, f"  {raw} ")
    assert getattr(get_settings(), field) == expected
    assert variable in VARIABLES


def test_every_variable_in_the_docs_is_a_setting():
    documented = set()
    for path in (REPO / "README.md", REPO / "template.yaml"):
        for word in path.read_text().replace("`", " ").replace("$", " ").split():
            name = word.strip(".,:;()[]{}'\"=")
            if (
                name.startswith("PYWORKFLOW_")
                and name.rstrip("_") != "PYWORKFLOW"
                and not name.endswith("_")
            ):
                documented.add(name.split("=")[0])
    assert {"PYWORKFLOW_BLOB_BUCKET", "PYWORKFLOW_MAX_RECEIVES", "PYWORKFLOW_DB"} <= documented
    # the CLI's own flag (a click envvar) and infra's tool directory are not settings
    assert documented - set(VARIABLES) <= {
        "PYWORKFLOW_API_NO_SIGN",
        "PYWORKFLOW_DYNAMODB_LOCAL_DIR",
    }


def test_region_falls_back_to_aws_default_region(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert get_settings().region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "")  # empty is unset, as before
    assert get_settings().region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert get_settings().region == "us-west-2"


def test_a_bad_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("PYWORKFLOW_VISIBILITY_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="PYWORKFLOW_VISIBILITY_TIMEOUT"):
        get_settings()


def test_configure_options_are_not_variables(monkeypatch):
    monkeypatch.setenv("PYWORKFLOW_LEASE_SECONDS", "5")
    monkeypatch.setenv("lease_seconds", "5")
    assert get_settings().lease_seconds == 60.0


def test_configure_updates_the_settings_and_moves_the_generation():
    before = settings_generation()
    pyworkflow.configure(default_retries=1)
    assert get_settings().default_retries == 1 and settings_generation() != before
    pyworkflow.reset_config()
    assert get_settings().default_retries == 3


def test_the_environment_is_parsed_again_only_when_it_changed(monkeypatch):
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("PYWORKFLOW_MODULE", "other.module")
    assert get_settings() is not first and get_settings().module == "other.module"


def test_a_variable_unset_again_or_a_replaced_environ_is_seen(monkeypatch):
    monkeypatch.setenv("PYWORKFLOW_MODULE", "set.module")
    assert get_settings().module == "set.module"
    monkeypatch.delenv("PYWORKFLOW_MODULE")
    assert get_settings().module != "set.module"
    # os.environ swapped for a plain mapping (some test tools do): read the public way
    monkeypatch.setattr(os, "environ", {**os.environ, "PYWORKFLOW_MODULE": "swapped.module"})
    assert get_settings().module == "swapped.module"


def test_only_the_settings_module_reads_the_environment():
    readers = []
    # pyworkflow/dev is the local stack's tooling: it plays Lambda, setting and reading each
    # function's environment; the library (which it runs) reads its own through settings.
    dev = REPO / "pyworkflow" / "dev"
    for path in (REPO / "pyworkflow").rglob("*.py"):
        if path == Path(settings_module.__file__) or dev in path.parents:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                readers.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert readers == []


def test_storage_imports_neither_config_nor_runtime():
    for path in (REPO / "pyworkflow" / "storage").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(
                    ("pyworkflow.config", "pyworkflow.runtime", "pyworkflow.service")
                ), f"{path.name}: {name}"

"""pyworkflow.config.yaml and workflow discovery, as pyworkflow-engine 0.1.9 reads them."""

import sys
import textwrap
import warnings

import pytest

import pyworkflow
from pyworkflow import ConfigurationError, DiscoveryError, configure_from_yaml, discover_workflows
from pyworkflow.config import get_config, reset_config
from pyworkflow.exceptions import ConfigFileError
from pyworkflow.storage import FileStorageBackend, InMemoryStorageBackend, SQLiteStorageBackend


@pytest.fixture(autouse=True)
def _clean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYWORKFLOW_MODULE", raising=False)
    monkeypatch.delenv("PYWORKFLOW_DISCOVER", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    reset_config()
    yield
    reset_config()


def _module(tmp_path, name, body="FLAG = True\n"):
    (tmp_path / f"{name}.py").write_text(body)
    sys.modules.pop(name, None)
    return name


def _yaml(tmp_path, text, name="pyworkflow.config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_configure_from_yaml_sets_storage_by_type(tmp_path):
    path = _yaml(tmp_path, f"storage:\n  type: sqlite\n  base_path: {tmp_path}/wf.db\n")
    configure_from_yaml(path)
    assert isinstance(get_config().storage, SQLiteStorageBackend)


@pytest.mark.parametrize(
    ("section", "kind"),
    [
        ("type: memory", InMemoryStorageBackend),
        ("type: file\n  base_path: ./data", FileStorageBackend),
        ("backend: file\n  path: ./data", FileStorageBackend),
    ],
)
def test_configure_from_yaml_storage_kinds(tmp_path, section, kind):
    configure_from_yaml(_yaml(tmp_path, f"storage:\n  {section}\n"))
    assert isinstance(pyworkflow.get_storage(), kind)


def test_configure_from_yaml_refuses_a_storage_we_do_not_have(tmp_path):
    """Cassandra (0.1.9 has it) is refused, naming the kinds there are (postgres among them)."""
    with pytest.raises(ConfigurationError, match="postgres"):
        configure_from_yaml(_yaml(tmp_path, "storage:\n  type: cassandra\n"))


def test_configure_from_yaml_missing_file():
    with pytest.raises(FileNotFoundError):
        configure_from_yaml("nope.yaml")


def test_configure_from_yaml_invalid_yaml_is_a_value_error(tmp_path):
    path = _yaml(tmp_path, "storage: [unclosed\n")
    with pytest.raises(ValueError, match="Invalid YAML"):
        configure_from_yaml(path)
    with pytest.raises(ConfigFileError):
        configure_from_yaml(path)


def test_configure_from_yaml_imports_module_and_modules(tmp_path):
    one, two = _module(tmp_path, "compat_wf_one"), _module(tmp_path, "compat_wf_two")
    configure_from_yaml(_yaml(tmp_path, f"module: {one}\nmodules:\n  - {two}\n"))
    assert one in sys.modules and two in sys.modules


def test_configure_from_yaml_discover_false_imports_nothing(tmp_path):
    name = _module(tmp_path, "compat_wf_skipped")
    configure_from_yaml(_yaml(tmp_path, f"module: {name}\n"), discover=False)
    assert name not in sys.modules


def test_configure_from_yaml_module_relative_to_the_file(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    _module(conf, "compat_wf_beside")
    monkeypatch.chdir(tmp_path.parent)
    configure_from_yaml(_yaml(conf, "module: compat_wf_beside\n"))
    assert "compat_wf_beside" in sys.modules


def test_configure_from_yaml_celery_runtime_warns_and_is_durable(tmp_path):
    path = _yaml(tmp_path, "runtime: celery\ncelery:\n  broker: redis://x\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configure_from_yaml(path)
    assert any("celery" in str(w.message) for w in caught)
    assert get_config().default_durable is True


def test_discover_workflows_explicit_module(tmp_path):
    name = _module(tmp_path, "compat_wf_explicit")
    discover_workflows(name)
    assert name in sys.modules


def test_discover_workflows_failure_names_the_module():
    with pytest.raises(DiscoveryError, match="compat_no_such_module"):
        discover_workflows("compat_no_such_module")


def test_discovery_error_is_a_configuration_error():
    assert issubclass(DiscoveryError, ConfigurationError)


def test_discover_workflows_from_env_variable(tmp_path, monkeypatch):
    name = _module(tmp_path, "compat_wf_env")
    monkeypatch.setenv("PYWORKFLOW_DISCOVER", name)
    discover_workflows()
    assert name in sys.modules


def test_discover_workflows_from_config_dict(tmp_path):
    name = _module(tmp_path, "compat_wf_dict")
    discover_workflows(config={"modules": [name]})
    assert name in sys.modules


def test_discover_workflows_from_config_file_in_cwd(tmp_path):
    name = _module(tmp_path, "compat_wf_cwd")
    _yaml(tmp_path, f"module: {name}\n")
    discover_workflows()
    assert name in sys.modules


def test_discover_workflows_with_nothing_named_is_a_no_op():
    discover_workflows()

"""``discover_workflows()``: import the modules that define workflows, so they register.

pyworkflow-engine's discovery, in its order: an explicit module, then ``PYWORKFLOW_DISCOVER``
(or our ``PYWORKFLOW_MODULE``), then a configuration dict's ``module``/``modules`` (what
``configure_from_yaml`` passes), then ``pyworkflow.config.yaml`` in the current directory.
The current directory and the project root (the nearest parent with ``pyproject.toml``,
``setup.py`` or ``.git``) go on ``sys.path`` first, so a project's own modules import.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyworkflow.exceptions import DiscoveryError
from pyworkflow.settings import get_settings

CONFIG_FILE = "pyworkflow.config.yaml"

logger = logging.getLogger(__name__)


def find_project_root() -> Path | None:
    current = Path.cwd()
    for path in (current, *current.parents):
        if any((path / marker).exists() for marker in ("pyproject.toml", "setup.py", ".git")):
            return path
    return None


def _add_to_path(directory: Path | None) -> None:
    if directory is not None and str(directory) not in sys.path:
        sys.path.insert(0, str(directory))


def config_modules(config: Mapping[str, Any]) -> list[str]:
    """A configuration's ``module`` (one) and ``modules`` (a list, or one comma-separated
    string), in that order."""
    names: list[str] = []
    for key in ("module", "modules"):
        value = config.get(key)
        if isinstance(value, str):
            names.extend(value.split(","))
        elif isinstance(value, list | tuple):
            names.extend(str(v) for v in value)
        elif value is not None:
            raise DiscoveryError(f"{key!r} must be a module name or a list of them, got {value!r}")
    return [n.strip() for n in names if n.strip()]


def _import_all(names: list[str], source: str) -> None:
    failed: list[str] = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, by module
            logger.error("Cannot import workflow module %r: %s", name, exc)
            failed.append(f"{name} ({type(exc).__name__}: {exc})")
        else:
            logger.info("Discovered workflows from module: %s", name)
    if failed:
        root = find_project_root()
        raise DiscoveryError(
            f"Cannot import modules from {source}: {', '.join(failed)}. Make sure the modules "
            f"exist and are in your Python path.\n  Current directory: {Path.cwd()}\n"
            f"  Project root: {root or 'not found'}"
        )


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path`` (``{}`` for an empty file)."""
    from pyworkflow.exceptions import ConfigFileError

    try:
        import yaml
    except ImportError:  # a dependency; missing only from a hand-trimmed environment
        raise ConfigFileError(f"Reading {path} needs PyYAML: pip install pyyaml") from None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"Invalid YAML in {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def discover_workflows(
    module_path: str | None = None,
    config: Mapping[str, Any] | None = None,
    config_path: str | Path | None = None,
) -> None:
    """Import the workflow modules named by the first source that names any (see the module
    docstring); ``DiscoveryError`` naming each module that failed to import. ``config_path``:
    the file ``config`` came from, whose directory goes on ``sys.path`` too."""
    _add_to_path(Path.cwd())
    _add_to_path(find_project_root())
    if config_path is not None:
        _add_to_path(Path(config_path).parent.resolve())

    if module_path:
        _import_all([module_path], f"module_path {module_path!r}")
        return
    from_env = get_settings().module
    if from_env:
        names = [m.strip() for m in from_env.split(",") if m.strip()]
        _import_all(names, "PYWORKFLOW_DISCOVER / PYWORKFLOW_MODULE")
        return
    if config:
        names = config_modules(config)
        if names:
            _import_all(names, str(config_path or "config"))
            return
    local = Path.cwd() / CONFIG_FILE
    if local.exists():
        names = config_modules(read_config_file(local))
        if names:
            _import_all(names, CONFIG_FILE)
            return
    logger.debug("No workflow module specified for discovery")


__all__ = [
    "CONFIG_FILE",
    "DiscoveryError",
    "config_modules",
    "discover_workflows",
    "find_project_root",
    "read_config_file",
]

"""``configure()`` and ``get_config()``: pyworkflow-engine's API over ``pyworkflow.settings``.

The settings themselves (every environment variable, typed) live in ``pyworkflow.settings``;
``configure()`` checks its options and puts them on top of the environment's values. It does not
touch any runtime: runtimes compare the settings' generation (and ``objects_generation()`` for a
new storage or clock) when they start an execution, so a change takes effect from the next one.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyworkflow.discovery import discover_workflows, read_config_file
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.settings import (
    DEFAULT_DB_PATH,
    ENV_API_URL,
    ENV_AWS_DEFAULT_REGION,
    ENV_AWS_REGION,
    ENV_BLOB_BUCKET,
    ENV_BLOB_DIR,
    ENV_DB_PATH,
    ENV_DYNAMODB_ENDPOINT,
    ENV_DYNAMODB_TABLE,
    ENV_MAX_PAYLOAD_BYTES,
    ENV_MAX_RECEIVES,
    ENV_MAX_REQUEST_BYTES,
    ENV_MODULE,
    ENV_OFFLOAD_THRESHOLD_BYTES,
    ENV_QUEUE_ARN,
    ENV_QUEUE_URL,
    ENV_RETENTION_DAYS,
    ENV_SCHEDULER_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SQS_DELAY_MAX,
    ENV_STORAGE,
    ENV_VISIBILITY_TIMEOUT,
    OPTIONS,
    get_settings,
    reset_settings,
    restore_overrides,
    settings_overrides,
    update_settings,
)

if TYPE_CHECKING:
    from pyworkflow.core.clock import Clock
    from pyworkflow.storage.base import StorageBackend


# Options of pyworkflow-engine's configure() that mean nothing in this design: accepted, so its
# code runs unchanged, with a warning saying why they change nothing.
_NO_EFFECT = {
    "celery_broker": "there is no Celery runtime: runs are driven in-process (embedded) or by "
    "the SQS worker on AWS",
    "default_recover_on_worker_loss": "a run whose worker dies is always recovered: its lease "
    "lapses and the next worker replays it",
    "default_max_recovery_attempts": "recovery replays from the history and is never given up; "
    "a message failing PYWORKFLOW_MAX_RECEIVES times fails "
    "its run on AWS",
    "aws_region": f"the AWS runtime takes its region from {ENV_AWS_REGION}",
}
# "local" is the only runtime; any other is refused (see _check)
# instrumentation plugins and tracing are objects, kept by pyworkflow.observability.plugins
_INSTRUMENTATION = {"instrumentation", "tracing"}
_VALID = OPTIONS | {"storage", "clock", "default_runtime"} | _NO_EFFECT.keys() | _INSTRUMENTATION


@dataclass
class _Objects:
    """What ``configure()`` holds that is not a setting: live objects."""

    storage: StorageBackend | None = None
    clock: Clock | None = None
    # whether ``storage`` was made by get_storage() from the settings (db_path, PYWORKFLOW_*)
    storage_from_defaults: bool = False


_objects = _Objects()
# Moves when the storage or the clock change: runtimes made before are dropped, not reused.
_objects_generation = 0


def objects_generation() -> int:
    return _objects_generation


def _new_objects(**changes: Any) -> None:
    global _objects_generation
    for name, value in changes.items():
        setattr(_objects, name, value)
    _objects_generation += 1


class PyWorkflowConfig:
    """What ``get_config()`` returns: the current settings by attribute (see
    ``pyworkflow.settings.Settings``), plus ``storage`` and ``clock``. Assigning an option is
    ``configure()`` without its warnings."""

    #: the only runtime there is (pyworkflow-engine code reads it)
    default_runtime = "local"

    @property
    def storage(self) -> StorageBackend | None:
        return _objects.storage

    @property
    def clock(self) -> Clock | None:
        return _objects.clock

    @property
    def storage_from_defaults(self) -> bool:
        return _objects.storage_from_defaults

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(get_settings(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _VALID:
            raise AttributeError(f"{name!r} is not a configuration option")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            configure(**{name: value})


_config = PyWorkflowConfig()


def configure(*, module: str | None = None, discover: bool = True, **kwargs: Any) -> None:
    """Set defaults: ``configure(storage=InMemoryStorageBackend(), default_durable=True)``.

    Every setting takes effect at once, also after the first run: runtimes already made take
    the new limits, lease and retry settings for their next executions, and a new
    ``storage``/``clock``/``db_path`` gives new runtimes. ``module="myapp.workflows"`` imports
    that module so its workflows are registered. ``instrumentation=[plugin, ...]`` registers
    instrumentation plugins (``pyworkflow.observability.Instrumentation``) and
    ``tracing="otel"`` OpenTelemetry's (``PYWORKFLOW_OTEL=1`` does too); every runtime calls
    them from its next execution on (docs/observability.md).
    """
    for key in kwargs:
        if key not in _VALID:
            raise ValueError(
                f"Unknown config option {key!r}. Valid options: {', '.join(sorted(_VALID))}"
            )
    _check(kwargs)
    limits = {"event_soft_limit", "event_hard_limit", "event_warning_interval"} & kwargs.keys()
    if limits:
        warnings.warn(
            f"Changing {', '.join(sorted(limits))} is not recommended: the limits stop runaway "
            "histories; prefer continue_as_new()",
            UserWarning,
            stacklevel=2,
        )
    for key in sorted(_NO_EFFECT.keys() & kwargs.keys()):
        warnings.warn(
            f"configure({key}=...) has no effect in pyworkflow: {_NO_EFFECT[key]}",
            UserWarning,
            stacklevel=2,
        )
    if "db_path" in kwargs and "storage" not in kwargs and _objects.storage is not None:
        kwargs["storage"] = None  # the default storage, made from the old path: made anew
    changes = {key: kwargs[key] for key in OPTIONS & kwargs.keys()}
    if changes:
        update_settings(**changes)
    objects: dict[str, Any] = {key: kwargs[key] for key in ("storage", "clock") if key in kwargs}
    if "storage" in objects:
        objects["storage_from_defaults"] = False
    if objects:
        _new_objects(**objects)
    if _INSTRUMENTATION & kwargs.keys():
        from pyworkflow.observability import plugins

        if "instrumentation" in kwargs:
            plugins.set_plugins(kwargs["instrumentation"])
        if "tracing" in kwargs:
            plugins.set_tracing(kwargs["tracing"])
    if module and discover:
        import_modules(module)


def _check(kwargs: dict[str, Any]) -> None:
    """Refuse what cannot take effect, before anything changes."""
    runtime = kwargs.get("default_runtime", "local")
    if runtime != "local":
        raise ConfigurationError(
            f"default_runtime={runtime!r} is not available: the embedded runtime is 'local'; on "
            "AWS, runs are started through the API or pyworkflow.client"
        )
    if (
        "db_path" in kwargs
        and "storage" not in kwargs
        and _objects.storage is not None
        and not _objects.storage_from_defaults
    ):
        raise ConfigurationError(
            "db_path names the default SQLite file, but storage= was configured: pass "
            "storage=SQLiteStorageBackend(path) instead"
        )
    for key in (
        "event_soft_limit",
        "event_hard_limit",
        "event_warning_interval",
        "default_retries",
    ):
        value = kwargs.get(key)
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < (0 if key == "default_retries" else 1)
        ):
            raise ConfigurationError(f"{key} must be a positive integer, got {value!r}")
    for key, least in (("lease_seconds", 1e-3), ("retry_inline_max_seconds", 0.0)):
        value = kwargs.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not least <= value <= 10 * 366 * 86400
        ):
            raise ConfigurationError(
                f"{key} must be a number of seconds ({least:g} up to ten years), got {value!r}"
            )
    for key in ("default_durable",):
        if key in kwargs and not isinstance(kwargs[key], bool):
            raise ConfigurationError(f"{key} must be True or False, got {kwargs[key]!r}")
    if "db_path" in kwargs and not isinstance(kwargs["db_path"], str | os.PathLike):
        raise ConfigurationError(f"db_path must be a path, got {kwargs['db_path']!r}")
    if _INSTRUMENTATION & kwargs.keys():
        from pyworkflow.observability import plugins

        plugins.check_plugins(kwargs.get("instrumentation"))
        plugins.check_tracing(kwargs.get("tracing"))


def import_modules(spec: str) -> None:
    """Import each comma-separated module: a dotted name (``app.workflows``, found from the
    current directory too) or the path of a ``.py`` file (``./flows.py``: its folder goes on
    ``sys.path`` and it is imported by its name)."""
    import importlib
    import sys

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in [m.strip() for m in spec.split(",") if m.strip()]:
        importlib.import_module(_module_name(name))


def _module_name(name: str) -> str:
    from pathlib import Path

    if not name.endswith(".py") and "/" not in name and os.sep not in name:
        return name
    path = Path(name)
    if path.suffix != ".py" or not path.is_file() or not path.stem.isidentifier():
        raise ConfigurationError(
            f"{name!r} is not a module: use a dotted module name (e.g. app.workflows) or the "
            "path of an existing .py file"
        )
    import sys

    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return path.stem


def get_config() -> PyWorkflowConfig:
    return _config


def reset_config() -> None:
    """Back to defaults (storage and runtime included): ``configure()``'s changes are dropped
    and the environment is read again at the next use."""
    reset_settings()
    _new_objects(storage=None, clock=None, storage_from_defaults=False)
    from pyworkflow.observability import plugins

    plugins.reset()


@dataclass(frozen=True)
class SavedConfig:
    """``configure()``'s state at one moment (``save_config``), to put back later."""

    overrides: dict[str, Any]
    objects: _Objects


def save_config() -> SavedConfig:
    return SavedConfig(settings_overrides(), replace(_objects))


def restore_config(saved: SavedConfig) -> None:
    """Put back what ``save_config`` saw; runtimes made meanwhile are dropped."""
    restore_overrides(saved.overrides)
    _new_objects(
        storage=saved.objects.storage,
        clock=saved.objects.clock,
        storage_from_defaults=saved.objects.storage_from_defaults,
    )


def get_storage() -> StorageBackend:
    """The configured storage, created lazily: SQLite at ``./.pyworkflow/pyworkflow.db`` unless
    ``configure(storage=...)`` or ``PYWORKFLOW_STORAGE`` says otherwise."""
    storage = _objects.storage
    if storage is None:
        from pyworkflow.runtime.storage_factory import embedded_storage

        storage = embedded_storage(get_settings())
        # Not a new storage for the runtimes' sake: none was made from the previous one.
        _objects.storage, _objects.storage_from_defaults = storage, True
    return storage


# --- pyworkflow.config.yaml ----------------------------------------------------------------
# The file's keys, as 0.1.9 writes them::
#
#     module: myapp.workflows          # or  modules: [myapp.a, myapp.b]
#     runtime: local                   # "celery" is accepted: runs are driven in-process here
#     storage:
#       type: sqlite                   # memory | file | sqlite | dynamodb | postgres | mysql
#       base_path: ./pyworkflow_data/pyworkflow.db   # ("path" also read; "backend" for type)
#       dsn: postgresql://user:pw@host:5432/db       # postgres/mysql: dsn, or host, port,
#       max_pool_size: 10                            #   user, password, database
#     celery:
#       broker: redis://localhost:6379/0             # accepted, no effect (warned)
#
# A storage type this engine does not have (redis, cassandra...) is a
# ``ConfigurationError`` naming the ones it has: silently using another store would lose runs.
STORAGE_TYPES = ("memory", "file", "sqlite", "dynamodb", "postgres", "mysql")


def storage_from_config(config: dict[str, Any]) -> StorageBackend:
    """The backend a ``storage:`` section names."""
    kind = str(config.get("type") or config.get("backend") or "file").lower()
    path = config.get("base_path") or config.get("path")
    if kind == "memory":
        from pyworkflow.storage.memory import InMemoryStorageBackend

        return InMemoryStorageBackend()
    if kind == "file":
        from pyworkflow.storage.file import FileStorageBackend

        return FileStorageBackend(path or None)  # its default: ours, or 0.1.9's if only that exists
    if kind == "sqlite":
        from pyworkflow.storage.sqlite import SQLiteStorageBackend

        return SQLiteStorageBackend(path or DEFAULT_DB_PATH)
    if kind == "dynamodb":
        from pyworkflow.runtime.storage_factory import with_offload
        from pyworkflow.storage.dynamodb import DynamoDBStorageBackend

        settings = get_settings()
        table = config.get("table_name") or config.get("table") or settings.table
        if not table:
            raise ConfigurationError("storage type dynamodb needs table_name")
        backend = DynamoDBStorageBackend(
            table,
            region=config.get("region") or settings.region,
            endpoint_url=config.get("endpoint_url") or settings.dynamodb_endpoint,
            retention_days=settings.retention_days,
        )
        return with_offload(backend, settings, item_limit=True)
    if kind in ("postgres", "postgresql", "mysql", "mariadb"):
        return _sql_from_config(kind, config)
    raise ConfigurationError(
        f"Storage type {kind!r} is not available in pyworkflow; use one of "
        f"{', '.join(STORAGE_TYPES)}"
    )


def _sql_from_config(kind: str, config: dict[str, Any]) -> StorageBackend:
    """0.1.9's postgres/mysql keys: ``dsn`` (``url`` also read), or ``host``, ``port``,
    ``user``, ``password``, ``database``; ``max_pool_size``."""
    from pyworkflow.storage.sql.urls import backend_from_url, url_from_parts

    url = config.get("dsn") or config.get("url")
    if not url:
        url = url_from_parts(
            kind,
            host=str(config.get("host") or "localhost"),
            port=int(config["port"]) if config.get("port") else None,
            user=str(config.get("user") or "pyworkflow"),
            password=str(config["password"]) if config.get("password") else None,
            database=str(config.get("database") or "pyworkflow"),
        )
    pool = config.get("max_pool_size") or config.get("pool_size")
    return backend_from_url(str(url), pool_size=int(pool) if pool else None)


def configure_from_yaml(path: str | Path, discover: bool = True) -> None:
    """Configure from the YAML file ``path`` (``FileNotFoundError`` if missing,
    ``ConfigFileError``, also a ValueError, if it is not valid YAML); with ``discover``,
    import the workflow modules it names (``DiscoveryError`` if one fails)."""
    config_path = Path(path)
    if not config_path.exists():
        raise FileNotFoundError(f"PyWorkflow configuration file not found: {config_path}")
    data = read_config_file(config_path)

    options: dict[str, Any] = {}
    runtime = str(data.get("runtime") or "local")
    if runtime == "celery":
        # 0.1.9's generated files say celery; the same workflows run here in-process, durable
        # as they were under Celery.
        warnings.warn(
            f"{config_path}: runtime 'celery' has no effect in pyworkflow: runs are driven "
            "in-process (embedded) or by the SQS worker on AWS",
            UserWarning,
            stacklevel=2,
        )
        options["default_durable"] = True
    elif runtime != "local":
        options["default_runtime"] = runtime  # configure() refuses it, naming what exists
    if data.get("storage"):
        if not isinstance(data["storage"], dict):
            raise ConfigurationError(f"{config_path}: storage must be a mapping")
        options["storage"] = storage_from_config(data["storage"])
    broker = (data.get("celery") or {}).get("broker")
    if broker:
        options["celery_broker"] = broker  # warned by configure(): no effect
    configure(**options)
    if discover:
        discover_workflows(config=data, config_path=config_path)


__all__ = [
    "DEFAULT_DB_PATH",
    "ENV_API_URL",
    "ENV_AWS_DEFAULT_REGION",
    "ENV_AWS_REGION",
    "ENV_BLOB_BUCKET",
    "ENV_BLOB_DIR",
    "ENV_DB_PATH",
    "ENV_DYNAMODB_ENDPOINT",
    "ENV_DYNAMODB_TABLE",
    "ENV_MAX_PAYLOAD_BYTES",
    "ENV_MAX_RECEIVES",
    "ENV_MAX_REQUEST_BYTES",
    "ENV_MODULE",
    "ENV_OFFLOAD_THRESHOLD_BYTES",
    "ENV_QUEUE_ARN",
    "ENV_QUEUE_URL",
    "ENV_RETENTION_DAYS",
    "ENV_SCHEDULER_GROUP",
    "ENV_SCHEDULER_ROLE_ARN",
    "ENV_SQS_DELAY_MAX",
    "ENV_STORAGE",
    "ENV_VISIBILITY_TIMEOUT",
    "PyWorkflowConfig",
    "SavedConfig",
    "STORAGE_TYPES",
    "configure",
    "configure_from_yaml",
    "get_config",
    "get_storage",
    "import_modules",
    "objects_generation",
    "reset_config",
    "restore_config",
    "save_config",
    "storage_from_config",
]

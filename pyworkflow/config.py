"""Configuration: ``configure()`` in code, or environment variables (each named once, here)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyworkflow.core.clock import Clock
    from pyworkflow.storage.base import StorageBackend

ENV_DB_PATH = "PYWORKFLOW_DB"              # SQLite file of the embedded default storage
ENV_MODULE = "PYWORKFLOW_MODULE"           # module(s) defining workflows, for the CLI and worker
ENV_STORAGE = "PYWORKFLOW_STORAGE"         # "sqlite" (default), "memory" or "file:<dir>"
ENV_DYNAMODB_TABLE = "PYWORKFLOW_TABLE"    # DynamoDB table of the AWS storage
ENV_DYNAMODB_ENDPOINT = "PYWORKFLOW_DYNAMODB_ENDPOINT"  # e.g. DynamoDB Local; unset on AWS
ENV_AWS_REGION = "AWS_REGION"              # set by Lambda; AWS_DEFAULT_REGION is the fallback
ENV_AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
DEFAULT_DB_PATH = ".pyworkflow/pyworkflow.db"

# AWS runtime (pyworkflow.runtime.aws, handlers/worker.py)
ENV_QUEUE_URL = "PYWORKFLOW_QUEUE_URL"                # the work queue every wake-up goes to
ENV_QUEUE_ARN = "PYWORKFLOW_QUEUE_ARN"                # the same queue, as Scheduler's target
ENV_SCHEDULER_GROUP = "PYWORKFLOW_SCHEDULER_GROUP"    # schedule group of one-time timers
ENV_SCHEDULER_ROLE_ARN = "PYWORKFLOW_SCHEDULER_ROLE_ARN"  # role Scheduler sends to SQS with
ENV_SQS_DELAY_MAX = "PYWORKFLOW_SQS_DELAY_MAX_SECONDS"  # waits up to this use DelaySeconds
ENV_VISIBILITY_TIMEOUT = "PYWORKFLOW_VISIBILITY_TIMEOUT"  # the queue's, in seconds: the lease
ENV_MAX_RECEIVES = "PYWORKFLOW_MAX_RECEIVES"          # a message failing this often fails its run
ENV_RETENTION_DAYS = "PYWORKFLOW_RETENTION_DAYS"      # days finished runs stay (DynamoDB TTL)
ENV_API_URL = "PYWORKFLOW_API_URL"                    # a deployed (or local) stack's HTTP API

# Large payloads (pyworkflow/storage/offload.py): fields over the threshold live in a blob store
ENV_BLOB_BUCKET = "PYWORKFLOW_BLOB_BUCKET"            # S3 bucket of large payloads (AWS)
ENV_BLOB_DIR = "PYWORKFLOW_BLOB_DIR"                  # or a directory (embedded runtime)
ENV_OFFLOAD_THRESHOLD_BYTES = "PYWORKFLOW_OFFLOAD_THRESHOLD_BYTES"  # default 200 KB
ENV_MAX_PAYLOAD_BYTES = "PYWORKFLOW_MAX_PAYLOAD_BYTES"  # larger payloads fail; default 50 MB

# API (handlers/api.py)
ENV_MAX_REQUEST_BYTES = "PYWORKFLOW_MAX_REQUEST_BYTES"  # larger request bodies are a 413


@dataclass
class PyWorkflowConfig:
    default_runtime: str = "local"
    default_durable: bool = True
    default_retries: int = 3
    default_recover_on_worker_loss: bool | None = None
    default_max_recovery_attempts: int = 3
    storage: StorageBackend | None = None
    celery_broker: str | None = None
    aws_region: str | None = None
    event_soft_limit: int = 10_000
    event_hard_limit: int = 50_000
    event_warning_interval: int = 100
    # pyworkflow's own settings
    db_path: str = field(default_factory=lambda: os.environ.get(ENV_DB_PATH, DEFAULT_DB_PATH))
    # Retry backoffs up to this long wait in-process instead of suspending the run. 0 keeps
    # pyworkflow-engine's behaviour: every retry suspends and a timer resumes it.
    retry_inline_max_seconds: float = 0.0
    lease_seconds: float = 60.0             # how long a crashed process blocks its runs
    clock: Clock | None = None
    # whether ``storage`` was made by get_storage() from db_path / PYWORKFLOW_STORAGE
    storage_from_defaults: bool = False


_config: PyWorkflowConfig | None = None


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


def configure(*, module: str | None = None, discover: bool = True, **kwargs: Any) -> None:
    """Set defaults: ``configure(storage=InMemoryStorageBackend(), default_durable=True)``.

    Every setting takes effect at once, also after the first run: runtimes already made take
    the new limits, lease and retry settings for their next executions, and a new
    ``storage``/``clock``/``db_path`` gives new runtimes. ``module="myapp.workflows"`` imports
    that module so its workflows are registered.
    """
    config = get_config()
    valid = {f.name for f in fields(PyWorkflowConfig)} - {"storage_from_defaults"}
    for key in kwargs:
        if key not in valid:
            raise ValueError(
                f"Unknown config option {key!r}. Valid options: {', '.join(sorted(valid))}"
            )
    _check(config, kwargs)
    limits = {"event_soft_limit", "event_hard_limit", "event_warning_interval"} & kwargs.keys()
    if limits:
        warnings.warn(
            f"Changing {', '.join(sorted(limits))} is not recommended: the limits stop runaway "
            "histories; prefer continue_as_new()",
            UserWarning,
            stacklevel=2,
        )
    for key in sorted(_NO_EFFECT.keys() & kwargs.keys()):
        warnings.warn(f"configure({key}=...) has no effect in pyworkflow: {_NO_EFFECT[key]}",
                      UserWarning, stacklevel=2)
    if "db_path" in kwargs and "storage" not in kwargs and config.storage is not None:
        config.storage = None  # the default storage, made from the old path: made anew
        kwargs["storage"] = None
    for key, value in kwargs.items():
        setattr(config, key, value)
    if "storage" in kwargs:
        config.storage_from_defaults = False
    from pyworkflow.runtime.local import reconfigure_runtimes, reset_runtime

    if "storage" in kwargs or "clock" in kwargs:
        reset_runtime()
    reconfigure_runtimes(config)
    if module and discover:
        import_modules(module)


def _check(config: PyWorkflowConfig, kwargs: dict[str, Any]) -> None:
    """Refuse what cannot take effect, before anything changes."""
    from pyworkflow.exceptions import ConfigurationError

    runtime = kwargs.get("default_runtime", "local")
    if runtime != "local":
        raise ConfigurationError(
            f"default_runtime={runtime!r} is not available: the embedded runtime is 'local'; on "
            "AWS, runs are started through the API or pyworkflow.client")
    if "db_path" in kwargs and "storage" not in kwargs and config.storage is not None \
            and not config.storage_from_defaults:
        raise ConfigurationError(
            "db_path names the default SQLite file, but storage= was configured: pass "
            "storage=SQLiteStorageBackend(path) instead")
    for key in ("event_soft_limit", "event_hard_limit", "event_warning_interval",
                "default_retries"):
        value = kwargs.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < (0 if key == "default_retries" else 1)):
            raise ConfigurationError(f"{key} must be a positive integer, got {value!r}")
    for key, least in (("lease_seconds", 1e-3), ("retry_inline_max_seconds", 0.0)):
        value = kwargs.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not least <= value <= 10 * 366 * 86400):
            raise ConfigurationError(
                f"{key} must be a number of seconds ({least:g} up to ten years), got {value!r}")
    for key in ("default_durable",):
        if key in kwargs and not isinstance(kwargs[key], bool):
            raise ConfigurationError(f"{key} must be True or False, got {kwargs[key]!r}")


def import_modules(spec: str) -> None:
    import importlib
    import sys

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in [m.strip() for m in spec.split(",") if m.strip()]:
        importlib.import_module(name)


def get_config() -> PyWorkflowConfig:
    global _config
    if _config is None:
        _config = PyWorkflowConfig()
    return _config


def reset_config() -> None:
    """Back to defaults (storage and runtime included)."""
    global _config
    _config = None
    from pyworkflow.runtime.local import reset_runtime

    reset_runtime()


def get_storage() -> StorageBackend:
    """The configured storage, created lazily: SQLite at ``./.pyworkflow/pyworkflow.db`` unless
    ``configure(storage=...)`` or ``PYWORKFLOW_STORAGE`` says otherwise."""
    config = get_config()
    if config.storage is None:
        choice = os.environ.get(ENV_STORAGE, "sqlite")
        if choice == "memory":
            from pyworkflow.storage.memory import InMemoryStorageBackend

            config.storage = InMemoryStorageBackend()
        elif choice.startswith("file"):
            from pyworkflow.storage.file import FileStorageBackend

            config.storage = FileStorageBackend(choice.partition(":")[2] or ".pyworkflow/data")
        else:
            from pyworkflow.storage.sqlite import SQLiteStorageBackend

            config.storage = SQLiteStorageBackend(config.db_path)
        from pyworkflow.storage.offload import offload_from_env

        config.storage = offload_from_env(config.storage)  # itself unless PYWORKFLOW_BLOB_*
        config.storage_from_defaults = True
    return config.storage

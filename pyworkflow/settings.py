"""Settings: every environment variable pyworkflow reads, named once, read here and nowhere else.

``Settings`` is one frozen, typed object. Its fields that name a variable (``validation_alias``)
come from the environment; the others are ``configure()``'s options (``default_durable``,
``lease_seconds``...), which no variable sets. ``get_settings()`` returns the current object:
the environment read once, with ``configure()``'s overrides on top.

The environment is parsed once per process in practice: a Lambda's or a CLI's environment does
not change. A process that changes its own ``os.environ`` later (tests, scripts) gets the new
values at the next ``get_settings()``: the names below are compared with what was read (a few
dictionary look-ups), and only a difference is parsed again.

Every change (environment or ``configure()``) moves ``generation``: runtimes compare it when an
execution starts and take the new values then, so nothing here reaches into a runtime.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pyworkflow.exceptions import ConfigurationError

# --- the variables ------------------------------------------------------------------------------
ENV_DB_PATH = "PYWORKFLOW_DB"  # SQLite file of the embedded default storage
ENV_MODULE = "PYWORKFLOW_MODULE"  # module(s) defining workflows, for the CLI and worker
ENV_DISCOVER = "PYWORKFLOW_DISCOVER"  # pyworkflow-engine's name for the same (discover_workflows)
ENV_STORAGE = "PYWORKFLOW_STORAGE"  # "sqlite" (default), "memory", "file:<dir>", "dynamodb"
# postgresql://.., mysql://.., sqlite:///.., secretsmanager://<arn>: wins over PYWORKFLOW_STORAGE
ENV_DATABASE_URL = "PYWORKFLOW_DATABASE_URL"
ENV_DYNAMODB_TABLE = "PYWORKFLOW_TABLE"  # DynamoDB table of the AWS storage
ENV_DYNAMODB_ENDPOINT = "PYWORKFLOW_DYNAMODB_ENDPOINT"  # e.g. DynamoDB Local; unset on AWS
ENV_AWS_REGION = "AWS_REGION"  # set by Lambda; AWS_DEFAULT_REGION is the fallback
ENV_AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
DEFAULT_DB_PATH = ".pyworkflow/pyworkflow.db"

# AWS runtime (pyworkflow.runtime.aws, pyworkflow.transport.aws, pyworkflow/handlers/worker.py)
ENV_QUEUE_URL = "PYWORKFLOW_QUEUE_URL"  # the work queue every wake-up goes to
ENV_QUEUE_ARN = "PYWORKFLOW_QUEUE_ARN"  # the same queue, as Scheduler's target
ENV_SCHEDULER_GROUP = "PYWORKFLOW_SCHEDULER_GROUP"  # schedule group of one-time timers
ENV_SCHEDULER_ROLE_ARN = "PYWORKFLOW_SCHEDULER_ROLE_ARN"  # role Scheduler sends to SQS with
ENV_SQS_DELAY_MAX = "PYWORKFLOW_SQS_DELAY_MAX_SECONDS"  # waits up to this use DelaySeconds
ENV_SCHEDULER_LEAD = "PYWORKFLOW_SCHEDULER_LEAD_SECONDS"  # Scheduler hops fire this early
ENV_TIMERS = "PYWORKFLOW_TIMERS"  # "run": a schedule per wait; "bucket": one per minute of waits
ENV_VISIBILITY_TIMEOUT = "PYWORKFLOW_VISIBILITY_TIMEOUT"  # the queue's, in seconds: the lease
ENV_MAX_RECEIVES = "PYWORKFLOW_MAX_RECEIVES"  # a message failing this often fails its run
ENV_RETENTION_DAYS = "PYWORKFLOW_RETENTION_DAYS"  # days finished runs stay (DynamoDB TTL)
ENV_API_URL = "PYWORKFLOW_API_URL"  # a deployed (or local) stack's HTTP API
ENV_API_NO_SIGN = "PYWORKFLOW_API_NO_SIGN"  # the CLI's --no-sign (a click envvar)

# Large payloads: fields over the threshold live in a blob store
ENV_BLOB_BUCKET = "PYWORKFLOW_BLOB_BUCKET"  # S3 bucket of large payloads (AWS)
ENV_BLOB_DIR = "PYWORKFLOW_BLOB_DIR"  # or a directory (embedded runtime)
ENV_OFFLOAD_THRESHOLD_BYTES = "PYWORKFLOW_OFFLOAD_THRESHOLD_BYTES"  # default 200 KB
ENV_MAX_PAYLOAD_BYTES = "PYWORKFLOW_MAX_PAYLOAD_BYTES"  # larger payloads fail; default 50 MB
DEFAULT_MAX_PAYLOAD_BYTES = 50 * 1024 * 1024

# API (pyworkflow/handlers/api.py)
ENV_MAX_REQUEST_BYTES = "PYWORKFLOW_MAX_REQUEST_BYTES"  # larger request bodies are a 413
DEFAULT_MAX_REQUEST_BYTES = 256 * 1024
# The run viewer's forms (pyworkflow/handlers/ui_csrf.py)
ENV_UI_SECRET = "PYWORKFLOW_UI_SECRET"  # signs the forms' CSRF tokens; unset: a per-container key
ENV_UI_ORIGINS = "PYWORKFLOW_UI_ORIGINS"  # more origins the forms may be posted from (a proxy's)

# Powertools' own variables, which the handlers give defaults of their own
ENV_OTEL = "PYWORKFLOW_OTEL"  # "1": OpenTelemetry tracing (pyworkflow.observability.otel)
ENV_POWERTOOLS_SERVICE = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"

_TEN_YEARS = 10 * 366 * 86400.0


class Settings(BaseSettings):
    """Every setting, typed. Variables are read by their documented names (``validation_alias``);
    fields without one are ``configure()``'s options. ``None`` means "the component's own
    default" (e.g. SQS's 900 s delay limit in ``pyworkflow.transport.sqs``)."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
        str_strip_whitespace=True,
    )

    # --- embedded runtime and CLI ----------------------------------------------------------
    db_path: str = Field(default=DEFAULT_DB_PATH, validation_alias=ENV_DB_PATH)
    module: str | None = Field(
        default=None, validation_alias=AliasChoices(ENV_MODULE, ENV_DISCOVER)
    )
    storage_kind: str = Field(default="sqlite", validation_alias=ENV_STORAGE)
    database_url: str | None = Field(default=None, validation_alias=ENV_DATABASE_URL)
    api_url: str | None = Field(default=None, validation_alias=ENV_API_URL)

    # --- AWS ---------------------------------------------------------------------------------
    table: str | None = Field(default=None, validation_alias=ENV_DYNAMODB_TABLE)
    dynamodb_endpoint: str | None = Field(default=None, validation_alias=ENV_DYNAMODB_ENDPOINT)
    region: str | None = Field(
        default=None, validation_alias=AliasChoices(ENV_AWS_REGION, ENV_AWS_DEFAULT_REGION)
    )
    queue_url: str | None = Field(default=None, validation_alias=ENV_QUEUE_URL)
    queue_arn: str | None = Field(default=None, validation_alias=ENV_QUEUE_ARN)
    scheduler_group: str | None = Field(default=None, validation_alias=ENV_SCHEDULER_GROUP)
    scheduler_role_arn: str | None = Field(default=None, validation_alias=ENV_SCHEDULER_ROLE_ARN)
    sqs_delay_max_seconds: float | None = Field(default=None, validation_alias=ENV_SQS_DELAY_MAX)
    scheduler_lead_seconds: float | None = Field(
        default=None, ge=0, validation_alias=ENV_SCHEDULER_LEAD
    )
    timers: str = Field(default="run", validation_alias=ENV_TIMERS)
    visibility_timeout: float | None = Field(
        default=None, gt=0, validation_alias=ENV_VISIBILITY_TIMEOUT
    )
    max_receives: int | None = Field(default=None, ge=1, validation_alias=ENV_MAX_RECEIVES)
    retention_days: float | None = Field(default=None, gt=0, validation_alias=ENV_RETENTION_DAYS)
    max_request_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES, gt=0, validation_alias=ENV_MAX_REQUEST_BYTES
    )
    # SecretStr: never shown by a repr or a dump of the settings
    ui_secret: SecretStr | None = Field(default=None, validation_alias=ENV_UI_SECRET)
    ui_origins: str | None = Field(default=None, validation_alias=ENV_UI_ORIGINS)
    otel: bool = Field(default=False, validation_alias=ENV_OTEL)
    service_name: str | None = Field(default=None, validation_alias=ENV_POWERTOOLS_SERVICE)
    metrics_namespace: str | None = Field(default=None, validation_alias=ENV_POWERTOOLS_NAMESPACE)

    # --- large payloads ----------------------------------------------------------------------
    blob_bucket: str | None = Field(default=None, validation_alias=ENV_BLOB_BUCKET)
    blob_dir: str | None = Field(default=None, validation_alias=ENV_BLOB_DIR)
    offload_threshold_bytes: int | None = Field(
        default=None, gt=0, validation_alias=ENV_OFFLOAD_THRESHOLD_BYTES
    )
    max_payload_bytes: int = Field(
        default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0, validation_alias=ENV_MAX_PAYLOAD_BYTES
    )

    # --- configure()'s options (no variable) ---------------------------------------------------
    default_durable: bool = True
    default_retries: int = Field(default=3, ge=0)
    event_soft_limit: int = Field(default=10_000, ge=1)
    event_hard_limit: int = Field(default=50_000, ge=1)
    event_warning_interval: int = Field(default=100, ge=1)
    # Retry backoffs up to this long wait in-process instead of suspending the run. 0 keeps
    # pyworkflow-engine's behaviour: every retry suspends and a timer resumes it.
    retry_inline_max_seconds: float = Field(default=0.0, ge=0, le=_TEN_YEARS)
    # how long a crashed process blocks its runs
    lease_seconds: float = Field(default=60.0, ge=1e-3, le=_TEN_YEARS)

    @field_validator("max_receives", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        # "5.0" was accepted before (int(float(raw))): keep accepting it
        if isinstance(value, str):
            try:
                return int(float(value))
            except ValueError:
                return value
        return value

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        # A variable set to spaces meant "unset" before (``.strip()`` then a default)
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No .env file and no secrets directory: the environment documented here, nothing else
        return init_settings, _NamedVariables(settings_cls)


class _NamedVariables(EnvSettingsSource):
    """Only fields that name their variable read the environment: ``configure()``'s options
    have none, so no undocumented ``PYWORKFLOW_LEASE_SECONDS`` appears by accident."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field.validation_alias is None:
            return None, field_name, False
        return super().get_field_value(field, field_name)


def _variable_names() -> tuple[str, ...]:
    names: list[str] = []
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, str):
            names.append(alias)
        elif isinstance(alias, AliasChoices):
            names.extend(str(choice) for choice in alias.choices)
    return tuple(names)


VARIABLES: tuple[str, ...] = _variable_names()
#: the fields ``configure()`` may set (the others come from the environment only)
OPTIONS: frozenset[str] = frozenset(
    name for name, info in Settings.model_fields.items() if info.validation_alias is None
) | {"db_path"}


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "settings"
        parts.append(f"{where}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(parts)


def read_environment() -> Settings:
    """Parse the environment now (``ConfigurationError`` naming the variable if a value is
    bad). Most code wants ``get_settings()``, which does this once."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(f"Bad environment setting: {_describe(error)}") from None


# ``get_settings()`` compares the variables with the last read on every call (a test, or a
# process, may change the environment at any time). ``os.environ.get`` of a variable that is not
# set raises and catches a KeyError inside: ~2 us each, ~45 us per call, a third of an embedded
# run's fixed cost. The mapping ``os.environ`` keeps (CPython's ``_data``, keyed by
# ``encodekey``) answers the same question in a fraction of that; where it is missing, the
# public way.
_ENVIRON_DATA: dict[Any, Any] | None = getattr(os.environ, "_data", None)
_ENCODED: tuple[Any, ...] = (
    tuple(os.environ.encodekey(name) for name in VARIABLES)
    if _ENVIRON_DATA is not None and hasattr(os.environ, "encodekey")
    else ()
)


def _snapshot() -> tuple[Any, ...]:
    """What the variables hold now (as stored: only ever compared with another snapshot)."""
    if _ENCODED and getattr(os.environ, "_data", None) is _ENVIRON_DATA:
        return tuple(map(_ENVIRON_DATA.get, _ENCODED))  # type: ignore[union-attr]
    return tuple(os.environ.get(name) for name in VARIABLES)


class _State:
    """The current settings: the environment as read, ``configure()``'s overrides on top."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: tuple[Any, ...] | None = None
        self.from_env: Settings | None = None
        self.overrides: dict[str, Any] = {}
        self.current: Settings | None = None
        self.generation = 0


_state = _State()


def get_settings() -> Settings:
    """The current settings (the environment read once, ``configure()``'s changes on top)."""
    seen = _snapshot()
    current = _state.current
    if current is not None and seen == _state.seen:
        return current
    with _state.lock:
        if _state.current is None or seen != _state.seen:
            _state.from_env = read_environment()
            _state.seen = seen
            _state.current = _state.from_env.model_copy(update=_state.overrides)
            _state.generation += 1
        return _state.current


def settings_generation() -> int:
    """Moves whenever the settings change: a runtime compares it when an execution starts.
    A plain read (no look at the environment): ``configure()`` moves it at once, a changed
    environment at the next ``get_settings()``."""
    return _state.generation


def update_settings(**changes: Any) -> Settings:
    """Put ``configure()``'s (already checked) option values on top of the environment's."""
    get_settings()
    with _state.lock:
        _state.overrides.update(changes)
        if _state.from_env is None:  # get_settings() above read it
            raise ConfigurationError("The environment's settings were not read")
        _state.current = _state.from_env.model_copy(update=_state.overrides)
        _state.generation += 1
        return _state.current


def reset_settings() -> None:
    """Drop ``configure()``'s changes; the environment is read again at the next use."""
    with _state.lock:
        _state.seen = None
        _state.from_env = None
        _state.current = None
        _state.overrides = {}
        _state.generation += 1


def settings_overrides() -> dict[str, Any]:
    """``configure()``'s changes so far (``WorkflowEnvironment`` saves and puts them back)."""
    return dict(_state.overrides)


def restore_overrides(overrides: Mapping[str, Any]) -> None:
    with _state.lock:
        _state.overrides = dict(overrides)
        _state.current = None
        _state.seen = None
        _state.generation += 1


def unset_variables(defaults: Mapping[str, str]) -> dict[str, str]:
    """The ``defaults`` whose variable this process's environment does not set: a child
    process's environment (``pyworkflow dev``) where the user's own values win."""
    return {name: value for name, value in defaults.items() if name not in os.environ}


__all__ = [
    "DEFAULT_DB_PATH",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_MAX_REQUEST_BYTES",
    "ENV_API_NO_SIGN",
    "ENV_API_URL",
    "ENV_AWS_DEFAULT_REGION",
    "ENV_AWS_REGION",
    "ENV_BLOB_BUCKET",
    "ENV_BLOB_DIR",
    "ENV_DB_PATH",
    "ENV_DISCOVER",
    "ENV_DATABASE_URL",
    "ENV_DYNAMODB_ENDPOINT",
    "ENV_DYNAMODB_TABLE",
    "ENV_MAX_PAYLOAD_BYTES",
    "ENV_MAX_RECEIVES",
    "ENV_MAX_REQUEST_BYTES",
    "ENV_MODULE",
    "ENV_OFFLOAD_THRESHOLD_BYTES",
    "ENV_OTEL",
    "ENV_POWERTOOLS_NAMESPACE",
    "ENV_POWERTOOLS_SERVICE",
    "ENV_QUEUE_ARN",
    "ENV_QUEUE_URL",
    "ENV_RETENTION_DAYS",
    "ENV_SCHEDULER_GROUP",
    "ENV_SCHEDULER_LEAD",
    "ENV_SCHEDULER_ROLE_ARN",
    "ENV_SQS_DELAY_MAX",
    "ENV_STORAGE",
    "ENV_TIMERS",
    "ENV_UI_ORIGINS",
    "ENV_UI_SECRET",
    "ENV_VISIBILITY_TIMEOUT",
    "OPTIONS",
    "VARIABLES",
    "Settings",
    "get_settings",
    "read_environment",
    "reset_settings",
    "restore_overrides",
    "settings_generation",
    "settings_overrides",
    "unset_variables",
]

"""Where the CLI's settings come from — flags, environment, ``pyworkflow.toml`` or
``[tool.pyworkflow]`` in ``pyproject.toml`` of the current directory — and the per-invocation
state every command reads (the backend: local storage or a stack's API; imported workflow
modules; output format)."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pyworkflow.cli.errors import CliError
from pyworkflow.config import ENV_DB_PATH, ENV_MODULE, configure, get_config, import_modules
from pyworkflow.core.registry import WorkflowDefinition, get_workflow, list_workflows
from pyworkflow.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pyworkflow.cli.backend import Backend
    from pyworkflow.cli.local import LocalBackend

T = TypeVar("T")

MODULE_HINT = (
    "pass the module that defines it: pyworkflow --module myapp.workflows ... "
    f'(or set {ENV_MODULE}, or module = "myapp.workflows" in pyworkflow.toml or under '
    "[tool.pyworkflow] in pyproject.toml)"
)


def read_file_config(directory: Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """Settings from ``pyworkflow.toml`` (top level) or ``pyproject.toml`` ([tool.pyworkflow])."""
    directory = directory or Path.cwd()
    candidates = [(directory / "pyworkflow.toml", False), (directory / "pyproject.toml", True)]
    for path, nested in candidates:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"Cannot read {path}: {exc}", "fix the TOML syntax") from None
        if nested:
            data = data.get("tool", {}).get("pyworkflow")
            if data is None:
                continue
        if not isinstance(data, dict):
            raise CliError(f"{path}: [tool.pyworkflow] must be a table")
        return data, path
    return {}, None


@dataclass
class CliState:
    module: str | None = None
    module_source: str | None = None  # where ``module`` came from, for messages
    db: str | None = None  # explicit SQLite file (flag, env or config file)
    output: str = "table"
    verbose: bool = False
    imported: list[str] = field(default_factory=list)
    api_url: str | None = None  # a stack's HTTP API instead of local storage
    sign: bool = True  # SigV4-sign requests to ``api_url``
    _loaded: bool = False
    _backend: Backend | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def remote(self) -> bool:
        return self.api_url is not None

    @property
    def backend(self) -> Backend:
        """Where the commands read and change runs, chosen once per invocation."""
        if self._backend is None:
            if self.api_url is not None:
                from pyworkflow.cli.remote import RemoteBackend

                self._backend = RemoteBackend(self.api_url, sign=self.sign)
            else:
                from pyworkflow.cli.local import LocalBackend

                self._backend = LocalBackend(self.db_label(), self)
        return self._backend

    def local(self, command: str, hint: str | None = None) -> LocalBackend:
        """The local backend, or a one-line refusal for a command the API cannot serve."""
        from pyworkflow.cli.local import LocalBackend

        backend = self.backend
        if not isinstance(backend, LocalBackend):
            from pyworkflow.cli.remote import needs_local

            raise needs_local(command, backend.label, hint)
        return backend

    @property
    def modules(self) -> list[str]:
        return [m.strip() for m in (self.module or "").split(",") if m.strip()]

    def db_label(self) -> str:
        """The storage in use, for messages (does not open it)."""
        if self.api_url is not None:
            return self.api_url
        if self.db:
            from pyworkflow.storage.sql.urls import redact

            return redact(self.db)
        storage = get_config().storage
        if storage is None:
            return get_config().db_path
        path = getattr(storage, "db_path", None)
        return str(path) if path is not None else type(storage).__name__

    def configure_storage(self) -> None:
        if self.db and not self.remote:
            from pyworkflow.storage.sql.urls import backend_from_url, is_database_url

            if is_database_url(self.db):  # postgresql://, mysql://, secretsmanager://...
                configure(storage=backend_from_url(self.db))
                return
            from pyworkflow.storage.sqlite import SQLiteStorageBackend

            configure(storage=SQLiteStorageBackend(self.db))

    def load_modules(self) -> list[str]:
        """Import the workflow modules (once). Import failures become one-line errors."""
        if self._loaded:
            return self.imported
        self._loaded = True
        for name in self.modules:
            try:
                import_modules(name)
            except ModuleNotFoundError as exc:
                if self.verbose:
                    raise
                own = exc.name is not None and (name == exc.name or name.startswith(exc.name + "."))
                if own:
                    raise CliError(
                        f"Cannot import workflow module {name!r} (from {self.module_source}): "
                        f"{exc}",
                        "run pyworkflow from the directory that contains it, or pass an "
                        "importable dotted path with --module/-m",
                    ) from None
                raise CliError(
                    f"Importing workflow module {name!r} failed: {exc}",
                    "install the missing package",
                ) from None
            except click.ClickException:
                raise
            except ConfigurationError as exc:  # not a module name nor a .py file
                if self.verbose:
                    raise
                raise CliError(
                    str(exc), f"the module list comes from {self.module_source}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - the user's module may raise anything
                if self.verbose:
                    raise
                raise CliError(
                    f"Importing workflow module {name!r} failed: {type(exc).__name__}: {exc}",
                    "re-run with --verbose to see the traceback",
                ) from None
            self.imported.append(name)
        return self.imported

    def workflow(self, name: str, *, run_id: str | None = None) -> WorkflowDefinition:
        """The registered workflow ``name``, or an error naming the modules imported."""
        self.load_modules()
        defn = get_workflow(name)
        if defn is not None:
            return defn
        known = sorted(list_workflows())
        where = (
            f"imported modules: {', '.join(self.imported)}"
            if self.imported
            else "no workflow module was imported"
        )
        listing = f"; registered workflows: {', '.join(known)}" if known else ""
        what = (
            f"Workflow {name!r} of run {run_id} is not defined here"
            if run_id
            else f"Unknown workflow {name!r}"
        )
        raise CliError(f"{what} ({where}{listing})", MODULE_HINT)


def state() -> CliState:
    ctx = click.get_current_context()
    obj = ctx.find_object(CliState)
    if obj is None:  # a subcommand invoked on its own (tests)
        obj = ctx.ensure_object(CliState)
    return obj


def resolve(
    module: str | None,
    module_source: str | None,
    db: str | None,
    output: str,
    verbose: bool,
    api_url: str | None = None,
    no_sign: bool = False,
) -> CliState:
    """Merge the flags/environment with the config file (flags and environment win)."""
    file_config, path = read_file_config()
    if module is None and file_config.get("module"):
        module = str(file_config["module"])
        module_source = str(path.name if path else "config file")
    if db is None and file_config.get("db"):
        db = str(file_config["db"])
    sign = True
    if api_url is not None:
        from pyworkflow.cli.remote import should_sign

        api_url = api_url.strip().rstrip("/")
        sign = should_sign(api_url, no_sign)
    return CliState(
        module=module,
        module_source=module_source,
        db=db,
        output=output,
        verbose=verbose,
        api_url=api_url or None,
        sign=sign,
    )


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, then release what it opened: local storage and background
    drives, or the API client's connections."""
    ctx = click.get_current_context(silent=True)
    st = ctx.find_object(CliState) if ctx is not None else None

    async def main() -> T:
        try:
            return await coro
        finally:
            if st is not None and st.remote:
                await st.backend.aclose()
            else:
                from pyworkflow.cli.local import close_local

                await close_local()

    return asyncio.run(main())


__all__ = [
    "ENV_DB_PATH",
    "ENV_MODULE",
    "CliState",
    "read_file_config",
    "resolve",
    "run_async",
    "state",
]

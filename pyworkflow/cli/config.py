"""Where the CLI's settings come from — flags, environment, ``pyworkflow.toml`` or
``[tool.pyworkflow]`` in ``pyproject.toml`` of the current directory — and the per-invocation
state every command reads (storage, imported workflow modules, output format)."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from pyworkflow.cli.errors import CliError
from pyworkflow.config import ENV_DB_PATH, ENV_MODULE, configure, get_config, import_modules
from pyworkflow.core.registry import WorkflowDefinition, get_workflow, list_workflows

T = TypeVar("T")

MODULE_HINT = (
    "pass the module that defines it: pyworkflow --module myapp.workflows ... "
    f"(or set {ENV_MODULE}, or module = \"myapp.workflows\" in pyworkflow.toml or under "
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
    module_source: str | None = None       # where ``module`` came from, for messages
    db: str | None = None                  # explicit SQLite file (flag, env or config file)
    output: str = "table"
    verbose: bool = False
    imported: list[str] = field(default_factory=list)
    _loaded: bool = False

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def modules(self) -> list[str]:
        return [m.strip() for m in (self.module or "").split(",") if m.strip()]

    def db_label(self) -> str:
        """The storage in use, for messages (does not open it)."""
        if self.db:
            return self.db
        storage = get_config().storage
        if storage is None:
            return get_config().db_path
        path = getattr(storage, "db_path", None)
        return str(path) if path is not None else type(storage).__name__

    def configure_storage(self) -> None:
        if self.db:
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
                raise CliError(f"Importing workflow module {name!r} failed: {exc}",
                               "install the missing package") from None
            except click.ClickException:
                raise
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
        where = (f"imported modules: {', '.join(self.imported)}" if self.imported
                 else "no workflow module was imported")
        listing = f"; registered workflows: {', '.join(known)}" if known else ""
        what = f"Workflow {name!r} of run {run_id} is not defined here" if run_id else \
            f"Unknown workflow {name!r}"
        raise CliError(f"{what} ({where}{listing})", MODULE_HINT)


def state() -> CliState:
    ctx = click.get_current_context()
    obj = ctx.find_object(CliState)
    if obj is None:  # a subcommand invoked on its own (tests)
        obj = ctx.ensure_object(CliState)
    return obj


def resolve(module: str | None, module_source: str | None, db: str | None, output: str,
            verbose: bool) -> CliState:
    """Merge the flags/environment with the config file (flags and environment win)."""
    file_config, path = read_file_config()
    if module is None and file_config.get("module"):
        module = str(file_config["module"])
        module_source = str(path.name if path else "config file")
    if db is None and file_config.get("db"):
        db = str(file_config["db"])
    return CliState(module=module, module_source=module_source, db=db, output=output,
                    verbose=verbose)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, then stop background drives and close the storage."""

    async def main() -> T:
        try:
            return await coro
        finally:
            storage = get_config().storage
            if storage is not None:
                from pyworkflow.runtime.local import get_runtime

                await get_runtime(storage).close()
                await storage.close()

    return asyncio.run(main())


__all__ = ["ENV_DB_PATH", "ENV_MODULE", "CliState", "read_file_config", "resolve", "run_async",
           "state"]

"""Read pyworkflow-engine 0.1.9's public API from its sdist's source, without importing it.

Every name of ``pyworkflow/__init__.py``'s ``__all__`` is followed through the ``from ... import``
lines to the ``def`` or ``class`` that defines it, and its call signature is rebuilt from the
AST: parameter names, kinds and whether each has a default. Classes use their own ``__init__``,
a dataclass its fields, and otherwise the nearest base class found in the sdist that has either.
"""

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

P = inspect.Parameter


@dataclass(frozen=True)
class Param:
    name: str
    kind: inspect._ParameterKind
    has_default: bool

    def __str__(self) -> str:
        prefix = {P.VAR_POSITIONAL: "*", P.VAR_KEYWORD: "**"}.get(self.kind, "")
        return f"{prefix}{self.name}{'=…' if self.has_default else ''}"


@dataclass(frozen=True)
class Definition:
    module: str
    node: ast.AST


def engine_all(sdist: Path) -> list[str]:
    tree = ast.parse((sdist / "pyworkflow" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise AssertionError("0.1.9's pyworkflow/__init__.py has no __all__")


class EngineSource:
    def __init__(self, sdist: Path) -> None:
        self.sdist = sdist
        self._trees: dict[str, ast.Module] = {}

    def tree(self, module: str) -> ast.Module:
        if module not in self._trees:
            path = self.sdist / Path(*module.split("."))
            file = (
                path / "__init__.py" if (path / "__init__.py").exists() else path.with_suffix(".py")
            )
            self._trees[module] = ast.parse(file.read_text())
        return self._trees[module]

    def resolve(self, module: str, name: str) -> Definition | None:
        """Where ``name`` as seen from ``module`` is defined (following re-exports)."""
        tree = self.tree(module)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name == name:
                    return Definition(module, node)
            elif isinstance(node, ast.Assign):
                if any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                    return Definition(module, node)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        if not node.module.startswith("pyworkflow"):
                            return None  # from the standard library or a dependency
                        return self.resolve(node.module, alias.name)
        return None

    def signature(self, name: str) -> list[Param] | None:
        """The call signature of 0.1.9's ``name``, or None when it is not a callable we check."""
        found = self.resolve("pyworkflow", name)
        if found is None:
            raise AssertionError(f"{name} is not defined in 0.1.9's sources")
        if isinstance(found.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return _params(found.node.args)
        if isinstance(found.node, ast.ClassDef):
            return self._class_signature(found)
        return None

    def is_enum(self, name: str) -> bool:
        found = self.resolve("pyworkflow", name)
        return (
            found is not None
            and isinstance(found.node, ast.ClassDef)
            and any(ast.unparse(b).endswith("Enum") for b in found.node.bases)
        )

    def enum_values(self, name: str) -> dict[str, object]:
        found = self.resolve("pyworkflow", name)
        assert found is not None and isinstance(found.node, ast.ClassDef)
        values: dict[str, object] = {}
        for node in found.node.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                values[node.targets[0].id] = ast.literal_eval(node.value)
        return values

    def public_methods(self, name: str) -> set[str]:
        """Public methods and properties a 0.1.9 class defines in its own body."""
        found = self.resolve("pyworkflow", name)
        if found is None or not isinstance(found.node, ast.ClassDef):
            return set()
        return {
            node.name
            for node in found.node.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and not node.name.startswith("_")
        }

    def _class_signature(self, found: Definition) -> list[Param] | None:
        cls = found.node
        assert isinstance(cls, ast.ClassDef)
        bases = [ast.unparse(b) for b in cls.bases]
        if any(b.endswith("Enum") for b in bases):
            return None  # enums are compared by their members
        for node in cls.body:
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                return _params(node.args)[1:]  # without self
        if any(_is_dataclass(d) for d in cls.decorator_list):
            return _dataclass_fields(cls)
        for base in bases:
            if base in ("Exception", "BaseException"):
                return [
                    Param("args", P.VAR_POSITIONAL, False),
                    Param("kwargs", P.VAR_KEYWORD, False),
                ]
            base_def = self.resolve(found.module, base)
            if base_def is not None and isinstance(base_def.node, ast.ClassDef):
                return self._class_signature(base_def)
        if "BaseModel" in bases:
            return None  # a pydantic model: its fields are keyword arguments, checked by name
        return []  # object's (or ABC's) __init__


def _is_dataclass(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return ast.unparse(target).split(".")[-1] == "dataclass"


def _dataclass_fields(cls: ast.ClassDef) -> list[Param]:
    fields = []
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if "ClassVar" in ast.unparse(node.annotation):
            continue
        value = node.value
        if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("field"):
            keywords = {k.arg: k.value for k in value.keywords}
            init = keywords.get("init")
            if isinstance(init, ast.Constant) and init.value is False:
                continue
            has_default = "default" in keywords or "default_factory" in keywords
        else:
            has_default = value is not None
        fields.append(Param(node.target.id, P.POSITIONAL_OR_KEYWORD, has_default))
    return fields


def _params(args: ast.arguments) -> list[Param]:
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    params = [
        Param(
            a.arg,
            P.POSITIONAL_ONLY if i < len(args.posonlyargs) else P.POSITIONAL_OR_KEYWORD,
            i >= first_default,
        )
        for i, a in enumerate(positional)
    ]
    if args.vararg:
        params.append(Param(args.vararg.arg, P.VAR_POSITIONAL, False))
    params += [
        Param(a.arg, P.KEYWORD_ONLY, d is not None)
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg:
        params.append(Param(args.kwarg.arg, P.VAR_KEYWORD, False))
    return params


def our_signature(obj: object) -> list[Param]:
    try:
        signature = inspect.signature(obj)  # type: ignore[arg-type]
    except ValueError:  # a class that keeps BaseException's __init__ (no signature to read)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return [Param("args", P.VAR_POSITIONAL, False), Param("kwargs", P.VAR_KEYWORD, False)]
        raise
    return [Param(p.name, p.kind, p.default is not P.empty) for p in signature.parameters.values()]


def differences(engine: list[Param], ours: list[Param]) -> list[str]:
    """Why ``ours`` cannot stand in for ``engine`` (empty when it can).

    Every 0.1.9 parameter must be there with the same name, kind and default-presence, and the
    positional ones in the same order. Ours may add keyword-only parameters with defaults.
    """
    problems = []
    by_name = {p.name: p for p in ours}
    engine_names = {p.name for p in engine}
    for param in engine:
        mine = by_name.get(param.name)
        if mine is None:
            problems.append(f"missing parameter {param}")
        elif mine.kind != param.kind:
            problems.append(
                f"{param.name}: {mine.kind.description}, 0.1.9 {param.kind.description}"
            )
        elif mine.has_default != param.has_default:
            problems.append(f"{param.name}: default {'added' if mine.has_default else 'dropped'}")
    positional = (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
    engine_order = [p.name for p in engine if p.kind in positional]
    our_order = [p.name for p in ours if p.kind in positional][: len(engine_order)]
    if engine_order != our_order and not problems:
        problems.append(f"positional order {our_order}, 0.1.9 {engine_order}")
    for mine in ours:
        if mine.name in engine_names:
            continue
        if mine.kind is P.KEYWORD_ONLY and mine.has_default:
            continue
        problems.append(f"extra parameter {mine} ({mine.kind.description})")
    return problems

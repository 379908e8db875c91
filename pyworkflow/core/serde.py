"""JSON payloads, pydantic-aware. Nothing read from storage is ever unpickled or evaluated.

A value goes through ``to_jsonable`` on the way in and, on the way out, through ``from_jsonable``
with the annotation the code declares (a pydantic model, a dataclass, ``list[int]``…). The first
execution returns the same decoded value as every replay, so a workflow sees identical data
whether a step just ran or its result came from history.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from pathlib import PurePath
from typing import Annotated, Any, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel, TypeAdapter, ValidationError

from pyworkflow.exceptions import SerializationError


def to_jsonable(value: Any, *, what: str = "value") -> Any:
    """Turn ``value`` into plain JSON data, or raise ``SerializationError`` naming ``what`` and
    where in it the problem is (``.path``, e.g. ``[0]['name']``).

    The result holds only exact ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``
    (no ``IntEnum``, ``StrEnum`` or other subclasses), so it equals what storage gives back: the
    first execution sees the value every replay will see."""
    try:
        return _convert(value)
    except _Unstorable as exc:
        path = "".join(reversed(exc.path))
        where = f" at {path}" if path else ""
        raise SerializationError(
            f"{what} cannot be stored as JSON{where}: {exc.problem}", path=path
        ) from None


class _Unstorable(Exception):  # noqa: N818 - internal, carries the path out of the recursion
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []  # innermost first, joined reversed


def _text(value: str) -> str:
    """``value`` as an exact ``str``, checked to be encodable as UTF-8 (a lone surrogate, such
    as ``bytes.decode(errors="surrogateescape")`` leaves, is not)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start]
            raise _Unstorable(
                f"the text {_repr(value[:60])} holds a lone surrogate "
                f"({bad!r} at index {exc.start}), which UTF-8 cannot encode (was it decoded "
                "with errors='surrogateescape'? decode with errors='replace' or keep bytes "
                "as base64)"
            ) from None
    return value if type(value) is str else str.__str__(value)


def _key(key: Any) -> str:
    if isinstance(key, Enum):
        key = key.value
    if isinstance(key, str):
        return _text(key)
    if key is None or isinstance(key, bool):
        return json.dumps(key)  # "null", "true", "false", as json.dumps writes them
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, float):
        return json.dumps(_number(key))
    raise _Unstorable(f"dict key {key!r} of type {type(key).__name__}")


def _number(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise _Unstorable(f"{value!r} is not a JSON number")
    return value if type(value) is float else float(value)


# What every store can write and read back: pydantic-core's JSON parser refuses deeper nesting
# (about 200 levels) and Python's int parsing longer numbers (4300 digits).
MAX_DEPTH = 100
_MAX_INT = 10**4300


def _convert(value: Any, depth: int = 0) -> Any:
    if value is None:
        return value
    if isinstance(value, Enum):  # before str/int: StrEnum and IntEnum members are both
        return _convert(value.value, depth)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > 14_000 and abs(value) >= _MAX_INT:
            raise _Unstorable(
                f"an int of {value.bit_length():,} bits, over 4300 digits (store it as a string)"
            )
        return value if type(value) is int else int(value)
    if isinstance(value, float):
        return _number(value)
    if depth >= MAX_DEPTH:
        raise _Unstorable(f"the value nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, BaseModel):
        return _convert(value.model_dump(mode="json", by_alias=True), depth)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            try:
                key = _key(k)
                if key in out:
                    raise _Unstorable(
                        f"the dict keys {_repr(_original_key(value, key, k))} and {_repr(k)} "
                        "are both "
                        f"{key!r} once stored as JSON object keys: one would be lost"
                    )
                out[key] = _convert(v, depth + 1)
            except _Unstorable as exc:
                exc.path.append(f"[{_repr(k)}]")
                raise
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_convert(v, depth + 1))
            except _Unstorable as exc:
                exc.path.append(f"[{i}]")
                raise
        return items
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID | PurePath):
        return _text(str(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _convert({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, depth)
    raise _Unstorable(f"an object of type {type(value).__name__} ({_repr(value)[:80]})")


def _repr(value: Any) -> str:
    """``repr(value)`` for a message: storable, and never an error of its own."""
    try:
        return safe_text(repr(value))
    except Exception:  # noqa: BLE001 - a __repr__ that raises
        return f"<{type(value).__name__}>"


def _original_key(mapping: dict[Any, Any], stored: str, other: Any) -> Any:
    return next(k for k in mapping if k is not other and _key(k) == stored)


def describe(exc: BaseException) -> str:
    """``str(exc)`` made storable; an exception whose ``__str__`` fails is named instead."""
    try:
        text = str(exc)
    except Exception as error:  # noqa: BLE001 - user code
        return f"<{type(exc).__name__} whose str() raised {type(error).__name__}>"
    return safe_text(text)


def safe_text(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) written as ``\\udcXX``:
    for error messages and logs, which must never fail to be written themselves."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dumps(value: Any, *, what: str = "value") -> str:
    return json.dumps(to_jsonable(value, what=what), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@lru_cache(maxsize=1024)
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def from_jsonable(data: Any, annotation: Any = None) -> Any:
    """Decode JSON data into ``annotation`` when the code declared one; else return it as is."""
    if annotation is None or annotation is Any or data is None:
        return data
    try:
        try:
            return _adapter(annotation).validate_python(data)
        except ValidationError:
            # JSON's own rules: a strict model takes a datetime from its ISO text only there.
            return _adapter(annotation).validate_json(json.dumps(data))
    except (ValidationError, TypeError):
        # The data was stored by code with another shape: hand back the plain JSON rather than
        # failing a replay over a type hint.
        return data
    except Exception:  # noqa: BLE001 - exotic annotations pydantic cannot adapt
        return data


def validate(data: Any, annotation: Any) -> Any:
    """Strictly decode ``data`` into ``annotation``; raises pydantic's ValidationError."""
    try:
        return _adapter(annotation).validate_python(data)
    except ValidationError:
        # JSON data: a strict type takes some values (a datetime) from their JSON form only.
        return _adapter(annotation).validate_json(json.dumps(data))


def constrained(annotation: Any) -> bool:
    """Whether ``annotation`` carries ``Annotated`` metadata anywhere (``Annotated[int,
    Field(gt=0)]``, ``list[Annotated[str, AfterValidator(f)]]``): a result declared so is
    checked when it is recorded, where other annotations only decode what was stored."""
    if annotation is None or annotation is Any:
        return False
    if get_origin(annotation) is Annotated:
        return True
    try:
        return any(constrained(arg) for arg in get_args(annotation))
    except TypeError:  # an object typing cannot take apart: no metadata we know of
        return False


def check_result(payload: Any, annotation: Any, *, what: str) -> None:
    """``InvalidResultError`` if the JSON ``payload`` does not fit a constrained annotation
    (see ``constrained``), naming ``what`` ("The result of step 'charge'") and pydantic's
    reasons. Called before a result is recorded, so nothing invalid is ever stored."""
    if not constrained(annotation):
        return
    from pyworkflow.exceptions import InvalidResultError

    try:
        validate(payload, annotation)
    except ValidationError as exc:
        raise InvalidResultError(
            f"{what} does not fit its declared type {type_label(annotation)}: {exc}"
        ) from None


def type_label(annotation: Any) -> str:
    """``int``, ``Annotated[int, Gt(gt=0)]``: an annotation as a reader writes it."""
    if isinstance(annotation, type) and get_origin(annotation) is None:
        return annotation.__name__
    if get_origin(annotation) is Annotated:
        base, *extras = get_args(annotation)
        shown: list[str] = []
        for extra in extras:  # a Field(...) is shown as the constraints it holds
            shown += [repr(m) for m in getattr(extra, "metadata", None) or [extra]]
        return f"Annotated[{type_label(base)}, {', '.join(shown)}]"
    return str(annotation).replace("typing.", "")

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
from typing import Any
from uuid import UUID

from pydantic import BaseModel, TypeAdapter, ValidationError

from pyworkflow.exceptions import SerializationError


def to_jsonable(value: Any, *, what: str = "value") -> Any:
    """Turn ``value`` into plain JSON data, or raise ``SerializationError`` naming ``what``."""
    try:
        return _convert(value)
    except SerializationError as exc:
        raise SerializationError(f"{what} cannot be stored as JSON: {exc}") from None


def _convert(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise SerializationError(f"{value!r} is not a JSON number")
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str | int | float | bool) and k is not None:
                raise SerializationError(f"dict key {k!r} of type {type(k).__name__}")
            out[str(k) if not isinstance(k, str) else k] = _convert(v)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_convert(v) for v in value]
    if isinstance(value, Enum):
        return _convert(value.value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID | PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise SerializationError(f"an object of type {type(value).__name__} ({value!r:.80})")


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
        return _adapter(annotation).validate_python(data)
    except (ValidationError, TypeError):
        # The data was stored by code with another shape: hand back the plain JSON rather than
        # failing a replay over a type hint.
        return data
    except Exception:  # noqa: BLE001 - exotic annotations pydantic cannot adapt
        return data


def validate(data: Any, annotation: Any) -> Any:
    """Strictly decode ``data`` into ``annotation``; raises pydantic's ValidationError."""
    return _adapter(annotation).validate_python(data)

"""Durations: "30s", "5m", "2h", "1d", "1w", "1h30m", seconds, timedelta, or a datetime."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")

# Longest wait we accept: beyond this a typo ("100000d") is likelier than intent.
MAX_SECONDS = 366 * 86400 * 10

Duration = str | int | float | timedelta | datetime


def parse_duration(value: str | int | float | timedelta, *, name: str = "duration") -> float:
    """Seconds in ``value``. Raises ValueError naming the argument (``name``, e.g. "sleep()
    duration") and the accepted forms on anything else."""
    if isinstance(value, bool):
        raise ValueError(
            f"Invalid {name} {value!r}: use a number of seconds or a string like '30s'"
        )
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int past float's range: 10**400
            raise ValueError(f"Invalid {name} {value!r:.40}: longer than 10 years") from None
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for m in _PART.finditer(text):
                if m.start() != pos and text[pos : m.start()].strip():
                    break
                seconds += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            if pos == 0 or text[pos:].strip():
                raise ValueError(
                    f"Invalid {name} {value!r}: use a number of seconds or a string like "
                    "'30s', '5m', '2h', '1d', '1w' or '1h30m'"
                )
    else:
        raise ValueError(
            f"Invalid {name} {value!r} of type {type(value).__name__}: use a "
            "number of seconds, a string like '30s' or a timedelta"
        )
    if not math.isfinite(seconds):
        raise ValueError(f"Invalid {name} {value!r}: must be a finite number of seconds")
    if seconds < 0:
        raise ValueError(f"Invalid {name} {value!r}: must not be negative")
    if seconds > MAX_SECONDS:
        raise ValueError(f"Invalid {name} {value!r}: longer than 10 years")
    return seconds


def resolve_wake_time(value: Duration, now: datetime, *, name: str = "duration") -> datetime:
    """The absolute time a wait of ``value`` starting at ``now`` ends.

    A naive datetime is local time, as ``datetime.now()`` returns it (reading it as UTC would
    shift the wait by the machine's UTC offset); an aware one is taken as it is."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)  # for a naive value: interpreted in local time
    return now + timedelta(seconds=parse_duration(value, name=name))


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"

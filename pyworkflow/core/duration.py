"""Durations: "30s", "5m", "2h", "1d", "1w", "1h30m", seconds, timedelta, or a datetime."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")

# Longest wait we accept: beyond this a typo ("100000d") is likelier than intent.
MAX_SECONDS = 366 * 86400 * 10

Duration = str | int | float | timedelta | datetime


def parse_duration(value: str | int | float | timedelta) -> float:
    """Seconds in ``value``. Raises ValueError with the accepted forms on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid duration {value!r}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
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
                    f"Invalid duration {value!r}: use a number of seconds or a string like "
                    "'30s', '5m', '2h', '1d', '1w' or '1h30m'"
                )
    else:
        raise ValueError(f"Invalid duration {value!r} of type {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"Invalid duration {value!r}: must not be negative")
    if seconds > MAX_SECONDS:
        raise ValueError(f"Invalid duration {value!r}: longer than 10 years")
    return seconds


def resolve_wake_time(value: Duration, now: datetime) -> datetime:
    """The absolute time a wait of ``value`` starting at ``now`` ends."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return now + timedelta(seconds=parse_duration(value))


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

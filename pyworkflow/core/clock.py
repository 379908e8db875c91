"""Time and randomness reach the engine only through these, so tests can control both."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time (UTC) and real waiting."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to (``advance``) or when someone sleeps on it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


# Event ids need to be unique, not unguessable (a run's history is read only by who may read the
# run): 64 bits from a generator seeded from the OS once per process, and again in a forked
# child so parent and child never share a sequence. ``secrets`` asks the OS on every call, once
# per step: ~1 us of the per-step path.
_event_ids = random.Random(secrets.randbits(128))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _event_ids.seed(secrets.randbits(128)))


def new_event_id() -> str:
    """An event id: ``evt_`` and 16 hex digits, as ``new_id("evt")`` makes."""
    return f"evt_{_event_ids.getrandbits(64):016x}"


def new_token() -> str:
    """A hook token: 192 random bits, URL-safe, unrelated to any id. The prefix makes tokens
    recognisable in logs and keeps one from starting with "-" (a command line would read it as
    an option)."""
    return "whk_" + secrets.token_urlsafe(24)

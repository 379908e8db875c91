"""The audit behaviours run on both embedded backends, like the engine's own tests."""

from tests.runtime.conftest import clock, storage  # noqa: F401 - fixtures

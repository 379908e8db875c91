"""The audit's reproductions run on the engine's fixtures: both embedded backends (``storage``),
a manual clock (``clock``) and the in-process API (``api``)."""

from tests.handlers.api.conftest import api  # noqa: F401 - fixture
from tests.runtime.conftest import clock, storage  # noqa: F401 - fixtures

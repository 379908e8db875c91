"""pytest plugin: the ``workflow_env`` fixture, an open ``WorkflowEnvironment`` per test.

Loaded automatically once pyworkflow is installed (the ``pytest11`` entry point named after this
module, so a ``pytest_plugins`` line naming it as well loads it only once), or explicitly:
``pytest_plugins = ["pyworkflow.testing.plugin"]`` in the rootdir's conftest.py or in a test
module, or ``pytest -p pyworkflow.testing.plugin``.

The fixture is async, so async tests need pytest-asyncio (``asyncio_mode = "auto"``, or mark
them ``@pytest.mark.asyncio``). Options for one test:
``@pytest.mark.workflow_env(start=datetime(2031, 5, 1, tzinfo=UTC), skip_time=False)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyworkflow.testing.env import WorkflowEnvironment

try:
    import pytest_asyncio
except ImportError:  # the fixture says what is missing when a test asks for it
    pytest_asyncio = None  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "workflow_env(**options): options of the workflow_env fixture's WorkflowEnvironment "
        "(start=, skip_time=, max_timers=)",
    )


async def _open_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    marker = request.node.get_closest_marker("workflow_env")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    async with WorkflowEnvironment(**options) as env:
        yield env


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def workflow_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
        """An open time-skipping ``WorkflowEnvironment`` (in-memory storage, virtual time),
        closed after the test with the previous pyworkflow configuration restored."""
        async for env in _open_env(request):
            yield env
else:

    @pytest.fixture
    def workflow_env() -> None:
        raise pytest.UsageError(
            "The workflow_env fixture is async and needs pytest-asyncio: "
            'pip install pytest-asyncio (and set asyncio_mode = "auto")'
        )

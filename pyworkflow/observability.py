"""``bind_workflow_context`` / ``bind_step_context``: a logger that adds a run's (or a step's)
identity to every record, as pyworkflow-engine's do.

pyworkflow-engine returns a loguru logger; pyworkflow logs through the standard library (the
"pyworkflow" logger), so these return a ``logging.LoggerAdapter`` with the same calls
(``.info``, ``.warning``, ...) and loguru's ``.bind(**fields)`` for adding more fields.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any


class BoundLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose records carry ``extra`` fields (``record.run_id``...)."""

    def __init__(self, logger: logging.Logger, extra: Mapping[str, Any]) -> None:
        super().__init__(logger, dict(extra))

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        # Fields given at the call go with the bound ones (LoggerAdapter would drop them).
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs

    def bind(self, **fields: Any) -> BoundLogger:
        return BoundLogger(self.logger, {**(self.extra or {}), **fields})


def bind_workflow_context(run_id: str, workflow_name: str) -> BoundLogger:
    """A logger adding ``run_id`` and ``workflow_name`` to its records."""
    return BoundLogger(
        logging.getLogger("pyworkflow"), {"run_id": run_id, "workflow_name": workflow_name}
    )


def bind_step_context(run_id: str, step_id: str, step_name: str) -> BoundLogger:
    """A logger adding ``run_id``, ``step_id`` and ``step_name`` to its records."""
    return BoundLogger(
        logging.getLogger("pyworkflow"),
        {"run_id": run_id, "step_id": step_id, "step_name": step_name},
    )

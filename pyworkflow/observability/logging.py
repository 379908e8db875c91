"""``configure_logging()`` and ``get_logger()``: pyworkflow-engine's logging API on the standard
library's ``logging`` (which pyworkflow logs through everywhere but the Lambda handlers, whose
Powertools ``Logger`` writes JSON on its own).

pyworkflow-engine used loguru; its loggers' habits carry over: ``get_logger().bind(run_id=...)``
returns a logger whose records carry that context, keyword arguments of a log call are context
too, and positional ones fill ``{}`` in the message. The context is on each record as
``record.pyworkflow_context`` and printed after the message (or as fields of the JSON line).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CONTEXT_ATTR = "pyworkflow_context"
_CONTEXT_KEYS = ("run_id", "step_id", "workflow_name", "step_name")


def _context(record: logging.LogRecord) -> dict[str, Any]:
    value = getattr(record, CONTEXT_ATTR, None)
    return dict(value) if isinstance(value, Mapping) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, function, line, message, extra."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "function": record.funcName,
            "line": record.lineno,
            "message": record.getMessage(),
            "extra": _context(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ContextFormatter(logging.Formatter):
    """Text lines, with the workflow context (``run_id=... workflow=...``) when there is one."""

    def __init__(self, show_context: bool = True) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d | %(levelname)-8s | %(name)s:%(funcName)s:%(lineno)d | "
            "%(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
        self.show_context = show_context

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context(record)
        parts = [f"{k}={context[k]}" for k in _CONTEXT_KEYS if k in context]
        return text + (" | " + " ".join(parts) if self.show_context and parts else "")


def configure_logging(
    level: str = "INFO",
    log_file: str | None = None,
    json_logs: bool = False,
    show_context: bool = True,
) -> None:
    """Send logging to stdout (and ``log_file`` if given) at ``level``, as text or JSON lines.

    Like pyworkflow-engine's, this configures the process's root logger, replacing its
    handlers: every library's logs then come out in one format."""
    formatter: logging.Formatter = (
        JsonFormatter() if json_logs else ContextFormatter(show_context=show_context)
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(handlers=handlers, level=level.upper(), force=True)
    logging.getLogger("pyworkflow").info("PyWorkflow logging configured at level %s", level)


_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class BoundLogger:
    """A standard logger with context bound to it (loguru's ``bind``)."""

    def __init__(self, logger: logging.Logger, context: Mapping[str, Any] | None = None) -> None:
        self.logger = logger
        self.context: dict[str, Any] = dict(context or {})

    def bind(self, **context: Any) -> BoundLogger:
        return BoundLogger(self.logger, {**self.context, **context})

    def log(self, level: int | str, message: Any, *args: Any, **kwargs: Any) -> None:
        levelno = logging.getLevelName(level.upper()) if isinstance(level, str) else level
        if not isinstance(levelno, int):
            levelno = logging.INFO
        if not self.logger.isEnabledFor(levelno):
            return
        exc_info = kwargs.pop("exc_info", None)
        text = str(message)
        if args or kwargs:
            try:  # loguru's formatting: "{}" placeholders
                text = text.format(*args, **kwargs)
            except (IndexError, KeyError, ValueError):
                text = " ".join([text, *map(str, args)])
        context = {**self.context, **kwargs}
        # the fields also as record attributes (record.run_id), as a LoggerAdapter gives them,
        # except names a LogRecord has already (logging refuses to overwrite those)
        fields = {k: v for k, v in context.items() if k not in _RECORD_ATTRS}
        self.logger.log(
            levelno,
            text,
            exc_info=exc_info,
            stacklevel=3,
            extra={**fields, CONTEXT_ATTR: context},
        )

    def debug(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, message, *args, **kwargs)

    def info(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, message, *args, **kwargs)

    def success(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, message, *args, **kwargs)  # loguru's SUCCESS; no such level here

    def warning(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, message, *args, **kwargs)

    def error(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, message, *args, **kwargs)

    def critical(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, message, *args, **kwargs)

    def exception(self, message: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self.log(logging.ERROR, message, *args, **kwargs)


def get_logger(name: str | None = None) -> BoundLogger:
    """A logger for ``name`` (``pyworkflow`` without one) that takes context:
    ``get_logger(__name__).bind(run_id=run_id).info("Step started")``."""
    logger = BoundLogger(logging.getLogger(name or "pyworkflow"))
    return logger.bind(module=name) if name else logger


def bind_workflow_context(run_id: str, workflow_name: str) -> BoundLogger:
    return get_logger().bind(run_id=run_id, workflow_name=workflow_name)


def bind_step_context(run_id: str, step_id: str, step_name: str) -> BoundLogger:
    return get_logger().bind(run_id=run_id, step_id=step_id, step_name=step_name)


__all__ = [
    "BoundLogger",
    "ContextFormatter",
    "JsonFormatter",
    "bind_step_context",
    "bind_workflow_context",
    "configure_logging",
    "get_logger",
]

"""Which instrumentation plugins the runtimes call: ``configure(instrumentation=[...])``, plus
OpenTelemetry's when tracing is on (``configure(tracing="otel")`` or ``PYWORKFLOW_OTEL=1``).

Resolved once (again after each ``configure()``), so an execution asks for the plugins with one
call and gets None when there are none: the engine then reports nothing and pays nothing.

Also the door of trace propagation for the transport: ``outgoing_trace()`` is what a wake-up
message carries (None unless a tracer is on), ``incoming_trace()`` makes a received one current
while the worker drives the run. The transport imports no tracer: the propagator is the first
plugin that can inject and attach a context (``OtelInstrumentation``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from pyworkflow.core.instrumentation import Instrumentation, Instruments
from pyworkflow.exceptions import ConfigurationError

TRACING_KINDS = frozenset({"otel"})


class Propagator(Protocol):
    def inject(self) -> dict[str, str] | None:
        """The current trace context as a carrier (W3C ``traceparent``), or None."""

    def attach(self, carrier: Mapping[str, Any]) -> contextlib.AbstractContextManager[None]:
        """Make ``carrier``'s context the current one inside the ``with``."""


class _State:
    plugins: tuple[Instrumentation, ...] = ()
    tracing: str | None = None
    resolved = False
    active: Instruments | None = None
    propagator: Any = None  # a Propagator
    tracer: Instrumentation | None = None


_state = _State()


def check_plugins(plugins: Any) -> tuple[Instrumentation, ...]:
    if plugins is None:
        return ()
    if isinstance(plugins, Instrumentation) or not isinstance(plugins, Iterable):
        plugins = [plugins]
    found = tuple(plugins)
    for plugin in found:
        if not callable(getattr(plugin, "run_started", None)):
            raise ConfigurationError(
                f"instrumentation takes plugins (pyworkflow.observability.Instrumentation "
                f"subclasses), got {plugin!r}"
            )
    return found


def check_tracing(kind: Any) -> str | None:
    if kind in (None, False, "", "none", "off"):
        return None
    if kind is True:
        return "otel"
    if kind not in TRACING_KINDS:
        raise ConfigurationError(f"tracing takes 'otel' or None, got {kind!r}")
    return str(kind)


def set_plugins(plugins: Any) -> None:
    _state.plugins = check_plugins(plugins)
    _state.resolved = False


def set_tracing(kind: Any) -> None:
    _state.tracing = check_tracing(kind)
    _state.resolved = False


def reset() -> None:
    """Back to no plugins; the environment is looked at again."""
    _state.plugins = ()
    _state.tracing = None
    _state.resolved = False
    _state.active = None
    _state.propagator = None


def active() -> Instruments | None:
    """The plugins to call, or None when there are none."""
    if not _state.resolved:
        _resolve()
    return _state.active


def _resolve() -> None:
    from pyworkflow.settings import get_settings

    plugins = list(_state.plugins)
    tracing = _state.tracing or ("otel" if get_settings().otel else None)
    if tracing == "otel":
        if _state.tracer is None:
            from pyworkflow.observability.otel import OtelInstrumentation

            _state.tracer = OtelInstrumentation()
        plugins.append(_state.tracer)
    _state.active = Instruments(plugins) if plugins else None
    # the first plugin that can carry a trace context through wake-ups (OpenTelemetry's)
    _state.propagator = next(
        (p for p in plugins if callable(getattr(p, "inject", None)) and hasattr(p, "attach")),
        None,
    )
    _state.resolved = True


def outgoing_trace() -> dict[str, str] | None:
    """The trace context a wake-up sent now carries (None when no tracer is on)."""
    if active() is None or _state.propagator is None:
        return None
    return _state.propagator.inject()  # type: ignore[no-any-return]


@contextlib.contextmanager
def incoming_trace(carrier: Mapping[str, Any] | None) -> Iterator[None]:
    """The trace context a received wake-up carried is the current one inside."""
    if not carrier or active() is None or _state.propagator is None:
        yield
        return
    with _state.propagator.attach(carrier):
        yield


__all__ = [
    "active",
    "incoming_trace",
    "outgoing_trace",
    "reset",
    "set_plugins",
    "set_tracing",
]

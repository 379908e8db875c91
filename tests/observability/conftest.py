"""OpenTelemetry tests: spans go to an ``InMemorySpanExporter`` through a provider of the test's
own (the global provider can be set once per process: the tests that need the global one share
``global_spans``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import pyworkflow
from pyworkflow.observability.otel import OtelInstrumentation


class Spans:
    def __init__(self, exporter: InMemorySpanExporter, provider: TracerProvider) -> None:
        self.exporter = exporter
        self.provider = provider

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, [s.name for s in self.all()]
        return found[0]


@pytest.fixture
def spans() -> Iterator[Spans]:
    """Tracing on, into memory, through a provider of this test's own."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    pyworkflow.configure(instrumentation=[OtelInstrumentation(tracer_provider=provider)])
    yield Spans(exporter, provider)
    provider.shutdown()


_GLOBAL = InMemorySpanExporter()


@pytest.fixture
def global_spans() -> Iterator[Spans]:
    """The process's global provider (what ADOT installs on Lambda), set once, into memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_GLOBAL))
        trace.set_tracer_provider(provider)
    _GLOBAL.clear()
    yield Spans(_GLOBAL, trace.get_tracer_provider())  # type: ignore[arg-type]
    _GLOBAL.clear()

"""OpenTelemetry set-up, chosen by the standard variables.

``OTEL_TRACES_EXPORTER`` = ``otlp`` (``OTEL_EXPORTER_OTLP_ENDPOINT``...), ``console`` or ``none``
(the default here). ``OTEL_SERVICE_NAME`` overrides the name. With ``none``, spans are not recorded
(a sampler that drops them: next to no cost), but each still has a real trace context, so every
message a command appends carries a W3C ``traceparent`` and a consumer can follow the chain.
Trace context crosses NATS in the message headers (W3C ``traceparent``); :func:`consumer_span`
continues it on the consuming side.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, SamplingResult

_configured = False


class _RecordWhenExporting(Sampler):
    """Record spans only while something exports them; otherwise give each span a real context and
    drop it (a sampled parent, from a traced client, is honoured either way)."""

    def __init__(self) -> None:
        self.exporting = False
        self._on = ParentBased(ALWAYS_ON)
        self._off = ParentBased(ALWAYS_OFF)

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return (self._on if self.exporting else self._off).should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "RecordWhenExporting"


_sampler = _RecordWhenExporting()


def setup_telemetry(service_name: str, *, processor: SpanProcessor | None = None) -> None:
    """Install a tracer provider once per process (a given processor wins over the variables);
    a processor given after that is added to the installed provider."""
    global _configured
    if _configured:
        provider = trace.get_tracer_provider()
        if processor is not None and isinstance(provider, TracerProvider):
            provider.add_span_processor(processor)  # a second exporter (tests) sees spans too
            _sampler.exporting = True
        return
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    _sampler.exporting = processor is not None or exporter_name not in ("", "none")
    provider = TracerProvider(resource=Resource.create({"service.name": name}), sampler=_sampler)
    if processor is not None:
        provider.add_span_processor(processor)
    elif exporter_name == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


@contextmanager
def consumer_span(name: str, headers: Mapping[str, str], **attributes: str) -> Iterator[trace.Span]:
    """A CONSUMER span whose parent is the trace carried in a message's headers."""
    ctx = propagate.extract(dict(headers))
    token = context.attach(ctx)
    try:
        tracer = trace.get_tracer("bay")
        with tracer.start_as_current_span(name, kind=trace.SpanKind.CONSUMER, attributes=attributes) as span:
            yield span
    finally:
        context.detach(token)

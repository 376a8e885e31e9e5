"""OpenTelemetry set-up, chosen by the standard variables.

``OTEL_TRACES_EXPORTER`` = ``otlp`` (``OTEL_EXPORTER_OTLP_ENDPOINT``...), ``console`` or ``none``
(the default here: no tracing overhead unless asked). ``OTEL_SERVICE_NAME`` overrides the name.
Trace context crosses NATS in the message headers (W3C ``traceparent``); :func:`consumer_span`
continues it on the consuming side.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

_configured = False


def setup_telemetry(service_name: str, *, processor: SpanProcessor | None = None) -> None:
    """Install a tracer provider once per process (a given processor wins over the variables);
    a processor given after that is added to the installed provider."""
    global _configured
    if _configured:
        provider = trace.get_tracer_provider()
        if processor is not None and isinstance(provider, TracerProvider):
            provider.add_span_processor(processor)  # a second exporter (tests) sees spans too
        return
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if processor is None and exporter_name in ("", "none"):
        return
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
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

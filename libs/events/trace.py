"""W3C trace context on the log's messages (the ``traceparent`` header).

A traced operation that appends puts its context in each message's headers; a reader that acts on an
event (a scheduler launching for a GroupScaled) continues that trace with :func:`continued`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context, propagate, trace

from libs.events import TRACEPARENT


def current_headers() -> dict[str, str]:
    """The current trace context as message headers (empty outside a trace)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    out: dict[str, str] = {}
    propagate.inject(out)
    return out


@contextmanager
def continued(name: str, traceparent: str, **attributes: str) -> Iterator[dict[str, str]]:
    """A span that continues the trace of ``traceparent`` (a new trace when empty); yields the
    headers that carry it on to the messages appended inside it."""
    ctx = propagate.extract({TRACEPARENT: traceparent}) if traceparent else context.get_current()
    tracer = trace.get_tracer("bay")
    with tracer.start_as_current_span(name, context=ctx, attributes=attributes):
        yield current_headers()

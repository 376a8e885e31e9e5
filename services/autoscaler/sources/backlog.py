"""The backlog of a JetStream consumer, for scaling workers on their queue.

Backlog = ``num_pending`` (messages the consumer has not been given yet) + ``num_ack_pending``
(given, not acknowledged: a worker is on them, or died holding them). A stream or consumer that is
not there, or a JetStream that does not answer, is *missing* data, never a backlog of 0: scaling a
group to zero because its queue was deleted, or because NATS was slow, would be a wrong decision
taken with confidence.

Waking at once from zero. A group scaled to zero has no worker; polling the backlog every N
seconds would leave the first message waiting up to N seconds before the group scales up.
:class:`StreamWake` watches the subjects the consumer reads (:func:`consumer_subjects`: its
``filter_subject``/``filter_subjects``, else the stream's ``subjects``) through an ephemeral push
consumer of the stream (deliver new, headers only, no acks, in memory, gone by itself after
``inactive_threshold`` if the autoscaler dies) delivering to an inbox. It sees what the stream
stores, sourced and mirrored messages included (a core-NATS subscription to the subjects would
not), and needs only the rights of a stream reader (``libs.natsperms.read_stream``: consumer
create, delete; ``_INBOX.>``). Use it in this order, so that a message stored in between is never
missed::

    wake = StreamWake(nc, stream, await consumer_subjects(js, stream, consumer))
    await wake.arm()                          # the consumer exists before the check
    backlog = await read_backlog(js, stream, consumer)
    if backlog.pending == 0:
        await wake.wait(poll_interval)        # returns at the first message, or at the interval
    await wake.disarm()                       # only while at zero: no copy of a busy queue's traffic
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

DEFAULT_TIMEOUT = 2.0

# Why a backlog is missing (Backlog.error)
MISSING_STREAM = "stream not found"
MISSING_CONSUMER = "consumer not found"
UNAVAILABLE = "JetStream did not answer"
_STREAM_NOT_FOUND = 10059  # JetStream's err_code for "stream not found"


@dataclass(frozen=True)
class Backlog:
    stream: str
    consumer: str
    pending: int | None  # num_pending + num_ack_pending; None: missing (see ``error``)
    error: str = ""

    @property
    def known(self) -> bool:
        return self.pending is not None


async def read_backlog(js: Any, stream: str, consumer: str, timeout: float = DEFAULT_TIMEOUT) -> Backlog:
    """The consumer's backlog from ``js.consumer_info`` (``js``: a nats-py JetStreamContext); never
    raises for a missing stream or consumer or a JetStream that does not answer (cancellation still
    propagates)."""
    try:
        info = await js.consumer_info(stream, consumer, timeout=timeout)
    except nats.js.errors.NotFoundError as exc:
        missing = MISSING_STREAM if exc.err_code == _STREAM_NOT_FOUND else MISSING_CONSUMER
        return Backlog(stream, consumer, None, missing)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError, TimeoutError) as exc:
        return Backlog(stream, consumer, None, f"{UNAVAILABLE}: {type(exc).__name__}")
    except (nats.js.errors.APIError, nats.errors.Error, ValueError) as exc:  # ValueError: a bad name
        return Backlog(stream, consumer, None, f"{type(exc).__name__}: {exc}")
    return Backlog(stream, consumer, int(info.num_pending or 0) + int(info.num_ack_pending or 0))


async def consumer_subjects(
    js: Any, stream: str, consumer: str, timeout: float = DEFAULT_TIMEOUT
) -> list[str]:
    """The subjects the consumer reads: its filter(s), else its stream's subjects. Raises nats-py's
    errors when either is missing (there is then nothing to watch)."""
    info = await js.consumer_info(stream, consumer, timeout=timeout)
    config = info.config
    filters = list(getattr(config, "filter_subjects", None) or [])
    if getattr(config, "filter_subject", None):
        filters.append(config.filter_subject)
    if filters:
        return filters
    stream_info = await js.stream_info(stream)
    return list(stream_info.config.subjects or [])


class StreamWake:
    """An event set by the first message ``stream`` stores on the ``watched`` subjects after
    :meth:`arm` (see the module's docstring). ``arm`` raises nats-py's errors when the stream is gone."""

    def __init__(
        self,
        nc: Any,
        stream: str,
        watched: Sequence[str],
        inactive_threshold: float = 30.0,
        on_wake: Callable[[], None] | None = None,
    ) -> None:
        """``on_wake``: called at each message (with ``woken`` set), for a caller that waits on
        many wakes at once."""
        if not watched:
            raise ValueError("StreamWake needs at least one subject to watch")
        self._nc = nc
        self._on_wake = on_wake
        self._js = nc.jetstream()
        self.stream = stream
        self.watched = tuple(watched)
        self._inactive = inactive_threshold
        self._sub: Any = None
        self._consumer = ""
        self.woken = asyncio.Event()

    @property
    def armed(self) -> bool:
        return self._sub is not None

    async def arm(self, timeout: float | None = None) -> None:
        """Clear the event; make the consumer if there is none (its deliveries start with the next
        message the stream stores after this returns); ``timeout``: of the request that makes it
        (default: the JetStream context's)."""
        self.woken.clear()
        if self._sub is not None:
            return

        async def on_message(msg: Any) -> None:
            self.woken.set()
            if self._on_wake is not None:
                self._on_wake()

        inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(inbox, cb=on_message)
        one = len(self.watched) == 1
        config = ConsumerConfig(
            deliver_subject=inbox,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.NONE,
            headers_only=True,
            mem_storage=True,
            inactive_threshold=self._inactive,
            filter_subject=self.watched[0] if one else None,
            filter_subjects=None if one else list(self.watched),
        )
        try:
            info = await self._js.add_consumer(self.stream, config, timeout=timeout)
        except BaseException:
            await self.disarm()
            raise
        self._consumer = info.name

    async def wait(self, timeout: float) -> bool:
        """True when the stream stored a watched message since :meth:`arm`; False after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self.woken.wait()
        except TimeoutError:
            return False
        return True

    async def disarm(self) -> None:
        """Unsubscribe and delete the consumer (if the delete fails, the server drops it after
        ``inactive_threshold`` without a subscriber)."""
        sub, self._sub = self._sub, None
        consumer, self._consumer = self._consumer, ""
        if sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        if consumer:
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
                await self._js.delete_consumer(self.stream, consumer)

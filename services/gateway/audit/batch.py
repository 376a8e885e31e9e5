"""One fetched delivery, planned: what is written already, what follows the cursor, what lies past a gap.

Pure apart from decoding the NATS message; the writer does the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bay.v1 import envelope_pb2
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg

from libs.eventlog.port import Record

log = logging.getLogger("bay.audit")

T = TypeVar("T")


@dataclass
class BatchPlan(Generic[T]):
    stale: list[T] = field(default_factory=list)  # at or below the cursor: ack only
    fresh: list[T] = field(default_factory=list)  # contiguous from the expected sequence: write, ack
    held: list[T] = field(default_factory=list)  # after a gap: neither written nor acked yet
    next_expected: int = 1


def plan_batch(expected: int, items: Sequence[T], seq: Callable[[T], int]) -> BatchPlan[T]:
    """Split a delivery into what is already written, what follows on, and what lies past a gap.

    ``expected`` is ``cursor + 1``, or further on when the events between are known not to exist.
    """
    plan: BatchPlan[T] = BatchPlan(next_expected=expected)
    for item in sorted(items, key=seq):
        s = seq(item)
        if plan.held:
            plan.held.append(item)
        elif s < plan.next_expected:  # written already, or a second copy within this delivery
            plan.stale.append(item)
        elif s == plan.next_expected:
            plan.fresh.append(item)
            plan.next_expected += 1
        else:
            plan.held.append(item)
    return plan


@dataclass(frozen=True)
class Delivery:
    msg: Msg
    record: Record


def decode(msg: Msg) -> Delivery:
    seq = msg.metadata.sequence.stream
    try:
        env = envelope_pb2.Envelope.FromString(msg.data)
    except DecodeError:
        # not an envelope: record that something was there rather than stall or skip silently
        log.error(
            "stream sequence %d on %s is not an event envelope; recorded as undecodable", seq, msg.subject
        )
        env = envelope_pb2.Envelope(event_id=f"undecodable:{seq}", type="Undecodable")
    return Delivery(msg, Record(seq, msg.subject, env, dict(msg.headers or {})))

"""The autoscaler's events <-> their protobuf form (``protos/bay/v1/autoscale.proto``).

The values carry their policy, decision and window state as the messages themselves (see the note
in ``libs.events.model``), so encoding and decoding only wrap and unwrap them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bay.v1 import autoscale_pb2
from google.protobuf import message

from libs.events import model as m


def autoscale_to_pb(event: m.EventData) -> message.Message | None:
    """The payload of an autoscaler event; None for any other event."""
    match event:
        case m.AutoscalePolicySet(policy):
            return autoscale_pb2.AutoscalePolicySet(policy=policy)
        case m.AutoscalePolicyRemoved(reason):
            return autoscale_pb2.AutoscalePolicyRemoved(reason=reason)
        case m.AutoscaleDecided(decision):
            return autoscale_pb2.AutoscaleDecided(decision=decision)
        case m.AutoscaleWindow(state):
            return autoscale_pb2.AutoscaleWindow(state=state)
    return None


AUTOSCALE_PAYLOADS: dict[type[message.Message], Callable[[Any, str, float], m.EventData]] = {
    autoscale_pb2.AutoscalePolicySet: lambda p, i, at: m.AutoscalePolicySet(p.policy),
    autoscale_pb2.AutoscalePolicyRemoved: lambda p, i, at: m.AutoscalePolicyRemoved(p.reason),
    autoscale_pb2.AutoscaleDecided: lambda p, i, at: m.AutoscaleDecided(p.decision),
    autoscale_pb2.AutoscaleWindow: lambda p, i, at: m.AutoscaleWindow(p.state),
}

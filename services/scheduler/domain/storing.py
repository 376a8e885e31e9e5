"""Which of a round's events are worth storing: placement failures only when they say something new."""

from __future__ import annotations

from collections.abc import Mapping

from libs.events import model as m
from services.scheduler.domain.reconcile import Decision


def worth_storing(
    decision: Decision,
    pending: Mapping[str, m.PlacementFailed],
    hosts: int,
    offer_based: bool,
    now: float,
) -> list[m.SchedulerEvent]:
    """The decision's events, minus placement failures that say nothing new; plus a count-0
    ``PlacementFailed`` for a group whose tasks all found a host again. On an offer-based backend,
    no offers in hand is not a failure: it is waiting for offers."""
    out: list[m.SchedulerEvent] = []
    failed = {f.group for f in decision.failures}
    for e in decision.events:
        if isinstance(e, m.PlacementFailed):
            if not hosts and offer_based:
                continue
            last = pending.get(e.group)
            if last and (last.count, dict(last.reasons), last.hosts) == (e.count, dict(e.reasons), e.hosts):
                continue
        out.append(e)
    for group, last in pending.items():
        if last.count and group not in failed and group not in decision.delayed:
            out.append(m.PlacementFailed(group, 0, {}, hosts, now))
    return out

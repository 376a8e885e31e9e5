"""What the tasks say, per spec version of a group: the deployer's only view of progress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from libs.events.model import TaskState
from libs.views.platform import PlatformView

_FAILED = frozenset({TaskState.FAILED, TaskState.ERROR, TaskState.LOST, TaskState.DROPPED})


@dataclass(frozen=True)
class VersionCount:
    alive: int = 0  # not ended (being killed counts: it still runs)
    ready: int = 0  # ready now
    settled: int = 0  # ready for min_ready_seconds
    failed: int = 0  # ended failed, or killed as unhealthy (since the deployment began)
    ended: int = 0  # ended without being asked to (since the deployment began): restarts
    next_settled_at: float | None = None  # when the next ready task will have been ready long enough
    settled_ids: frozenset[str] = frozenset()


NONE = VersionCount()


@dataclass
class _Acc:
    alive: int = 0
    ready: int = 0
    settled: int = 0
    failed: int = 0
    ended: int = 0
    next_at: float | None = None
    ids: set[str] = field(default_factory=set)


def count(
    view: PlatformView, group: str, min_ready_seconds: float, since: float, now: float
) -> dict[int, VersionCount]:
    """Per version of ``group``'s tasks; ``since``: ended tasks count from then (the deployment's
    start)."""
    acc: dict[int, _Acc] = {}
    for t in view.group_tasks(group):
        c = acc.setdefault(t.group_version, _Acc())
        if t.terminal:
            if t.updated_at >= since:
                if t.state in _FAILED or t.kill_reason == "unhealthy":
                    c.failed += 1
                if not t.kill_reason or t.kill_reason == "unhealthy":
                    c.ended += 1
            continue
        c.alive += 1
        ready_since = view.ready_since(t)
        if ready_since is None:
            continue
        c.ready += 1
        at = ready_since + min_ready_seconds
        if at <= now:
            c.settled += 1
            c.ids.add(t.id)
        elif c.next_at is None or at < c.next_at:
            c.next_at = at
    return {
        v: VersionCount(c.alive, c.ready, c.settled, c.failed, c.ended, c.next_at, frozenset(c.ids))
        for v, c in acc.items()
    }


def of(counts: Mapping[int, VersionCount], version: int) -> VersionCount:
    return counts.get(version, NONE)

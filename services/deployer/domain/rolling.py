"""A rolling move, Marathon's way: the one rule behind a rolling deployment, a canary's promotion
and every rollback (a rolling move back to the stable version).

Towards [goal: n]: new tasks start up to ``max_running`` (old targets and old tasks still running
both count, so a relaunched old task cannot push past it); old targets shrink, oldest version first,
one for each goal task that settled, or (no surge: no room for the goal's tasks) to make room; never
leaving fewer than ``min_ready`` ready in the worst case, that the scheduler stops ready old tasks
first. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libs.views.groups import Group
from services.deployer.domain.bounds import Bounds
from services.deployer.domain.counts import VersionCount, of


@dataclass(frozen=True)
class Target:
    """One version's target as the deployer asks the registry for it (SetRollout)."""

    version: int
    instances: int
    in_service: bool = True
    weight: float | None = None


def alive_besides(counts: Mapping[int, VersionCount], version: int) -> int:
    """Tasks of other versions still running (targeted or not: being stopped counts)."""
    return sum(c.alive for v, c in counts.items() if v != version)


def roll(
    n: int, goal: int, g: Group, counts: Mapping[int, VersionCount], b: Bounds
) -> tuple[tuple[Target, ...], bool]:
    """One rolling move towards [goal: n] (see the module); (targets, whether it is there)."""
    cur = g.target(goal)
    m_cur = cur.instances if cur is not None else 0
    olds = sorted((t for t in g.targets if t.version != goal), key=lambda t: t.version)
    k_total = sum(t.instances for t in olds)
    alive_old = alive_besides(counts, goal)
    ready_old = sum(of(counts, t.version).ready for t in olds)
    settled = of(counts, goal).settled
    room = b.max_running - max(alive_old, k_total)
    m_now = min(n, max(m_cur, room))
    # stop old ones: one for each new that settled, or (no room for the new ones) to make room;
    # never below min_ready ready, counting the worst case: the scheduler stops ready ones first
    ready_kept = min(ready_old, k_total)
    can_stop = k_total if settled >= b.min_ready else max(0, ready_kept + settled - b.min_ready)
    for_replacement = k_total - max(0, n - settled)
    for_room = n - m_now if m_now < n else 0
    stop = max(0, min(k_total, can_stop, max(for_replacement, for_room)))
    targets: list[Target] = []
    for t in olds:
        cut = min(stop, t.instances)
        stop -= cut
        keep = t.instances - cut
        if keep > 0:
            targets.append(Target(t.version, keep, t.in_service, None))
        else:
            targets.append(Target(t.version, 0, False, None))
    targets.append(Target(goal, m_now, True, None))
    there = m_now >= n and all(t.instances == 0 for t in targets if t.version != goal) and settled >= n
    if there or (n == 0 and all(t.instances == 0 for t in targets if t.version != goal)):
        # done once the old tasks have ended too: then nothing but the goal runs
        return (Target(goal, n, True, None),), alive_old == 0
    return tuple(targets), False

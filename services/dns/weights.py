"""SRV weights: how one answer's total weight is shared among its tasks. Pure arithmetic.

An answer's tasks come in pools: the ready tasks of one version target of one group. The total is
split first among the groups by their shares of the service (``Group.share``: the ``bay.dns/weight``
label, else the instance count), then within a group among its targets: a target with a ``weight``
(percent of the group's traffic, the deployer's canary step) gets that share, targets without one split
what is left by task count; a pool's part is spread evenly over its tasks. Only pools with ready tasks
take part, so the share of a target (or group) with none goes to the others: an answer is never empty
while a task is ready.

Integers come by the largest remainder, so the weights add up to the total exactly, then every task
gets at least 1 (a task answered with weight 0 would get no traffic from most clients) except where
its group's share is 0 on purpose (a dark group). With few replicas this keeps the split honest: 1
stable + 1 canary at 10% is 9000/1000, 3 + 1 at 33% is 2234/2233/2233/3300.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

WEIGHT_TOTAL = 10_000  # SRV weights of one answer add up to about this
MAX_WEIGHT = 65_535  # an SRV weight is 16 bits


class Pool(NamedTuple):
    """The ready tasks of one version target of one group, as the weighing sees them."""

    group: str
    share: float  # the group's part of its service
    weight: float | None  # the target's percent of its group's traffic; None: by task count
    tasks: int


def exact(pools: Sequence[Pool], total: float = WEIGHT_TOTAL) -> list[float]:
    """Each pool's weight per task, before rounding (0 for a pool without tasks)."""
    present = [p for p in pools if p.tasks > 0]
    shares: dict[str, float] = {}
    for p in present:
        shares[p.group] = max(p.share, 0.0)
    share_sum = sum(shares.values())
    per_group: dict[str, list[Pool]] = {}
    for p in present:
        per_group.setdefault(p.group, []).append(p)
    out: dict[int, float] = {}
    for name, members in per_group.items():
        group_part = shares[name] / share_sum if share_sum > 0 else 1.0 / len(per_group)
        for p, part in zip(members, _within(members), strict=True):
            out[id(p)] = total * group_part * part / p.tasks
    return [out.get(id(p), 0.0) for p in pools]


def _within(pools: list[Pool]) -> list[float]:
    """The parts of a group's traffic its (present) pools get, adding up to 1 where any can."""
    weighted = sum(max(p.weight, 0.0) for p in pools if p.weight is not None) / 100
    rest = max(0.0, 1.0 - weighted)
    by_count = sum(p.tasks for p in pools if p.weight is None)
    parts = [max(p.weight, 0.0) / 100 if p.weight is not None else rest * p.tasks / by_count for p in pools]
    whole = sum(parts)
    return [part / whole for part in parts] if whole > 0 else parts


def per_task(pools: Sequence[Pool], total: int = WEIGHT_TOTAL) -> list[list[int]]:
    """The SRV weight of every task, pool by pool (a list of ``pool.tasks`` weights each)."""
    each = exact(pools, total)
    floors: list[list[int]] = []
    remainders: list[tuple[float, int, int]] = []  # (-remainder, pool, task): the largest first
    for i, (p, x) in enumerate(zip(pools, each, strict=True)):
        n = max(p.tasks, 0)
        floors.append([math.floor(x)] * n)
        remainders += [(-(x - math.floor(x)), i, j) for j in range(n)]
    wanted = round(sum(x * max(p.tasks, 0) for p, x in zip(pools, each, strict=True)))
    missing = wanted - sum(map(sum, floors))
    for _, i, j in sorted(remainders)[: max(missing, 0)]:
        floors[i][j] += 1
    out = []
    for p, weights in zip(pools, floors, strict=True):
        least = 0 if p.share <= 0 or p.weight == 0 else 1
        out.append([min(MAX_WEIGHT, max(least, w)) for w in weights])
    return out

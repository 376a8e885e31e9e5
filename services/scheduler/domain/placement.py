"""Placement: which hosts take a group's pending tasks, by resources and Marathon's constraints.

Constraints name a host label or ``hostname``: ``==``, ``!=``, ``LIKE`` and ``UNLIKE`` (full-match
regular expressions) look at one host; ``UNIQUE``, ``MAX_PER n`` and ``GROUP_BY [n]`` also count the
group's tasks already placed per value. A host without the label fails every operator except ``!=``
and ``UNLIKE`` (as in Marathon). ``GROUP_BY`` follows Marathon's rule: a host is accepted if its
value holds none of the group's tasks yet, or if at least ``n`` values are in use and its value
holds the fewest tasks; among acceptable values the emptiest is tried first, so tasks spread evenly.

Speed: checks that depend only on the host are evaluated once per group; a host that fails on
resources, ``UNIQUE`` or ``MAX_PER`` cannot pass again within one call (resources only shrink and
counts only grow), so it is dropped from the group's candidates; ``GROUP_BY`` picks a bucket of
hosts by value instead of scanning all. A call is then about O(tasks + hosts x checks).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from libs.spec import Constraint, GroupSpec
from services.scheduler.ports import Host

HOSTNAME = "hostname"
EPS = 1e-9  # float resources: ten tasks of 0.1 cpus must fit in 1.0
STATIC_OPS = frozenset({"==", "!=", "LIKE", "UNLIKE"})


@dataclass(frozen=True, slots=True)
class Site:
    """Where one of the group's tasks already runs (for UNIQUE, MAX_PER, GROUP_BY)."""

    hostname: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Placed:
    host_id: str
    hostname: str
    offer_id: str | None
    labels: Mapping[str, str]
    ports: Mapping[str, int]  # port name -> host port


@dataclass(frozen=True, slots=True)
class GroupPlacement:
    placed: tuple[Placed, ...]
    unplaced: int
    reasons: Mapping[str, int]  # check ("cpus", "constraint zone==eu", ...) -> hosts failing it
    hosts: int  # hosts considered


def field_value(name: str, hostname: str, labels: Mapping[str, str]) -> str | None:
    return hostname if name == HOSTNAME else labels.get(name)


def constraint_key(c: Constraint) -> str:
    """How a constraint is named in a placement failure's reasons."""
    if c.op in ("==", "!="):
        return f"constraint {c.field}{c.op}{c.value}"
    return f"constraint {c.field} {c.op} {c.value}".rstrip()


def static_ok(c: Constraint, value: str | None) -> bool:
    if c.op == "==":
        return value == c.value
    if c.op == "!=":
        return value != c.value
    if c.op == "LIKE":
        return value is not None and re.fullmatch(c.value, value) is not None
    if c.op == "UNLIKE":
        return value is None or re.fullmatch(c.value, value) is None
    raise ValueError(f"not a static constraint: {c.op}")


def dynamic_ok(c: Constraint, value: str | None, counts: Counter[str]) -> bool:
    """UNIQUE / MAX_PER / GROUP_BY against the group's current counts for ``c.field``."""
    if value is None:
        return False
    if c.op == "UNIQUE":
        return counts[value] == 0
    if c.op == "MAX_PER":
        return counts[value] < int(c.value)
    if c.op == "GROUP_BY":
        return group_by_accepts(value, counts, int(c.value or 0))
    raise ValueError(f"not a dynamic constraint: {c.op}")


def group_by_accepts(value: str, counts: Counter[str], minimum: int) -> bool:
    """Marathon's GROUP_BY: a new value, or the least used one once ``minimum`` values are in use."""
    n = counts[value]
    if n == 0:
        return True
    used = [k for k in counts.values() if k > 0]
    return len(used) >= minimum and n == min(used)


class _Slot:
    """A host's remaining capacity while one decision is being made (mutable, local to a Pool)."""

    __slots__ = ("cpus", "disk", "host", "mem", "nports", "ranges")

    def __init__(self, host: Host) -> None:
        self.host = host
        self.cpus, self.mem, self.disk = host.cpus, host.mem, host.disk
        self.ranges = sorted([r.begin, r.end] for r in host.ports if r.end >= r.begin)
        self.nports = sum(e - b + 1 for b, e in self.ranges)

    def port_free(self, port: int) -> bool:
        return any(b <= port <= e for b, e in self.ranges)

    def ports_fit(self, fixed: Sequence[int], dynamic: int) -> bool:
        if len(set(fixed)) != len(fixed) or not all(self.port_free(p) for p in fixed):
            return False
        return self.nports - len(fixed) >= dynamic

    def take_port(self, port: int) -> None:
        for i, (b, e) in enumerate(self.ranges):
            if b <= port <= e:
                parts = [[b, port - 1], [port + 1, e]]
                self.ranges[i : i + 1] = [p for p in parts if p[1] >= p[0]]
                self.nports -= 1
                return
        raise ValueError(f"port {port} is not free on {self.host.hostname}")

    def take_any_port(self) -> int:
        port = self.ranges[0][0]
        self.take_port(port)
        return port


class Pool:
    """The hosts of one decision: placing tasks uses their resources up, across groups."""

    def __init__(self, hosts: Sequence[Host]) -> None:
        self._slots = [_Slot(h) for h in hosts]

    def place(self, spec: GroupSpec, count: int, existing: Iterable[Site] = ()) -> GroupPlacement:
        """Place up to ``count`` tasks of ``spec``; ``existing`` are the group's live tasks."""
        if count <= 0:
            return GroupPlacement((), 0, {}, len(self._slots))
        static = [c for c in spec.constraints if c.op in STATIC_OPS]
        dynamic = [c for c in spec.constraints if c.op not in STATIC_OPS]
        counts: dict[str, Counter[str]] = {c.field: Counter() for c in dynamic}
        for site in existing:
            for name, ctr in counts.items():
                v = field_value(name, site.hostname, site.labels)
                if v is not None:
                    ctr[v] += 1
        res = spec.resources
        fixed = [p.host_port for p in spec.ports if p.host_port]
        ndyn = sum(1 for p in spec.ports if not p.host_port)
        group_by = next((c for c in dynamic if c.op == "GROUP_BY"), None)
        others = [c for c in dynamic if c is not group_by]

        def fits(s: _Slot) -> bool:
            return (
                s.cpus + EPS >= res.cpus
                and s.mem + EPS >= res.mem
                and s.disk + EPS >= res.disk
                and s.ports_fit(fixed, ndyn)
            )

        buckets: dict[str | None, list[_Slot]] = {}
        for s in self._slots:
            h = s.host
            if not all(static_ok(c, field_value(c.field, h.hostname, h.labels)) for c in static):
                continue
            if any(field_value(c.field, h.hostname, h.labels) is None for c in dynamic):
                continue
            key = field_value(group_by.field, h.hostname, h.labels) if group_by else None
            buckets.setdefault(key, []).append(s)
        cursors: dict[str | None, int] = dict.fromkeys(buckets, 0)

        placed: list[Placed] = []
        for done in range(count):
            if group_by is None:
                order: Sequence[str | None] = [None] if None in buckets else []
            else:
                ctr = counts[group_by.field]
                minimum = int(group_by.value or 0)
                values: list[str] = [
                    v for v in buckets if v is not None and group_by_accepts(v, ctr, minimum)
                ]
                values.sort(key=lambda v: (ctr[v], v))
                order = values
            slot = None
            for key in order:
                slot = self._pick(buckets[key], cursors, key, fits, others, counts)
                if slot is not None:
                    break
            if slot is None:
                return GroupPlacement(
                    tuple(placed), count - done, self._reasons(spec, counts, fixed, ndyn), len(self._slots)
                )
            placed.append(self._take(slot, spec, fixed))
            h = slot.host
            for name, ctr in counts.items():
                ctr[field_value(name, h.hostname, h.labels) or ""] += 1
        return GroupPlacement(tuple(placed), 0, {}, len(self._slots))

    @staticmethod
    def _pick(
        bucket: list[_Slot],
        cursors: dict[str | None, int],
        key: str | None,
        fits: Callable[[_Slot], bool],
        others: list[Constraint],
        counts: dict[str, Counter[str]],
    ) -> _Slot | None:
        """The next host of a bucket that takes the task, round robin (spreads tasks); drops hosts
        that can no longer take any task of this group."""
        i, tried = cursors[key], 0
        while bucket and tried < len(bucket):
            i %= len(bucket)
            s = bucket[i]
            h = s.host
            if not fits(s) or any(
                c.op != "GROUP_BY"
                and not dynamic_ok(c, field_value(c.field, h.hostname, h.labels), counts[c.field])
                for c in others
            ):
                bucket.pop(i)  # permanent within this call: resources shrink, counts grow
                continue
            if all(
                dynamic_ok(c, field_value(c.field, h.hostname, h.labels), counts[c.field])
                for c in others
                if c.op == "GROUP_BY"
            ):
                cursors[key] = i + 1
                return s
            i += 1
            tried += 1
        cursors[key] = i
        return None

    @staticmethod
    def _take(s: _Slot, spec: GroupSpec, fixed: Sequence[int]) -> Placed:
        res = spec.resources
        s.cpus -= res.cpus
        s.mem -= res.mem
        s.disk -= res.disk
        for p in fixed:
            s.take_port(p)
        ports = {p.name: p.host_port or 0 for p in spec.ports}
        for name, port in ports.items():
            if port == 0:
                ports[name] = s.take_any_port()
        h = s.host
        return Placed(h.host_id, h.hostname, h.offer_id, h.labels, ports)

    def _reasons(
        self, spec: GroupSpec, counts: dict[str, Counter[str]], fixed: Sequence[int], ndyn: int
    ) -> dict[str, int]:
        """For every check, how many hosts fail it now (a host counts under each check it fails)."""
        out: Counter[str] = Counter()
        res = spec.resources
        for s in self._slots:
            h = s.host
            if s.cpus + EPS < res.cpus:
                out["cpus"] += 1
            if s.mem + EPS < res.mem:
                out["mem"] += 1
            if s.disk + EPS < res.disk:
                out["disk"] += 1
            if not s.ports_fit(fixed, ndyn):
                out["ports"] += 1
            for c in spec.constraints:
                v = field_value(c.field, h.hostname, h.labels)
                ok = static_ok(c, v) if c.op in STATIC_OPS else dynamic_ok(c, v, counts[c.field])
                if not ok:
                    out[constraint_key(c)] += 1
        return dict(out)


def place(
    spec: GroupSpec, count: int, hosts: Sequence[Host], existing: Iterable[Site] = ()
) -> GroupPlacement:
    """Place one group's tasks on fresh hosts (see :class:`Pool` to place several groups)."""
    return Pool(hosts).place(spec, count, existing)

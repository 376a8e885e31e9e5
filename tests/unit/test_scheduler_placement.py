"""Placement: resources, ports, constraints, reasons, and speed (plus seeded property checks)."""

from __future__ import annotations

import random
import re
import time
from collections import Counter, defaultdict
from typing import Any

import pytest

from libs.spec import GroupSpec, validate_spec
from services.scheduler.domain.placement import EPS, Pool, Site, place
from services.scheduler.ports import Host, PortRange


def spec(**kw: Any) -> GroupSpec:
    return validate_spec({"name": "web", "cmd": "run", **kw})


def host(
    i: int, cpus: float = 4, mem: float = 4096, ports: tuple[int, int] = (31000, 31009), **labels: str
) -> Host:
    return Host(f"a{i}", f"host{i}", labels, cpus, mem, 1000, (PortRange(*ports),))


def test_resources_are_used_up_within_one_call() -> None:
    r = place(spec(resources={"cpus": 1, "mem": 100}), 10, [host(0), host(1)])
    assert len(r.placed) == 8 and r.unplaced == 2
    assert Counter(p.host_id for p in r.placed) == {"a0": 4, "a1": 4}
    assert r.reasons == {"cpus": 2} and r.hosts == 2


def test_tenths_of_a_cpu_fill_a_host_exactly() -> None:
    assert len(place(spec(resources={"cpus": 0.1, "mem": 1}), 10, [host(0, cpus=1)]).placed) == 10


def test_pool_shares_capacity_across_groups() -> None:
    pool = Pool([host(0, cpus=2)])
    assert len(pool.place(spec(resources={"cpus": 1}), 1).placed) == 1
    other = pool.place(validate_spec({"name": "db", "cmd": "x", "resources": {"cpus": 1.5}}), 1)
    assert other.unplaced == 1 and other.reasons == {"cpus": 1}


def test_dynamic_and_fixed_ports() -> None:
    s = spec(ports=[{"name": "http"}, {"name": "admin", "host_port": 31003}])
    r = place(s, 3, [host(0, ports=(31000, 31004))])
    assert r.placed[0].ports == {"http": 31000, "admin": 31003}
    assert r.unplaced == 2 and r.reasons == {"ports": 1}  # fixed port taken after the first
    r = place(spec(ports=[{"name": "a"}, {"name": "b"}]), 5, [host(0, ports=(31000, 31004))])
    assert [sorted(p.ports.values()) for p in r.placed] == [[31000, 31001], [31002, 31003]]
    assert place(spec(ports=[{"name": "a", "host_port": 80}]), 1, [host(0)]).reasons == {"ports": 1}


def test_equality_like_unlike_and_missing_labels() -> None:
    hosts = [host(0, zone="eu"), host(1, zone="us"), host(2, zone="eu-west"), host(3)]
    ids = lambda s: {p.host_id for p in place(s, 8, hosts).placed}  # noqa: E731
    assert ids(spec(constraints=[["zone", "==", "eu"]])) == {"a0"}
    assert ids(spec(constraints=[["zone", "!=", "eu"]])) == {"a1", "a2", "a3"}
    assert ids(spec(constraints=[["zone", "LIKE", "eu.*"]])) == {"a0", "a2"}
    assert ids(spec(constraints=[["zone", "LIKE", "eu"]])) == {"a0"}  # full match, not search
    assert ids(spec(constraints=[["zone", "UNLIKE", "eu.*"]])) == {"a1", "a3"}
    assert ids(spec(constraints=[["hostname", "==", "host1"]])) == {"a1"}


def test_a_label_no_host_has_gives_the_reason() -> None:
    r = place(spec(constraints=[["zone", "==", "mars"]]), 3, [host(i, zone="eu") for i in range(10)])
    assert r.placed == () and r.unplaced == 3
    assert r.reasons == {"constraint zone==mars": 10} and r.hosts == 10


def test_unique_hostname_counts_existing_tasks() -> None:
    hosts = [host(i) for i in range(5)]
    existing = [Site("host0", {}), Site("host3", {})]
    r = place(spec(constraints=[["hostname", "UNIQUE"]]), 5, hosts, existing)
    assert sorted(p.hostname for p in r.placed) == ["host1", "host2", "host4"]
    assert r.unplaced == 2 and r.reasons == {"constraint hostname UNIQUE": 5}


def test_max_per_zone() -> None:
    hosts = [host(i, zone="abc"[i % 3]) for i in range(9)]
    r = place(spec(constraints=[["zone", "MAX_PER", "2"]]), 10, hosts, [Site("x", {"zone": "a"})])
    assert Counter(p.labels["zone"] for p in r.placed) == {"a": 1, "b": 2, "c": 2}
    assert r.unplaced == 5 and r.reasons == {"constraint zone MAX_PER 2": 9}


def test_group_by_spreads_evenly() -> None:
    hosts = [host(i, zone="abc"[i % 3]) for i in range(9)]
    existing = [Site("x", {"zone": "a"})] * 3
    r = place(spec(constraints=[["zone", "GROUP_BY"]]), 9, hosts, existing)
    zones = Counter(p.labels["zone"] for p in r.placed)
    assert zones == {"a": 1, "b": 4, "c": 4}  # 4/4/4 in the end


def test_group_by_with_minimum_waits_for_enough_values() -> None:
    # Marathon: with GROUP_BY 3, a value is not used twice before 3 values are in use.
    hosts = [host(i, zone="ab"[i % 2]) for i in range(4)]
    r = place(spec(constraints=[["zone", "GROUP_BY", "3"]]), 4, hosts)
    assert len(r.placed) == 2 and r.unplaced == 2
    assert r.reasons == {"constraint zone GROUP_BY 3": 4}


def check_invariants(s: GroupSpec, hosts: list[Host], existing: list[Site], placed: list[Any]) -> None:
    by_host = {h.host_id: h for h in hosts}
    used: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    ports: dict[str, list[int]] = defaultdict(list)
    for p in placed:
        used[p.host_id][0] += s.resources.cpus
        used[p.host_id][1] += s.resources.mem
        ports[p.host_id].extend(p.ports.values())
        assert set(p.ports) == {x.name for x in s.ports}
    for hid, (cpus, mem) in used.items():
        h = by_host[hid]
        assert cpus <= h.cpus + 1e-6 and mem <= h.mem + 1e-6
        assert len(ports[hid]) == len(set(ports[hid])), "a port used twice on a host"
        assert all(any(r.begin <= x <= r.end for r in h.ports) for x in ports[hid])
    sites = existing + [Site(p.hostname, p.labels) for p in placed]
    for c in s.constraints:
        values = [(x.hostname if c.field == "hostname" else x.labels.get(c.field)) for x in sites]
        new_values = values[len(existing) :]
        counts = Counter(v for v in values if v is not None)
        if c.op == "==":
            assert all(v == c.value for v in new_values)
        elif c.op == "!=":
            assert all(v != c.value for v in new_values)
        elif c.op == "LIKE":
            assert all(v is not None and re.fullmatch(c.value, v) for v in new_values)
        elif c.op == "UNLIKE":
            assert all(v is None or not re.fullmatch(c.value, v) for v in new_values)
        elif c.op == "UNIQUE":
            assert all(counts[v] == 1 for v in new_values if v is not None)
            assert None not in new_values
        elif c.op == "MAX_PER":
            before = Counter(v for v in values[: len(existing)] if v is not None)
            assert all(v is not None and counts[v] <= max(int(c.value), before[v]) for v in new_values)


@pytest.mark.parametrize("seed", range(200))
def test_property_constraints_hold_and_nothing_is_overcommitted(seed: int) -> None:
    rnd = random.Random(seed)
    zones, racks = ["a", "b", "c", "d"][: rnd.randint(1, 4)], ["r1", "r2", "r3"]
    hosts = []
    for i in range(rnd.randint(0, 12)):
        labels = {"zone": rnd.choice(zones)}
        if rnd.random() < 0.8:
            labels["rack"] = rnd.choice(racks)
        begin = 31000 + rnd.randint(0, 5)
        hosts.append(host(i, cpus=rnd.choice([0.5, 1, 2, 4]), mem=rnd.choice([256, 1024]),
                          ports=(begin, begin + rnd.randint(0, 6)), **labels))  # fmt: skip
    pool = [
        ["zone", "==", rnd.choice(zones)], ["zone", "!=", "a"], ["zone", "LIKE", "[ab]"],
        ["zone", "UNLIKE", "c"], ["hostname", "UNIQUE"], ["rack", "UNIQUE"],
        ["zone", "MAX_PER", str(rnd.randint(1, 3))], ["zone", "GROUP_BY"], ["rack", "GROUP_BY", "2"],
    ]  # fmt: skip
    constraints = rnd.sample(pool, rnd.randint(0, 3))
    ports: list[dict[str, Any]] = [{"name": f"p{j}"} for j in range(rnd.randint(0, 2))]
    if rnd.random() < 0.3:
        ports.append({"name": "fixed", "host_port": 31006})
    s = spec(resources={"cpus": rnd.choice([0.1, 0.25, 0.5, 1]), "mem": rnd.choice([32, 128])},
             ports=ports, constraints=constraints)  # fmt: skip
    existing = [
        Site(f"host{rnd.randint(0, 11)}", {"zone": rnd.choice(zones)}) for _ in range(rnd.randint(0, 3))
    ]
    count = rnd.randint(0, 30)
    r = place(s, count, hosts, existing)
    assert len(r.placed) + r.unplaced == count
    assert (r.unplaced > 0) == bool(r.reasons) or not hosts
    check_invariants(s, hosts, existing, list(r.placed))
    if r.unplaced and hosts:
        assert all(0 < n <= len(hosts) for n in r.reasons.values())


@pytest.mark.parametrize("seed", range(20))
def test_property_group_by_is_even_with_ample_capacity(seed: int) -> None:
    rnd = random.Random(seed)
    zones = "abcde"[: rnd.randint(2, 5)]
    hosts = [host(i, cpus=100, mem=100000, ports=(1000, 2000), zone=zones[i % len(zones)]) for i in range(20)]
    r = place(spec(constraints=[["zone", "GROUP_BY"]]), rnd.randint(1, 60), hosts)
    counts = Counter(p.labels["zone"] for p in r.placed)
    assert r.unplaced == 0
    assert max(counts.values()) - min(counts.get(z, 0) for z in zones) <= 1


def test_5000_tasks_on_250_hosts_is_fast() -> None:
    hosts = [host(i, cpus=32, mem=65536, ports=(31000, 31999), zone=f"z{i % 5}") for i in range(250)]
    s = spec(resources={"cpus": 0.5, "mem": 256}, ports=[{"name": "http"}],
             constraints=[["zone", "GROUP_BY"], ["hostname", "MAX_PER", "30"]])  # fmt: skip
    start = time.perf_counter()
    r = place(s, 5000, hosts)
    took = time.perf_counter() - start
    print(f"placed {len(r.placed)} tasks on 250 hosts in {took * 1000:.0f} ms")
    assert len(r.placed) == 5000 and took < 2.0
    assert max(Counter(p.host_id for p in r.placed).values()) <= 30
    start = time.perf_counter()
    r = place(spec(resources={"cpus": 1, "mem": 256}), 10000, hosts)  # 8,000 fit, then the reason
    took = time.perf_counter() - start
    print(f"8000 placed + 2000 unplaced in {took * 1000:.0f} ms")
    assert (len(r.placed), r.unplaced, r.reasons) == (8000, 2000, {"cpus": 250}) and took < 2.0


def test_eps_is_small() -> None:
    assert EPS < 1e-6

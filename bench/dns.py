"""DNS benchmarks: Bay DNS against dnsmasq serving the same records, on this machine, in one run.

Both servers answer the same names with the same records: the tasks' events are appended to a fresh
event log (Bay DNS folds them), and the same records go to a hosts file (and ``srv-host`` lines) for
dnsmasq; answers are compared on a sample before anything is measured. ``dnsperf`` sends the same
query file to each, in rounds interleaved across the servers so that other load on the machine falls
on all of them alike:

- saturated runs (``-q 100`` outstanding, no per-query output), median of REPEATS: queries per
  second, mean latency, and the server's CPU per query (the sturdier figure when the client, which
  shares the cores, is the limit);
- one saturated run with ``-v``: its p99 (at saturation latency is queueing: shown, not judged);
- runs at one fixed offered load (``-Q``), the same for every server: p50/p99 from ``-v``.

``dns``: 100 services x 3 tasks, A queries, then A+SRV. ``dns-10k``: 10,000 services against 100, both
up at once. ``dns-freshness``: from just before a task event is appended to the first UDP answer that
shows it (a task killed, or one launched).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype

from bench.dns_fleet import (
    TTL,
    BayDns,
    Dnsmasq,
    Fleet,
    Seeder,
    check_answers,
    kill_event,
    launch_events,
    wait_answering,
)
from bench.infra import NatsServer
from bench.report import Result, latency_figures

RUN_SECONDS = 3.0
LATENCY_SECONDS = 5.0
WARMUP_SECONDS = 1.0
REPEATS = 5  # saturated runs per server; the median is reported
LATENCY_REPEATS = 3  # runs at the fixed load; the one with the median p99 is reported
CLIENTS = 8  # dnsperf sockets: SO_REUSEPORT spreads by source port, so one socket would feed one worker
FIXED_QPS = 20_000
NOISE = 0.03  # what 'queries/s must not drop' allows for run-to-run noise
P99_TARGET_MS = 1.0
FRESH_TARGET_MS = 100.0
# ---- dnsperf -------------------------------------------------------------------------------------


@dataclass
class PerfRun:
    qps: float
    avg_ms: float
    completed_pct: float
    codes: str
    latencies: list[float]  # seconds, one per answered query (-v only)
    reply_bytes: int  # mean
    cpu_seconds: float = 0.0
    qps_spread: tuple[float, float] = (0.0, 0.0)  # lowest and highest of the repeated runs


_QPS = re.compile(r"Queries per second:\s+([\d.]+)")
_AVG = re.compile(r"Average Latency \(s\):\s+([\d.]+)")
_DONE = re.compile(r"Queries completed:\s+\d+ \(([\d.]+)%\)")
_CODES = re.compile(r"Response codes:[ \t]*(.*)")
_SIZE = re.compile(r"Average packet size:\s+request (\d+), response (\d+)")


async def dnsperf(
    port: int, queries: Path, seconds: float, *, qps: int = 0, verbose: bool = False
) -> PerfRun:
    args = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", f"{seconds:g}"]
    args += ["-c", str(CLIENTS)]
    if qps:
        args += ["-Q", str(qps)]
    if verbose:
        args.append("-v")
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    found = [r.search(text) for r in (_QPS, _AVG, _DONE, _CODES)]
    if proc.returncode != 0 or not all(found):
        raise RuntimeError(f"dnsperf {' '.join(args)} exited {proc.returncode}:\n{text[-2000:]}")
    q, avg, done, codes = (m.group(1) for m in found if m is not None)
    latencies = []
    if verbose:
        for line in text.splitlines():
            if line.startswith("> "):
                with contextlib.suppress(ValueError):
                    latencies.append(float(line.rsplit(None, 1)[1]))
    size = _SIZE.search(text)
    reply_bytes = int(size.group(2)) if size else 0
    return PerfRun(float(q), float(avg) * 1000, float(done), codes.strip(), latencies, reply_bytes)


async def rounds(
    scenarios: Sequence[Servers],
    repeats: int,
    seconds: float,
    *,
    qps: int = 0,
    by_p99: bool = False,
    srv: bool = False,
) -> list[dict[str, PerfRun]]:
    """Per server, the median run of ``repeats``: by queries/s (saturated runs without per-query
    output), or by p99 (``by_p99``: runs at ``qps`` offered with -v). Rounds are interleaved across
    every server of every scenario, so a burst of other load on the machine falls on all alike."""
    targets = [
        (i, label, port, cpu) for i, sv in enumerate(scenarios) for label, port, cpu in sv.targets(srv=srv)
    ]
    samples: dict[tuple[int, str], list[PerfRun]] = {}
    for _ in range(repeats):
        for i, label, port, cpu in targets:
            before = cpu()
            queries = scenarios[i].queries_srv if srv else scenarios[i].queries
            run = await dnsperf(port, queries, seconds, qps=qps, verbose=by_p99)
            run.cpu_seconds = cpu() - before
            scenarios[i].check(label, run)
            samples.setdefault((i, label), []).append(run)
    out: list[dict[str, PerfRun]] = [{} for _ in scenarios]
    for (i, label), runs in samples.items():
        runs.sort(key=lambda r: pct_ms(r.latencies, 99) if by_p99 else r.qps)
        median = runs[len(runs) // 2]
        median.qps_spread = (runs[0].qps, runs[-1].qps)
        out[i][label] = median
    return out


async def throughputs(scenarios: Sequence[Servers], *, srv: bool = False) -> list[dict[str, PerfRun]]:
    for sv in scenarios:
        for _, port, _ in sv.targets(srv=srv):
            await dnsperf(port, sv.queries_srv if srv else sv.queries, WARMUP_SECONDS)
    return await rounds(scenarios, REPEATS, RUN_SECONDS, srv=srv)


async def at_load(scenarios: Sequence[Servers], qps: int) -> list[dict[str, PerfRun]]:
    return await rounds(scenarios, LATENCY_REPEATS, LATENCY_SECONDS, qps=qps, by_p99=True)


def pct_ms(seconds: list[float], p: float) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] * 1000


# ---- scenarios -----------------------------------------------------------------------------------


@dataclass
class Servers:
    nats: NatsServer
    fleet: Fleet
    seeder: Seeder
    queries: Path
    queries_srv: Path  # A and SRV names
    dnsmasq: Dnsmasq  # A records only
    dnsmasq_srv: Dnsmasq | None  # A and SRV records
    bays: dict[int, BayDns]  # workers -> server
    bay_errors: dict[int, str]
    seed_seconds: float
    bay_ready_seconds: dict[int, float]

    def targets(self, *, srv: bool = False) -> list[tuple[str, int, Callable[[], float]]]:
        """(label, port, CPU seconds so far) of every server in this scenario; with ``srv`` the
        dnsmasq that has the SRV records."""
        dm = self.dnsmasq_srv if srv and self.dnsmasq_srv is not None else self.dnsmasq
        out = [("dnsmasq", dm.port, dm.cpu_seconds)]
        return out + [(f"Bay DNS ({w} w)", b.port, b.cpu_seconds) for w, b in self.bays.items()]

    def check(self, label: str, run: PerfRun) -> None:
        """Every query answered NOERROR; else an error saying what the server was doing."""
        if run.codes.startswith("NOERROR") and "," not in run.codes and run.completed_pct >= 99.0:
            return
        what = f"{label}, {len(self.fleet.tasks):,} services: response codes {run.codes or 'none'}"
        what += f", {run.completed_pct:.2f}% of queries answered"
        for w, bay in self.bays.items():
            if label == f"Bay DNS ({w} w)":
                code = bay.proc.proc.poll()
                state = "running" if code is None else f"exited {code}"
                if code == 0:  # what it does on SIGTERM or SIGINT, and the benchmark sent neither
                    state += " (stopped by a SIGTERM/SIGINT from outside the benchmark)"
                tail = bay.proc.log_file.read_text(errors="replace")[-3000:]
                what += f"\nthe server process: {state}; its log {bay.proc.log_file}:\n{tail}"
        raise RuntimeError(what)


@contextlib.asynccontextmanager
async def servers(
    label: str, services: int, workers: Sequence[int], *, srv: bool = False
) -> AsyncIterator[Servers]:
    """A fresh log seeded with ``services`` x 3 tasks, dnsmasq with the same A records (and, with
    ``srv``, a second one with the SRV records too), and Bay DNS with each worker count (one that
    fails to start is recorded in ``bay_errors``)."""
    nats = NatsServer(label)
    seeder: Seeder | None = None
    dms: list[Dnsmasq] = []
    bays: dict[int, BayDns] = {}
    try:
        print(f"({label}: seeding {services:,} services x 3 tasks...)", flush=True)
        fleet = Fleet.build(services, 3)
        seeder = await Seeder.open(nats.url)
        seed_seconds = await seeder.seed(fleet)
        queries = fleet.query_file(nats.dir / "queries.txt")
        queries_srv = fleet.query_file(nats.dir / "queries-srv.txt", srv=True)
        dms.append(Dnsmasq(fleet, nats.dir / "dnsmasq", srv=False))
        if srv:
            dms.append(Dnsmasq(fleet, nats.dir / "dnsmasq-srv", srv=True))
        first = next(iter(fleet.tasks))
        for dm in dms:
            await wait_answering(dm.port, fleet.name(first), fleet.addresses(first), dm.proc, 30)
            await check_answers("dnsmasq", dm.port, fleet, srv=dm.srv)
        errors: dict[int, str] = {}
        ready: dict[int, float] = {}
        for w in workers:
            bay = BayDns(nats.url, nats.dir / f"bay-w{w}", w)
            bays[w] = bay
            try:
                await wait_answering(bay.port, fleet.name(first), fleet.addresses(first), bay.proc, 120)
                ready[w] = time.perf_counter() - bay.proc.spawned
                await check_answers(f"Bay DNS ({w} workers)", bay.port, fleet, srv=True)
            except Exception as exc:
                errors[w] = f"{type(exc).__name__}: {exc}\n(log: {bay.proc.log_file})"
                if bay.proc.proc.poll() is None:  # an exit's error already holds the log's tail
                    errors[w] += "\n" + bay.proc.log_file.read_text(errors="replace")[-1500:]
                bays.pop(w).close()
        dnsmasq_srv = dms[1] if srv else None
        yield Servers(
            nats, fleet, seeder, queries, queries_srv, dms[0], dnsmasq_srv, bays, errors, seed_seconds, ready
        )
    finally:
        for bay in bays.values():
            bay.close()
        for dm in dms:
            dm.close()
        if seeder is not None:
            await seeder.close()
        nats.close()


def _params(res: Result, sv: Servers) -> None:
    res.params.update(
        {
            "records": f"{len(sv.fleet.tasks):,} services x 3 tasks: A, SRV (+ targets' A), TTL {TTL} s",
            "query files": "every service's A name; A+SRV: its A and SRV names; shuffled, same for all",
            "dnsperf": f"2.10, {CLIENTS} sockets, {RUN_SECONDS:g} s runs, {WARMUP_SECONDS:g} s warm-up",
            "dnsmasq": "2.90, --addn-hosts (same A records), --local=/bay.internal/; A+SRV: another with "
            "--srv-host lines too (same SRV records)",
            "Bay DNS": "python -m services.dns, BAY_DNS_WORKERS="
            + " and ".join(str(w) for w in [*sv.bays, *sv.bay_errors]),
            "cpus": os.cpu_count() or 0,
            "load average at start": f"{os.getloadavg()[0]:.2f}",
            "seeding": f"{sv.seed_seconds:.1f} s",
        }
    )
    for w, s in sv.bay_ready_seconds.items():
        res.add(f"Bay DNS ({w} w) spawn to first answer (replay included)", s, "s")
    for w, err in sv.bay_errors.items():
        res.notes.append(f"Bay DNS with {w} workers did not serve: {err}")
    if not sv.bays:
        res.error = "Bay DNS did not serve (see the notes); dnsmasq figures only"


def _spread(run: PerfRun) -> str:
    low, high = run.qps_spread
    return f"{low:,.0f}..{high:,.0f}"


def _saturation_figures(res: Result, prefix: str, run: PerfRun) -> None:
    res.add(f"{prefix}queries/s (median of {REPEATS})", round(run.qps), "queries/s")
    res.add(f"{prefix}server CPU per query", run.cpu_seconds / (run.qps * RUN_SECONDS) * 1e6, "us/query")
    res.add(f"{prefix}server CPU busy", round(run.cpu_seconds / RUN_SECONDS * 100), "% of a core")
    res.notes.append(
        f"{prefix}queries/s over the {REPEATS} runs: {_spread(run)}; mean reply {run.reply_bytes} bytes"
    )


async def run_dns(services: int = 100) -> Result:
    res = Result("dns", f"Bay DNS vs dnsmasq, same records, same queries ({services} services x 3 tasks)")
    async with servers("dns", services, (1, 2), srv=True) as sv:
        _params(res, sv)
        (runs,) = await throughputs([sv])
        for label, run in runs.items():
            _saturation_figures(res, f"{label} ", run)
            res.add(f"{label} mean latency at saturation", run.avg_ms, "ms")
        (mixed,) = await throughputs([sv], srv=True)
        for label, run in mixed.items():
            _saturation_figures(res, f"A+SRV: {label} ", run)
        for label, port, _ in sv.targets():
            sat = await dnsperf(port, sv.queries, RUN_SECONDS, verbose=True)
            res.add(f"{label} p99 at saturation (one -v run)", pct_ms(sat.latencies, 99), "ms")
        # one offered load for every server, below the slowest one's saturation
        slowest = min(r.qps for r in runs.values())
        load = min(FIXED_QPS, int(slowest * 0.6) // 1000 * 1000 or 1000)
        res.params["fixed load"] = (
            f"{load:,} queries/s (dnsperf -Q -v), {LATENCY_SECONDS:g} s runs, median p99 of {LATENCY_REPEATS}"
        )
        if load < FIXED_QPS:
            res.notes.append(f"fixed load lowered from {FIXED_QPS:,}: 60% of the slowest server's saturation")
        (fixed,) = await at_load([sv], load)
        p99s = {
            label: latency_figures(res, f"{label} at {load:,}/s", run.latencies)["p99"]
            for label, run in fixed.items()
        }
        base = runs["dnsmasq"]
        for label, run in runs.items():
            if label == "dnsmasq":
                continue
            ratio = run.qps / base.qps
            res.add(f"{label} / dnsmasq queries/s", round(ratio, 3), "x")
            cpu_ratio = (run.cpu_seconds / run.qps) / (base.cpu_seconds / base.qps)
            res.add(f"{label} / dnsmasq server CPU per query", round(cpu_ratio, 3), "x")
            measured = f"{run.qps:,.0f} vs {base.qps:,.0f}, {ratio:.2f}x"
            res.target(f"{label} queries/s >= dnsmasq's", ratio >= 1.0, measured)
            mixed_ratio = mixed[label].qps / mixed["dnsmasq"].qps
            res.add(f"A+SRV: {label} / dnsmasq queries/s", round(mixed_ratio, 3), "x")
            measured = f"{mixed[label].qps:,.0f} vs {mixed['dnsmasq'].qps:,.0f}, {mixed_ratio:.2f}x"
            res.target(f"A+SRV: {label} queries/s >= dnsmasq's", mixed_ratio >= 1.0, measured)
            res.target(
                f"{label} p99 < {P99_TARGET_MS:g} ms at {load:,} queries/s",
                p99s[label] < P99_TARGET_MS,
                f"{p99s[label]:.3f} ms (dnsmasq {p99s['dnsmasq']:.3f} ms)",
            )
    res.notes.append(
        "dnsperf, the servers and nats-server share this machine's cores: a server below 100% of a core "
        "at saturation was limited by the client or by other load, and then CPU per query is the "
        "sturdier comparison; at saturation latency is queueing"
    )
    return res


async def run_dns_10k(small: int = 100, large: int = 10_000) -> Result:
    """Both scenarios up at once (idle servers cost nothing), their runs interleaved."""
    res = Result("dns-10k", f"Bay DNS queries/s with {large:,} services against {small} (and dnsmasq)")
    async with contextlib.AsyncExitStack() as stack:
        svs = [await stack.enter_async_context(servers(f"dns-{n}", n, (1, 2))) for n in (small, large)]
        _params(res, svs[1])
        res.params["records"] = f"{small} and {large:,} services x 3 tasks, TTL {TTL} s"
        res.params["query files"] = "every service's A name, shuffled, same for all"
        res.params["dnsmasq"] = "2.90, --addn-hosts (same A records), --local=/bay.internal/"
        res.params["fixed load"] = (
            f"10,000 queries/s, {LATENCY_SECONDS:g} s runs, median p99 of {LATENCY_REPEATS}"
        )
        both = await throughputs(svs)
        fixed = await at_load(svs, 10_000)
    for n, runs, at in zip((small, large), both, fixed, strict=True):
        for label, run in runs.items():
            _saturation_figures(res, f"{n:,} services: {label} ", run)
            res.add(f"{n:,} services: {label} p99 at 10,000/s", pct_ms(at[label].latencies, 99), "ms")
    small_runs, large_runs = both
    for label, big in large_runs.items():
        if label not in small_runs:
            continue
        before = small_runs[label]
        change = (big.qps - before.qps) / before.qps * 100
        res.add(f"{label}: queries/s change {small} -> {large:,} services", round(change, 1), "%")
        cpu_change = (big.cpu_seconds / big.qps) / (before.cpu_seconds / before.qps) * 100 - 100
        res.add(f"{label}: CPU per query change {small} -> {large:,} services", round(cpu_change, 1), "%")
        if label == "dnsmasq":
            continue
        res.target(
            f"{label} queries/s with {large:,} services not below {small} services",
            big.qps >= before.qps * (1 - NOISE),
            f"{big.qps:,.0f} vs {before.qps:,.0f} ({change:+.1f}%; {NOISE:.0%} allowed as run-to-run noise)",
        )
        ratio = big.qps / large_runs["dnsmasq"].qps
        goal = f"{label} queries/s >= dnsmasq's with {large:,} services"
        res.target(goal, ratio >= 1.0, f"{ratio:.2f}x")
    return res


# ---- freshness -----------------------------------------------------------------------------------


def poll_until_changed(
    port: int, name: str, old: frozenset[str], deadline: float
) -> tuple[float, frozenset[str]]:
    """Query ``name`` over UDP back to back until the answer differs from ``old``; (when, answer).
    A blocking socket in a thread: the event loop appends the event meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(0.05)
        while time.perf_counter() < deadline:
            query = dns.message.make_query(name, dns.rdatatype.A)
            sock.send(query.to_wire())
            try:
                while True:  # skip a late reply to an earlier query
                    reply = dns.message.from_wire(sock.recv(4096))
                    if reply.id == query.id:
                        break
            except TimeoutError:
                continue
            got = frozenset(
                rd.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset
            )
            if got != old:
                return time.perf_counter(), got
    raise TimeoutError(f"{name} still answered {sorted(old)}")


async def run_dns_freshness(iterations: int = 200, services: int = 100) -> Result:
    res = Result("dns-freshness", "time from a task event to the changed DNS answer")
    res.params = {
        "events": f"{iterations // 2} kills (TaskStatusChanged KILLED) and {iterations // 2} launches "
        "(TaskLaunched + RUNNING, one batch), alternating, each on another service",
        "clock": "from just before the append to the first UDP answer (queried back to back) that differs",
    }
    async with servers("dns-freshness", services, (1,)) as sv:
        _params(res, sv)
        for unused in ("query files", "dnsperf", "dnsmasq"):
            res.params.pop(unused)
        if 1 not in sv.bays:
            return res
        bay = sv.bays[1]
        names = list(sv.fleet.tasks)
        kills: list[float] = []
        launches: list[float] = []
        appends: list[float] = []
        for i in range(iterations):
            service = names[i // 2 % len(names)]
            tasks = sv.fleet.tasks[service]
            old = sv.fleet.addresses(service)
            if i % 2 == 0:
                gone = tasks.pop(0)
                items = [kill_event(gone)]
            else:
                new = sv.fleet.new_task(service)
                tasks.append(new)
                items = launch_events(new)
            want = sv.fleet.addresses(service)
            deadline = time.perf_counter() + 5.0
            poll = asyncio.create_task(
                asyncio.to_thread(poll_until_changed, bay.port, sv.fleet.name(service), old, deadline)
            )
            started = time.perf_counter()
            await sv.seeder.append(items)
            appended = time.perf_counter()
            seen, got = await poll
            if got != want:
                why = f"changed to {sorted(got)}, expected {sorted(want)}"
                raise RuntimeError(f"{sv.fleet.name(service)} {why}")
            (kills if i % 2 == 0 else launches).append(seen - started)
            appends.append(appended - started)
        p = latency_figures(res, "event -> answer", kills + launches)
        latency_figures(res, "kill -> address gone", kills)
        latency_figures(res, "launch -> address added", launches)
        res.add("append (until JetStream acked) p50", pct_ms(appends, 50), "ms")
        goal = f"event -> answer p99 < {FRESH_TARGET_MS:g} ms"
        res.target(goal, p["p99"] < FRESH_TARGET_MS, f"{p['p99']:.3f} ms")
    return res

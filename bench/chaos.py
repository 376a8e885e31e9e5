"""``python -m bench.chaos``: SIGKILL every service of a real ``bay up``, several times, under a load of
idempotent commands, and count what the platform promised not to do.

The load: clients each scale their own group of local ``sleep`` tasks to a new random size, one
command at a time, each with its own idempotency key, sent again with that key until acknowledged
(what a client of Bay should do). Scaling down asks for kills; scaling up launches. Meanwhile every
service (nats-server, registry, scheduler, dns, gateway, audit) is SIGKILLed in turn at a random
moment, ``--rounds`` times; the supervisor restarts each.

Then the load stops and the platform is given ``--settle`` seconds to reach what the log asks, and:
- acknowledged: commands the platform acknowledged;
- lost: acknowledged commands missing from the group's history;
- doubled: commands (idempotency keys) applied more than once;
- orphaned processes: processes running in a task sandbox whose task the scheduler does not list as
  live (read from ``/proc/<pid>/cwd``, so a process nobody recorded is found too);
- stuck kills: tasks asked to go (a kill reason) still not ended after the settle time;
- audit = stream: whether the audit table holds exactly the stream's events.

Prints the counts; exits 1 when lost, doubled, orphaned or stuck is not zero.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.harness import BayUp, running_bay

SERVICES = ("nats", "registry", "scheduler", "dns", "gateway", "audit")
BURST = "chaos-burst"
LIVE = {"STAGING", "STARTING", "RUNNING", "KILLING"}


@dataclass
class Load:
    acked: list[tuple[str, str, int]] = field(default_factory=list)  # group, key, instances
    failures: dict[str, int] = field(default_factory=dict)
    stop: bool = False


async def scale_forever(http: httpx.AsyncClient, group: str, load: Load, rng: random.Random) -> None:
    current = 0
    while not load.stop:
        target = rng.choice([n for n in range(0, 7) if n != current])
        key = f"chaos-{uuid.uuid4()}"
        while True:
            try:
                resp = await http.post(
                    f"/v1/groups/{group}/scale", json={"instances": target}, headers={"Idempotency-Key": key}
                )
                outcome = str(resp.status_code)
            except httpx.HTTPError as exc:
                resp, outcome = None, type(exc).__name__
            if resp is not None and resp.status_code == 200:
                load.acked.append((group, key, target))
                current = target
                break
            load.failures[outcome] = load.failures.get(outcome, 0) + 1
            await asyncio.sleep(0.05)  # a client's pause between retries, not a wait for a condition


async def until_ok(http: httpx.AsyncClient, path: str, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            resp = await http.get(path)
            if resp.status_code == 200:
                return resp
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"GET {path} did not succeed within {timeout}s")
        await asyncio.sleep(0.1)


async def kill_services(bay: BayUp, rounds: int, rng: random.Random) -> list[str]:
    done = []
    for r in range(rounds):
        for name in SERVICES:
            await asyncio.sleep(rng.uniform(0.3, 2.0))  # a random moment under load
            pid = bay.pids()[name]
            mark = len(bay.lines)
            os.kill(pid, signal.SIGKILL)
            await bay.wait_for(rf"^bay: {name} restarted \(pid \d+\)$", timeout=60, start=mark)
            done.append(f"{name}#{r + 1}")
    return done


async def scale_until_ok(http: httpx.AsyncClient, group: str, instances: int, key: str) -> None:
    """One scale command, sent again with its key until acknowledged."""
    while True:
        try:
            resp = await http.post(
                f"/v1/groups/{group}/scale", json={"instances": instances}, headers={"Idempotency-Key": key}
            )
            if resp.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.05)


async def launch_bursts(bay: BayUp, http: httpx.AsyncClient, rounds: int) -> tuple[list[str], list[float]]:
    """The orphan case: scale a group 0 -> 30 and SIGKILL the scheduler as soon as its first task
    is listed (a request every few ms), ``rounds`` times, back to 0 between; returns the kills and
    how long after the first listed task each came."""
    done, after = [], []
    for r in range(rounds):
        await scale_until_ok(http, BURST, 30, f"burst-{r}-up")
        while True:  # the first task launched, as its listing shows it
            listed = await http.get(f"/v1/groups/{BURST}/tasks")
            if listed.status_code == 200 and listed.json()["tasks"]:
                seen = time.monotonic()
                break
        pid = bay.pids()["scheduler"]
        mark = len(bay.lines)
        os.kill(pid, signal.SIGKILL)
        after.append(time.monotonic() - seen)
        await bay.wait_for(r"^bay: scheduler restarted \(pid \d+\)$", timeout=60, start=mark)
        done.append(f"scheduler-burst#{r + 1}")
        await scale_until_ok(http, BURST, 0, f"burst-{r}-down")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every task of this round ended before the next round
            listed = await http.get(f"/v1/groups/{BURST}/tasks")
            if listed.status_code == 200 and not listed.json()["tasks"]:
                break
            await asyncio.sleep(0.1)
    return done, after


def sandbox_processes(data_dir: Path) -> dict[str, list[int]]:
    """task id -> pids of the processes whose working directory is that task's sandbox."""
    roots = [p.resolve() for p in data_dir.glob("*/*/sandboxes")] + [
        p.resolve() for p in data_dir.glob("*/sandboxes")
    ]
    out: dict[str, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        for root in roots:
            if cwd.is_relative_to(root) and cwd != root:  # a sandbox, or its work/ directory
                out.setdefault(cwd.relative_to(root).parts[0], []).append(int(entry))
    return out


async def settle(
    http: httpx.AsyncClient, groups: list[str], timeout: float
) -> dict[str, list[dict[str, object]]]:
    """Each group's task list once running == desired and nothing is being killed (or at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        listing: dict[str, list[dict[str, object]]] = {}
        steady = True
        for g in groups:
            status = (await until_ok(http, f"/v1/groups/{g}/status")).json()
            listing[g] = (await until_ok(http, f"/v1/groups/{g}/tasks")).json()["tasks"]
            steady &= (
                status["running"] == status["desired"] and status["killing"] == 0 and status["staged"] == 0
            )
        if steady or time.monotonic() > deadline:
            return listing
        await asyncio.sleep(0.2)


async def audit_matches_stream(http: httpx.AsyncClient, bay: BayUp) -> bool:
    """The stream read as an audit system outside Bay reads it (a credential `bay nats
    audit-credential` made), against the audit table the gateway serves."""
    import nats
    from bay.v1 import envelope_pb2

    code, seed, err = await bay.cli("nats", "audit-credential", "chaos")
    assert code == 0, err
    url = bay.env.get("BAY_NATS_URL") or f"nats://127.0.0.1:{bay.env['BAY_NATS_PORT']}"
    nc = await nats.connect(url, nkeys_seed=seed.strip())
    try:
        js = nc.jetstream()
        last = (await js.stream_info("BAY_EVENTS")).state.last_seq
        stream = []
        for seq in range(1, last + 1):
            env = envelope_pb2.Envelope()
            env.ParseFromString((await js.get_msg("BAY_EVENTS", seq)).data or b"")
            stream.append((seq, env.event_id))
    finally:
        await nc.close()
    deadline = time.monotonic() + 30
    while True:
        audit: list[tuple[int, str]] = []
        after: int | None = 0
        while after is not None:
            page = (await until_ok(http, f"/v1/events?after={after}&limit=1000")).json()
            audit += [(e["sequence"], e["id"]) for e in page["events"]]
            after = page["next_after"]
        if (audit and audit[-1][0] >= last) or time.monotonic() > deadline:
            return audit[: len(stream)] == stream
        await asyncio.sleep(0.2)


async def experiment(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    groups = [f"chaos-{i}" for i in range(args.clients)] + [BURST]
    with tempfile.TemporaryDirectory(prefix="bay-chaos-") as tmp:
        async with running_bay(Path(tmp)) as bay:
            async with bay.http() as http:
                http.timeout = httpx.Timeout(10.0)
                for g in groups:
                    r = await http.post("/v1/groups", json={"name": g, "cmd": "sleep 600", "instances": 0})
                    assert r.status_code == 201, r.text
                load = Load()
                burst_kills, burst_after = await launch_bursts(bay, http, args.rounds)
                clients = [asyncio.create_task(scale_forever(http, g, load, rng)) for g in groups[:-1]]
                started = time.monotonic()
                kills = burst_kills + await kill_services(bay, args.rounds, rng)
                load.stop = True
                await asyncio.gather(*clients)
                loaded = time.monotonic() - started
                listing = await settle(http, groups, args.settle)
                histories = {
                    g: (await until_ok(http, f"/v1/groups/{g}/history")).json()["events"] for g in groups
                }
                processes = sandbox_processes(bay.data_dir)
                same = await audit_matches_stream(http, bay)

    applied: dict[str, int] = {}
    for events in histories.values():
        for e in events:
            if e["type"] == "GroupScaled" and e["idempotency_key"]:
                applied[e["idempotency_key"]] = applied.get(e["idempotency_key"], 0) + 1
    lost = [k for _, k, _ in load.acked if k not in applied]
    doubled = [k for k, n in applied.items() if n > 1]
    live = {str(t["id"]) for tasks in listing.values() for t in tasks if t["state"] in LIVE}
    orphans = {tid: pids for tid, pids in processes.items() if tid not in live}
    stuck = [
        str(t["id"]) for tasks in listing.values() for t in tasks if t["kill_reason"] and t["state"] in LIVE
    ]
    print(
        f"kills: {len(kills)} SIGKILLs ({', '.join(kills)}); {loaded:.0f} s of load, {args.clients} clients"
    )
    print(f"launch bursts: scheduler SIGKILLed {', '.join(f'{1000 * a:.0f}' for a in burst_after)} ms "
          "after the first task was listed")  # fmt: skip
    print(f"task processes found in sandboxes: {sum(map(len, processes.values()))} in {len(processes)} "
          f"sandboxes; live tasks listed: {len(live)}")  # fmt: skip
    print(f"acknowledged {len(load.acked)}; failed attempts retried: {dict(sorted(load.failures.items()))}")
    print(f"lost {len(lost)}; doubled {len(doubled)}; orphaned processes {sum(map(len, orphans.values()))}; "
          f"stuck kills {len(stuck)}; audit = stream: {same}")  # fmt: skip
    for tid, pids in orphans.items():
        print(f"  orphan: sandbox {tid}: pids {pids}")
    for tid in stuck:
        print(f"  stuck kill: {tid}")
    return 1 if lost or doubled or orphans or stuck or not same else 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="SIGKILLs of each service")
    p.add_argument("--clients", type=int, default=3, help="concurrent clients, one group each")
    p.add_argument("--settle", type=float, default=60.0, help="seconds to reach what the log asks")
    p.add_argument("--seed", type=int, default=None, help="random seed (moments, sizes)")
    return asyncio.run(experiment(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

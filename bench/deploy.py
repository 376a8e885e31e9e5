"""Deployments on the whole platform as ``make run`` starts it (``bay up``), driven through the
gateway as a user's tooling does.

- ``deploy-local``: a rolling deploy (the default strategy) of 100 local tasks of the README's example
  task (``python3 -m http.server`` serving the build's unpacked artifact) with HTTP health checks,
  under a client load that resolves the service through Bay DNS (answers kept for their TTL) and
  sends HTTP requests to the tasks: seconds from the deploy command to all 100 on the new build and
  ready, the lowest ready count seen, failed requests.
- ``deploy-switch``: time from the command (``promote`` of a blue-green, of a canary step) to the
  changed DNS answer, p50 and p99.
- ``deploy-mesos``: the same rolling deploy on the simulated Mesos cluster with 1,000 tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype

from bench.report import Result, latency_figures
from tests.builds import HTTP_SERVER
from tests.deploying import deploy, deployment_until, group_spec, register_build, watching
from tests.dnsload import DnsLoad
from tests.e2e.harness import BayUp, running_bay
from tests.tasks import TINYHTTP

DEPLOY_TARGET_S = 10.0
SWITCH_P99_TARGET_MS = 100.0
K8S_WAVES = 4  # maxSurge 25% and maxUnavailable 25%: 100 pods in at least four waves

LOCAL_ENV = {
    "BAY_DRAIN_SECONDS": "6",
    "BAY_LOCAL_CGROUPS": "false",
    "BAY_LOCAL_CPUS": "64",
    "BAY_LOCAL_MEM": "65536",
    "BAY_LOCAL_PORT_BEGIN": "21000",
    "BAY_LOCAL_PORT_END": "22999",
}


@contextlib.asynccontextmanager
async def platform(label: str, *args: str, **env: str) -> AsyncIterator[tuple[BayUp, Path]]:
    work = Path(tempfile.mkdtemp(prefix=f"bay-bench-{label}-"))
    work.chmod(0o711)  # noqa: ASYNC240 -- as a checkout is: tasks reach their sandboxes by absolute path
    artifacts = Path(tempfile.mkdtemp(prefix=f"bay-bench-artifacts-{label}-"))
    artifacts.chmod(0o755)  # noqa: ASYNC240 (once, before anything runs)
    try:
        async with running_bay(work, args=args, env_extra={**LOCAL_ENV, **env}, timeout=120) as bay:
            yield bay, artifacts
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(artifacts, ignore_errors=True)


async def _create(bay: BayUp, artifacts: Path, spec: dict[str, Any], timeout: float) -> None:
    async with bay.http() as http:
        resp = await http.post("/v1/groups", json=spec)
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"creating the group: {resp.status_code} {resp.text}")
        async with watching(http, spec["name"]) as watch:
            await watch.until(lambda s: s["ready"] == spec["instances"], timeout)


async def _rolling(
    res: Result, bay: BayUp, artifacts: Path, n: int, cluster: str, with_load: bool, cmd: str = HTTP_SERVER
) -> None:
    """``cmd``: the task (the README's example by default); a stand-in answers every path with its
    port, not its build, so only failures are counted then."""
    by_build = cmd == HTTP_SERVER
    spec = group_spec("web", "web-1", n, cluster, check_every=0.5)
    async with bay.http() as http:
        await register_build(http, artifacts, "web-1", cmd=cmd)
    await _create(bay, artifacts, spec, 300)
    async with bay.http() as http:
        await register_build(http, artifacts, "web-2", cmd=cmd)
        client = DnsLoad(("127.0.0.1", bay.dns_port), "_http._tcp.web.bay.internal.")
        stop = asyncio.Event()
        load = asyncio.create_task(client.run(stop)) if with_load else None
        try:
            if with_load and by_build:
                await client.until_only("web-1")
            async with watching(http, "web") as watch:
                watch.arm()
                _, began = await deploy(http, "web", {"build": "web-2"})
                marks: dict[str, float] = {}

                def progress(d: dict[str, Any]) -> bool:
                    now = time.monotonic() - began
                    if d["new_running"] >= n:
                        marks.setdefault("all new running (launched, not yet checked)", now)
                    if d["new_ready"] >= n:
                        marks.setdefault("all new counted ready (min_ready_seconds met)", now)
                    return bool(d["state"] == "succeeded")

                done = await deployment_until(http, "web", progress, 600)
                took = time.monotonic() - began
            if with_load and by_build:
                await client.until_only("web-2")
        finally:
            stop.set()
            if load is not None:
                await asyncio.wait_for(load, 10)
    mhc = done["strategy"]["minimum_health_capacity"]
    bound = math.ceil(n * (1.0 if mhc is None else mhc))
    for label, at in marks.items():
        res.add(label, at, "s")
    ready_at = marks.get("all new counted ready (min_ready_seconds met)", took)
    res.add("deployment succeeded (old tasks drained and ended)", took, "s")
    res.add("lowest ready count", float(watch.min_ready or 0), "tasks")
    res.add("rolling bound (never fewer ready)", float(bound), "tasks")
    res.target(
        f"all {n} on the new build and ready < {DEPLOY_TARGET_S:g} s",
        ready_at < DEPLOY_TARGET_S,
        f"{ready_at:.3f} s (then the old ones leave DNS; drained, they end by {took:.1f} s)",
    )
    res.target(
        "never below the bound", (watch.min_ready or 0) >= bound, f"lowest {watch.min_ready}, bound {bound}"
    )
    if with_load:
        res.add("client requests", float(len(client.answers)), "requests")
        res.add("failed client requests", float(len(client.failures)), "requests")
        res.target("zero failed requests", not client.failures, f"{len(client.failures)} failed")
        if client.failures:
            res.notes.append(f"first failure: {client.failures[0].error}")
    res.notes.append(
        f"for scale: Kubernetes' defaults (max surge and max unavailable 25%) replace {n} pods in at "
        f"least {K8S_WAVES} waves, each waiting for readiness"
    )


async def run_deploy_local(n: int = 100) -> Result:
    res = Result("deploy-local", f"rolling deploy of {n} local tasks (README's example task, HTTP checks)")
    res.params = {
        "task": "python3 -m http.server serving the build's unpacked artifact (tar.gz, sha256 checked)",
        "health check": "http GET /build.txt, interval 0.5 s, timeout 0.5 s",
        "strategy": "the default: rolling with the group's upgrade_strategy (minimum_health_capacity 1, "
        "maximum_over_capacity 1) and the deployer's default min_ready_seconds",
        "client load": "4 workers: SRV through Bay DNS (TTL kept), weighted pick, HTTP GET",
        "drain": "BAY_DRAIN_SECONDS=6 (the default)",
    }
    async with platform("deploy-local") as (bay, artifacts):
        await _rolling(res, bay, artifacts, n, "local", with_load=True)
    return res


async def run_deploy_local_light(n: int = 100) -> Result:
    res = Result(
        "deploy-local-light", f"the same rolling deploy of {n} local tasks, the lightest stand-in task"
    )
    res.params = {
        "task": "tests/tasks/tinyhttp.py under python -S (answers every path with its port), same artifact",
        "health check": "http GET /build.txt, interval 0.5 s, timeout 0.5 s",
        "strategy": "the default rolling",
        "client load": "as deploy-local (failures counted; answers name ports, not builds)",
    }
    async with platform("deploy-local-light") as (bay, artifacts):
        await _rolling(res, bay, artifacts, n, "local", with_load=True, cmd=TINYHTTP)
    return res


async def run_deploy_mesos(n: int = 1000, agents: int = 50) -> Result:
    res = Result("deploy-mesos", f"rolling deploy of {n} tasks on the simulated Mesos cluster")
    res.params = {
        "cluster": f"tests/mesos_sim, {agents} agents (tasks simulated: no processes)",
        "health check": "declared in TaskInfo; the simulator reports it healthy 20 ms after RUNNING",
        "strategy": "the default rolling",
    }
    async with platform("deploy-mesos", "--sim-cluster", "sim", BAY_SIM_AGENTS=str(agents)) as (
        bay,
        artifacts,
    ):
        await _rolling(res, bay, artifacts, n, "sim", with_load=False)
    return res


async def _srv_answer(bay: BayUp, name: str) -> frozenset[tuple[int, int]]:
    """The (port, weight) pairs of the service's SRV answer now (each task has its own port)."""
    query = dns.message.make_query(name, dns.rdatatype.SRV)
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=bay.dns_port, timeout=2.0)
    return frozenset((srv.port, srv.weight) for rrset in reply.answer for srv in rrset)


async def _until_changed(
    bay: BayUp, name: str, before: frozenset[tuple[int, int]], timeout: float = 10.0
) -> float:
    """Polls back to back; the monotonic time of the first answer that differs from ``before``."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if await _srv_answer(bay, name) != before:
            return time.monotonic()
    raise RuntimeError(f"the DNS answer for {name} did not change within {timeout}s")


async def run_deploy_switch(rounds: int = 20) -> Result:
    res = Result("deploy-switch", "command to changed DNS answer: blue-green switch, canary step")
    res.params = {
        "rounds": rounds,
        "measured": "from the promote request to the first UDP SRV answer that differs (polled back to back)",
        "group": "2 tasks of the README's example task",
    }
    name = "_http._tcp.sw.bay.internal."
    switches: list[float] = []
    steps: list[float] = []
    async with platform("deploy-switch") as (bay, artifacts):
        async with bay.http() as http:
            await register_build(http, artifacts, "sw-0")
        await _create(bay, artifacts, group_spec("sw", "sw-0", 2), 120)
        async with bay.http() as http:
            for i in range(1, rounds + 1):
                build = f"sw-{i}"
                await register_build(http, artifacts, build)
                blue_green = i % 2 == 1
                steps_: list[dict[str, Any]] = [
                    {"set_weight": 20},
                    {"pause": {}},
                    {"set_weight": 50},
                    {"pause": {}},
                ]
                strategy: dict[str, Any] = (
                    {"kind": "blue-green", "scale_down_delay_seconds": 0}
                    if blue_green
                    else {"kind": "canary", "steps": steps_}
                )
                await deploy(http, "sw", {"build": build, "strategy": strategy})
                if blue_green:
                    await deployment_until(http, "sw", lambda d: d["new_ready"] == 2, 60)
                else:  # paused at weight 20; the promote moves the weight to 50
                    await deployment_until(http, "sw", lambda d: d["state"] == "paused", 60)
                await _settled(bay, name)
                before = await _srv_answer(bay, name)
                began = time.monotonic()
                resp = await http.post("/v1/groups/sw/deployment/promote")
                if resp.status_code != 200:
                    raise RuntimeError(f"promote: {resp.status_code} {resp.text}")
                (switches if blue_green else steps).append(await _until_changed(bay, name, before) - began)
                if not blue_green:
                    await deployment_until(http, "sw", lambda d: d["state"] == "paused", 60)
                    await http.post("/v1/groups/sw/deployment/promote", params={"all": "true"})
                await deployment_until(http, "sw", lambda d: d["state"] == "succeeded", 120)
    both = switches + steps
    latency_figures(res, "switch", both)
    for label, values in (("blue-green", switches), ("canary promote", steps)):
        if values:
            res.add(f"{label} p50", _pct(values, 50) * 1000, "ms")
            res.add(f"{label} p99", _pct(values, 99) * 1000, "ms")
    p99 = _pct(both, 99) * 1000
    res.target(f"p99 < {SWITCH_P99_TARGET_MS:g} ms", p99 < SWITCH_P99_TARGET_MS, f"{p99:.1f} ms")
    return res


async def _settled(bay: BayUp, name: str, quiet: float = 0.3) -> None:
    """Until the answer has not changed for ``quiet`` seconds (tasks still becoming ready would be
    taken for the switch)."""
    last = await _srv_answer(bay, name)
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        now = await _srv_answer(bay, name)
        if now != last:
            last, since = now, time.monotonic()


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

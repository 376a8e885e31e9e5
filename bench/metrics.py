"""``python -m bench metrics``: the response time of every Bay process's ``/metrics`` and of the
gateway's service discovery (``/v1/sd/prometheus``) with 1,000 groups and 10,000 tasks.

The platform is a real ``bay up --sim-cluster sim``: every service its own process, each with its
metrics listener, the gateway told where they are. The 10,000 tasks are real tasks of the views: the
real scheduler of cluster ``sim`` launches them through pymesos on the Mesos master simulator
(``python -m tests.mesos_sim``, a process of its own), which reports them RUNNING; every process folds
their events from the log as it would for tasks on real agents. A simulated task runs no process (no
machine here holds 10,000), so nothing answers at the tasks' own metrics ports: SD lists them, and
that is what is timed. Scrapes are sequential, one at a time, each on a new connection (as
Prometheus' are to a listener that closes them), after the count is reached and the folds are level.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.report import Result
from tests.e2e.harness import BayUp, running_bay
from tests.integration.metrics_scrape import scrape

AGENTS = 250
READY_TIMEOUT = 75.0


async def run_metrics(groups: int = 1_000, per_group: int = 10, scrapes: int = 50) -> Result:
    tasks = groups * per_group
    res = Result("metrics", f"/metrics of every process and SD, {groups:,} groups and {tasks:,} tasks")
    res.params = {
        "stack": "bay up --sim-cluster sim (every service a process)",
        "tasks": f"{tasks:,} Mesos tasks ({per_group} per group) launched by the real scheduler on the "
        f"Mesos master simulator ({AGENTS} agents, python -m tests.mesos_sim), RUNNING as it reports; "
        "no process each",
        "groups": f"{groups:,} on cluster sim, ports http + metrics; 1 on local (none running)",
        "scrapes": f"{scrapes} sequential GETs per endpoint, each a new connection",
    }
    with tempfile.TemporaryDirectory(prefix="bay-bench-metrics-") as tmp:
        args = ("--sim-cluster", "sim", "--sim-agents", str(AGENTS))
        env = {"BAY_LOG_LEVEL": "WARNING", "BAY_USAGE_INTERVAL_SECONDS": "30"}
        async with running_bay(Path(tmp), args=args, env_extra=env, timeout=90) as bay:
            started = time.perf_counter()
            await _create_groups(bay, groups, per_group)
            res.add("groups created (REST, 8 at a time)", time.perf_counter() - started, "s")
            await _until_running(bay, tasks)
            res.add("until every task ready on the sim scheduler's page", time.perf_counter() - started, "s")
            async with bay.http() as http:
                listed = await _until_listed(http, tasks)
            for name, address, path in _processes(listed):
                await _time(res, name, lambda a=address, p=path: _get(a, p), scrapes)
            gateway = bay.env["BAY_GATEWAY_LISTEN"]
            token = {"Authorization": f"Bearer {bay.token}"}
            sd = "SD /v1/sd/prometheus"
            await _time(res, sd, lambda: _get(gateway, "/v1/sd/prometheus", token), scrapes)
    return res


async def _create_groups(bay: BayUp, groups: int, per_group: int) -> None:
    names = [f"g{i:04d}" for i in range(groups)]
    async with bay.http() as http:

        async def worker() -> None:
            while names:
                spec = {
                    "name": names.pop(),
                    "cluster": "sim",
                    "cmd": "serve",
                    "instances": per_group,
                    "resources": {"cpus": 0.05, "mem": 16},
                    "ports": [{"name": "http"}, {"name": "metrics"}],
                }
                resp = await http.post("/v1/groups", json=spec)
                if resp.status_code != 201:
                    raise RuntimeError(f"creating {spec['name']}: {resp.status_code} {resp.text}")

        await asyncio.gather(*(worker() for _ in range(8)))


async def _until_running(bay: BayUp, tasks: int) -> None:
    deadline = time.perf_counter() + READY_TIMEOUT
    address = bay.metrics_address("SIM_SCHEDULER")
    ready = 0.0
    while time.perf_counter() < deadline:
        page = await scrape(address, timeout=30)
        ready = page.value("bay_group_ready_tasks", cluster="sim") or 0
        if ready >= tasks:
            return
        await asyncio.sleep(1.0)
    raise TimeoutError(f"{ready:.0f} of {tasks} tasks ready after {READY_TIMEOUT:.0f}s")


async def _until_listed(http: httpx.AsyncClient, tasks: int) -> list[dict[str, Any]]:
    """The SD list once it has every task (the gateway's fold is level with the scheduler's)."""
    deadline = time.perf_counter() + 30
    while True:
        body: list[dict[str, Any]] = (await http.get("/v1/sd/prometheus", timeout=30)).json()
        if sum(1 for t in body if t["labels"]["bay_kind"] == "task") >= tasks:
            return body
        if time.perf_counter() > deadline:
            raise TimeoutError("SD does not list every task")
        await asyncio.sleep(0.5)


def _processes(listed: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    out = []
    for t in listed:
        labels = t["labels"]
        if labels["bay_kind"] != "process":
            continue
        name = labels["bay_service"] + (f" {labels['cluster']}" if "cluster" in labels else "")
        out.append((f"{name} /metrics", t["targets"][0], labels.get("__metrics_path__", "/metrics")))
    return sorted(out)


async def _get(address: str, path: str, headers: dict[str, str] | None = None) -> int:
    """One GET on a new connection, read to its end (as a scraper does): the body's size."""
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Connection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {address}{path}: {head[:80]!r}")
    return len(body)


async def _time(res: Result, name: str, get: Any, scrapes: int) -> None:
    seconds = []
    size = 0
    for _ in range(scrapes):
        started = time.perf_counter()
        size = await get()
        seconds.append(time.perf_counter() - started)
    ordered = sorted(seconds)
    for p in (50, 99):
        res.add(
            f"{name} p{p}",
            ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] * 1000,
            "ms",
        )
    res.add(f"{name} size", size / 1024, "KiB")

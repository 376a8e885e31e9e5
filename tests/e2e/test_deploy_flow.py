"""Deployments as clients see them, on the whole platform as ``make run`` starts it.

A client load finds the service through Bay DNS before each request (keeping each answer for its
TTL, as a caching resolver does), picks a task by the SRV weights and asks it over HTTP which build
it runs (the README's example task serving the build's files). Through a rolling deploy of 20 tasks,
a canary with two steps then its promotion, a blue-green switch and a migration to a simulated Mesos
cluster, no request fails; during the canary the share of answers from the new build follows the
step's weight; the ready count never falls below the rolling bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.deploying import deploy, deployment_until, group_spec, register_build, watching
from tests.dnsload import DnsLoad
from tests.e2e.harness import BayUp, running_bay

pytestmark = pytest.mark.timeout(600)

SIM = "sim"


@pytest_asyncio.fixture(scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BayUp]:
    env = {"BAY_DRAIN_SECONDS": "6", "BAY_SIM_AGENTS": "4"}
    args = ("--sim-cluster", SIM, "--sim-run-commands")
    # traversable, as a checkout is: tasks reach their sandboxes by absolute path (the example task
    # serves its files by theirs), which pytest's private temporary directories would refuse
    work = Path(tempfile.mkdtemp(prefix="bay-e2e-deploy-"))
    work.chmod(0o711)  # noqa: ASYNC240 (once, before the platform starts)
    try:
        async with running_bay(work, args=args, env_extra=env, timeout=90) as bay:
            yield bay
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """World-readable: tasks run as uids of their own and fetch their artifacts themselves."""
    base = Path("/tmp") / f"bay-artifacts-{tmp_path_factory.getbasetemp().name}"
    base.mkdir(mode=0o755, exist_ok=True)
    base.chmod(0o755)
    return base


@contextlib.asynccontextmanager
async def load(bay: BayUp, service: str) -> AsyncIterator[DnsLoad]:
    client = DnsLoad(("127.0.0.1", bay.dns_port), f"_http._tcp.{service}.bay.internal.")
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        yield client
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def create(bay: BayUp, artifacts: Path, name: str, build: str, instances: int, **extra: object) -> None:
    async with bay.http() as http:
        await register_build(http, artifacts, build)
        resp = await http.post("/v1/groups", json=group_spec(name, build, instances, **extra))
        assert resp.status_code in (200, 201), resp.text
        async with watching(http, name) as watch:
            await watch.until(lambda s: s["ready"] == instances, 60)


async def until_answers(client: DnsLoad, build: str, timeout: float = 30) -> None:
    await client.until_only(build, timeout=timeout)


async def test_a_rolling_deploy_of_20_tasks_fails_no_request(platform: BayUp, artifacts: Path) -> None:
    await create(platform, artifacts, "roll", "roll-1", 20)
    async with platform.http() as http, watching(http, "roll") as watch, load(platform, "roll") as client:
        await until_answers(client, "roll-1")
        await register_build(http, artifacts, "roll-2")
        watch.arm()
        await deploy(http, "roll", {"build": "roll-2", "strategy": {"min_ready_seconds": 1}})
        done = await deployment_until(http, "roll", lambda d: d["state"] == "succeeded", 120)
        assert done["to_build"] == "roll-2" and done["new_ready"] == 20
        await until_answers(client, "roll-2")
    bound = math.ceil(20 * 1.0)  # the spec's default minimum_health_capacity
    assert client.failures == [], client.failures[:5]
    assert {a.build for a in client.answers} == {"roll-1", "roll-2"}
    assert watch.min_ready is not None and watch.min_ready >= bound, watch.min_ready
    # the status counts each version: both ran side by side, and only the new one is left
    assert any({v["version"] for v in s["versions"]} == {1, 2} for s in watch.statuses)
    last = watch.statuses[-1]["versions"]
    assert [(v["version"], v["ready"]) for v in last if v["instances"]] == [(2, 20)], last


async def test_a_canary_in_two_steps_then_promoted(platform: BayUp, artifacts: Path) -> None:
    await create(platform, artifacts, "can", "can-1", 4)
    steps = [{"set_weight": 20}, {"pause": {}}, {"set_weight": 50}, {"pause": {}}]
    async with platform.http() as http, load(platform, "can") as client:
        await until_answers(client, "can-1")
        await register_build(http, artifacts, "can-2")
        await deploy(http, "can", {"build": "can-2", "strategy": {"kind": "canary", "steps": steps}})
        shares = []
        for weight, step in ((20, 1), (50, 3)):
            await deployment_until(
                http, "can", lambda d, s=step: d["current_step"] == s and d["state"] == "paused", 60
            )
            since = await client.fresh()  # the client's cached answer from before the step expired
            await client.until_count(since, 600)
            seen = client.builds_since(since)
            share = 100 * seen["can-2"] / sum(seen.values())
            shares.append(share)
            assert abs(share - weight) <= 8, (weight, seen)
            resp = await http.post("/v1/groups/can/deployment/promote")
            assert resp.status_code == 200, resp.text
        await deployment_until(http, "can", lambda d: d["state"] == "succeeded", 120)
        await until_answers(client, "can-2")
    assert client.failures == [], client.failures[:5]


async def test_a_blue_green_switch(platform: BayUp, artifacts: Path) -> None:
    await create(platform, artifacts, "bg", "bg-1", 4)
    async with platform.http() as http, load(platform, "bg") as client:
        await until_answers(client, "bg-1")
        await register_build(http, artifacts, "bg-2")
        strategy = {"kind": "blue-green", "scale_down_delay_seconds": 8}
        await deploy(http, "bg", {"build": "bg-2", "strategy": strategy})
        waiting = await deployment_until(http, "bg", lambda d: d["new_ready"] == 4, 60)
        assert waiting["state"] in ("running", "paused")
        since = await client.fresh()  # answers resolved while green runs beside blue
        await client.until_count(since, 100)
        assert set(client.builds_since(since)) == {"bg-1"}  # green is not in the service yet
        resp = await http.post("/v1/groups/bg/deployment/promote")
        assert resp.status_code == 200, resp.text
        await until_answers(client, "bg-2")
        await deployment_until(http, "bg", lambda d: d["state"] == "succeeded", 60)
    assert client.failures == [], client.failures[:5]


async def test_a_migration_to_the_simulated_mesos_cluster(platform: BayUp, artifacts: Path) -> None:
    await create(platform, artifacts, "mig", "mig-1", 4)
    async with platform.http() as http, load(platform, "mig") as client:
        await until_answers(client, "mig-1")
        await deploy(http, "mig", {"cluster": SIM})
        done = await deployment_until(http, "mig", lambda d: d["state"] == "succeeded", 120)
        assert done["to_cluster"] == SIM
        group = (await http.get("/v1/groups/mig")).json()
        assert group["spec"]["cluster"] == SIM
        resp = await http.get("/v1/groups/mig/tasks")
        assert resp.status_code == 200
    assert client.failures == [], client.failures[:5]

"""A service whose NATS connection stays down says so: gRPC health NOT_SERVING, the gateway's
``/healthz`` 503 ``unhealthy``; both come back by themselves when NATS does (issue 10)."""

from __future__ import annotations

from pathlib import Path

import httpx

from libs.clients import DnsClient, Health, RegistryClient, SchedulerClient
from libs.natsconn import DOWN_GRACE_SECONDS
from libs.natsserver import free_port
from tests.conftest import NatsProcess
from tests.integration.dns_harness import DnsProcess
from tests.integration.gateway_harness import start_stack
from tests.integration.scheduler_harness import SchedulerProcess, kill_tasks
from tests.poll import poll_until


async def test_nats_down_for_good_is_not_serving_and_unhealthy_until_it_is_back(
    fresh_stream: str, nats_server: NatsProcess, tmp_path: Path
) -> None:
    stack = await start_stack(fresh_stream, tmp_path)
    registry = RegistryClient(f"127.0.0.1:{stack.registry.port}", timeout=2)

    async def registry_says(want: Health) -> bool:
        return await registry.health() == want

    async def healthz(status: int) -> httpx.Response | None:
        resp = await stack.client.get("/healthz")
        return resp if resp.status_code == status else None

    try:
        assert await registry_says(Health.SERVING)
        assert (await healthz(200)) is not None
        nats_server.stop()
        limit = DOWN_GRACE_SECONDS + 20  # a deadline under load, not a measure of speed
        await poll_until(lambda: registry_says(Health.NOT_SERVING), "the registry NOT_SERVING", limit)
        down = await poll_until(lambda: healthz(503), "/healthz 503", limit)
        assert down.json()["status"] == "unhealthy" and down.json()["nats"] is False
        assert down.json()["registry"] is False

        nats_server.start()
        await poll_until(lambda: registry_says(Health.SERVING), "the registry SERVING again", 20)
        up = await poll_until(lambda: healthz(200), "/healthz 200 again", 20)
        assert up.json()["status"] == "ok"
    finally:
        if not nats_server.running:
            nats_server.start()
        await registry.close()
        await stack.stop()


async def test_the_scheduler_and_dns_processes_say_not_serving_while_nats_stays_down(
    fresh_stream: str, nats_server: NatsProcess, tmp_path: Path
) -> None:
    sched_port = free_port()
    stack = await start_stack(fresh_stream, tmp_path, schedulers={"local": f"127.0.0.1:{sched_port}"})
    # a lease longer than the outage: this test is about health, not about giving the lease up
    lease = {"BAY_LEASE_SECONDS": "120"}
    sched = SchedulerProcess(stack.registry, fresh_stream, tmp_path, port=sched_port, extra_env=lease)
    dns = DnsProcess(fresh_stream, tmp_path / "dns")
    clients = [
        SchedulerClient("local", f"127.0.0.1:{sched_port}", timeout=2),
        DnsClient(f"127.0.0.1:{dns.grpc_port}", timeout=2),
    ]

    said: set[int] = set()

    async def all_say(want: Health) -> bool:
        """Each service has said ``want`` since the last change of NATS (one at a time, under load)."""
        for i, c in enumerate(clients):
            if i not in said and await c.health() == want:
                said.add(i)
        return len(said) == len(clients)

    try:
        await sched.start()
        await dns.start()
        await poll_until(lambda: all_say(Health.SERVING), "the scheduler and DNS SERVING", 20)
        said.clear()
        nats_server.stop()
        limit = DOWN_GRACE_SECONDS + 20  # a deadline under load, not a measure of speed
        await poll_until(lambda: all_say(Health.NOT_SERVING), "the scheduler and DNS NOT_SERVING", limit)
        said.clear()
        nats_server.start()
        await poll_until(lambda: all_say(Health.SERVING), "the scheduler and DNS SERVING again", 30)
    finally:
        if not nats_server.running:
            nats_server.start()
        for c in clients:
            await c.close()
        dns.stop()
        await sched.stop()
        kill_tasks(tmp_path)
        await stack.stop()

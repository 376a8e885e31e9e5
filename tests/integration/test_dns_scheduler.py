"""DNS following a real scheduler: real tasks (tiny HTTP servers) on the local backend, real health
checks, answers read with dnspython and with ``dig``. Scale up and down, a failing health check, and
a canary beside its main group under one service name."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import dns.message
import dns.rdatatype
import httpx
import pytest
import pytest_asyncio

from tests.integration.dns_harness import DnsProcess, until_answer
from tests.integration.registry_harness import RunningRegistry
from tests.integration.scheduler_harness import (
    SchedulerProcess,
    create_group,
    kill_tasks,
    scale,
    task_readable_dir,
)
from tests.tasks import TINYHTTP

pytestmark = pytest.mark.timeout(120)

SICK_DIR = task_readable_dir()
SRV = "_http._tcp.web.local.bay.internal."


@pytest_asyncio.fixture
async def sched(
    registry: RunningRegistry, fresh_stream: str, tmp_path: Path
) -> AsyncIterator[SchedulerProcess]:
    ports = {"BAY_LOCAL_PORT_BEGIN": "23500", "BAY_LOCAL_PORT_END": "23799"}
    proc = SchedulerProcess(registry, fresh_stream, tmp_path, extra_env=ports)
    await proc.start()
    yield proc
    await proc.stop()
    kill_tasks(tmp_path)


@pytest_asyncio.fixture
async def dns_server(
    fresh_stream: str, tmp_path: Path, registry: RunningRegistry
) -> AsyncIterator[DnsProcess]:
    server = DnsProcess(fresh_stream, tmp_path / "dns")
    await server.start()
    yield server
    server.stop()


async def web_group(registry: RunningRegistry, sched: SchedulerProcess, name: str, instances: int) -> None:
    await create_group(
        registry,
        name=name,
        service="web",
        cmd=TINYHTTP,
        env={"BAY_SICK_DIR": str(SICK_DIR)},
        ports=[{"name": "http"}],
        instances=instances,
        resources={"cpus": 0.1, "mem": 16},
        health_check={
            "protocol": "http",
            "path": "/health",
            "grace_period_seconds": 5,
            "interval_seconds": 0.2,
            "timeout_seconds": 0.2,
            "max_consecutive_failures": 2,
        },
    )


async def srv_ports(server: DnsProcess, name: str = SRV) -> set[int]:
    reply = await server.query(name, "SRV")
    return {r.port for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SRV for r in rrset}


async def ready_ports(sched: SchedulerProcess, group: str) -> set[int]:
    return {t.ports["http"] for t in await sched.tasks(group) if t.ready}


async def test_answers_follow_scaling_health_and_a_canary(
    registry: RunningRegistry, sched: SchedulerProcess, dns_server: DnsProcess
) -> None:
    await web_group(registry, sched, "web", 2)
    await web_group(registry, sched, "web-canary", 1)
    await sched.until("web", lambda s: s.ready == 2)
    await sched.until("web-canary", lambda s: s.ready == 1)
    main, canary = await ready_ports(sched, "web"), await ready_ports(sched, "web-canary")
    # both groups under the one service; the canary alone under its group name
    assert await until_answer(lambda: srv_ports(dns_server), main | canary) == main | canary
    one = "_http._tcp.web-canary.group.local.bay.internal."
    assert await srv_ports(dns_server, one) == canary
    # what DNS hands out is really serving
    async with httpx.AsyncClient() as http:
        for port in main | canary:
            assert (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    assert await dns_server.addresses("web.local.bay.internal.") == {"127.0.0.1"}

    await scale(registry, "web", 5)
    await sched.until("web", lambda s: s.ready == 5)
    grown = await ready_ports(sched, "web")
    assert await until_answer(lambda: srv_ports(dns_server), grown | canary) == grown | canary

    await scale(registry, "web", 1)
    await sched.until("web", lambda s: s.running == 1)
    left = await ready_ports(sched, "web")
    assert await until_answer(lambda: srv_ports(dns_server), left | canary) == left | canary

    # the canary's only task fails its check: it leaves the answers (before it is replaced)
    (SICK_DIR / f"sick-{next(iter(canary))}").touch()
    gone = await until_answer(lambda: srv_ports(dns_server), lambda p: not p & canary)
    assert left <= gone
    await sched.until("web-canary", lambda s: s.ready == 1 and s.unhealthy == 0, timeout=20)
    replaced = await ready_ports(sched, "web-canary")
    assert replaced != canary
    assert await until_answer(lambda: srv_ports(dns_server), left | replaced) == left | replaced


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig (bind9-dnsutils) is installed by `make setup`")
async def test_dig_reads_the_same_answers(
    registry: RunningRegistry, sched: SchedulerProcess, dns_server: DnsProcess
) -> None:
    await web_group(registry, sched, "web", 3)
    await sched.until("web", lambda s: s.ready == 3)
    ports = await ready_ports(sched, "web")
    await until_answer(lambda: srv_ports(dns_server), ports)

    async def dig(*args: str) -> str:
        run = await asyncio.to_thread(
            subprocess.run,
            ["dig", "@127.0.0.1", "-p", str(dns_server.port), "+time=2", "+tries=1", *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    short = await dig("+short", "SRV", SRV)
    rows = [line.split() for line in short.splitlines()]
    assert {int(r[2]) for r in rows} == ports
    assert all(r[3] == "127-0-0-1.host.local.bay.internal." for r in rows)
    assert (await dig("+short", "web.local.bay.internal")).split() == ["127.0.0.1"]
    over_tcp = await dig("+tcp", "+short", "SRV", SRV)
    assert {int(line.split()[2]) for line in over_tcp.splitlines()} == ports
    full = await dig("nothing.local.bay.internal")
    assert "status: NXDOMAIN" in full and "SOA" in full and "flags: qr aa rd" in full
    refused = await dig("example.com")
    assert "status: REFUSED" in refused
    # dig's own EDNS0 and cookie: still answered
    cookie = await dig("+cookie", "+short", "web.local.bay.internal")
    assert cookie.split() == ["127.0.0.1"]

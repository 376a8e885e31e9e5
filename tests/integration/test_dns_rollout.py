"""The DNS process answering by the groups' version targets (issue 11): a canary's SRV weights, a
blue-green switch, a migration between clusters. Real nats-server, real DNS process, real packets;
the targets come as the registry appends them for SetRollout (GroupRolloutChanged)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import dns.rcode
import dns.rdatatype
import pytest
import pytest_asyncio

from tests.integration.dns_harness import DnsProcess, EventWriter, until_answer

pytestmark = pytest.mark.timeout(120)


@pytest_asyncio.fixture
async def events(fresh_stream: str) -> AsyncIterator[EventWriter]:
    writer = await EventWriter.open(fresh_stream)
    await writer.cluster("local")
    await writer.cluster("eu", backend="mesos")
    yield writer
    await writer.close()


@pytest_asyncio.fixture
async def dns_server(fresh_stream: str, tmp_path: Path, events: EventWriter) -> AsyncIterator[DnsProcess]:
    server = DnsProcess(fresh_stream, tmp_path / "dns")
    await server.start()
    yield server
    server.stop()


async def srv_weights(server: DnsProcess, name: str) -> dict[int, int]:
    reply = await server.query(name, "SRV")
    return {r.port: r.weight for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SRV for r in rrset}


async def test_canary_weights_follow_the_rollout(events: EventWriter, dns_server: DnsProcess) -> None:
    await events.group("web", instances=4, cmd="serve v1")
    for i in range(4):
        await events.launch("web", f"10.0.0.{i + 1}", {"http": 31000 + i})
    await events.group("web", instances=4, cmd="serve v2", kind="GroupUpdated", version=2)
    await events.launch("web", "10.0.1.1", {"http": 32000}, version=2)
    name = "_http._tcp.web.local.bay.internal."
    stable = dict.fromkeys(range(31000, 31004), 2500)
    # v2 runs but is no target yet: it answers under its own name only
    assert await until_answer(lambda: srv_weights(dns_server, name), stable) == stable
    assert await dns_server.addresses("v2.web.group.local.bay.internal.") == {"10.0.1.1"}

    await events.rollout("web", (1, 4, True, None), (2, 1, True, 20.0))
    split = {**dict.fromkeys(range(31000, 31004), 2000), 32000: 2000}  # 20% on the one canary task
    assert await until_answer(lambda: srv_weights(dns_server, name), split) == split
    await events.rollout("web", (1, 4, True, None), (2, 1, True, 60.0))
    step = {**dict.fromkeys(range(31000, 31004), 1000), 32000: 6000}
    assert await until_answer(lambda: srv_weights(dns_server, name), step) == step
    assert len(await dns_server.addresses("web.local.bay.internal.")) == 5


async def test_blue_green_switch_moves_the_service_name_in_one_event(
    events: EventWriter, dns_server: DnsProcess
) -> None:
    await events.group("shop", instances=2, cmd="serve blue")
    blue = {"10.1.0.1", "10.1.0.2"}
    green = {"10.1.1.1", "10.1.1.2"}
    for i, address in enumerate(sorted(blue)):
        await events.launch("shop", address, {"http": 31000 + i})
    await events.group("shop", instances=2, cmd="serve green", kind="GroupUpdated", version=2)
    await events.rollout("shop", (1, 2, True, None), (2, 2, False, None))
    for i, address in enumerate(sorted(green)):
        await events.launch("shop", address, {"http": 32000 + i}, version=2)
    service = "shop.local.bay.internal."
    await dns_server.until_addresses("v2.shop.group.local.bay.internal.", green)
    # green is ready and reachable by its name, but not under the service's or the group's name
    assert await dns_server.addresses(service) == blue
    assert await dns_server.addresses("shop.bay.internal.") == blue
    assert await dns_server.addresses("shop.group.local.bay.internal.") == blue
    assert sorted(await srv_weights(dns_server, f"_http._tcp.{service}")) == [31000, 31001]

    await events.rollout("shop", (1, 2, False, None), (2, 2, True, None))
    # every answer from the append on is the whole blue set or the whole green set: one fold
    # moves the name, never a mixture and never nothing
    deadline = time.monotonic() + 10
    while (seen := await dns_server.addresses(service)) != green:
        assert seen == blue, f"between blue and green: {sorted(seen)}"
        assert time.monotonic() < deadline, "the switch never showed"
    assert await dns_server.addresses("shop.group.local.bay.internal.") == green
    assert await dns_server.addresses("v1.shop.group.local.bay.internal.") == blue  # rollback stays instant

    # blue's target dropped after the delay: its name goes, and the service stays green
    await events.rollout("shop", (2, 2, True, None))
    gone = await until_answer(
        lambda: dns_server.query("v1.shop.group.local.bay.internal."),
        lambda r: r.rcode() == dns.rcode.NXDOMAIN,
    )
    assert not gone.answer
    assert await dns_server.addresses(service) == green


async def test_migration_answers_both_clusters_under_the_service(
    events: EventWriter, dns_server: DnsProcess
) -> None:
    await events.group("api", instances=1)
    await events.launch("api", "10.2.0.1", {"http": 31000})
    await events.group("api", instances=1, cluster="eu", kind="GroupUpdated", version=2)
    await events.launch("api", "10.3.0.1", {"http": 32000}, cluster="eu", version=2)
    await dns_server.until_addresses("v2.api.group.eu.bay.internal.", {"10.3.0.1"})
    assert await dns_server.addresses("api.bay.internal.") == {"10.2.0.1"}  # no target in eu yet

    await events.rollout("api", (1, 1, True, None), (2, 1, True, None))
    both = {"10.2.0.1", "10.3.0.1"}
    assert await dns_server.until_addresses("api.bay.internal.", both) == both
    assert await dns_server.addresses("api.local.bay.internal.") == {"10.2.0.1"}
    assert await dns_server.addresses("api.eu.bay.internal.") == {"10.3.0.1"}
    assert await srv_weights(dns_server, "_http._tcp.api.bay.internal.") == {31000: 5000, 32000: 5000}

    await events.rollout("api", (1, 0, True, None), (2, 1, True, None))  # the source drained
    assert await dns_server.until_addresses("api.bay.internal.", {"10.3.0.1"}) == {"10.3.0.1"}
    gone = await dns_server.query("api.local.bay.internal.")
    assert gone.rcode() == dns.rcode.NXDOMAIN

"""The DNS service of a real ``bay up``: a group scaled through the CLI is found by a real DNS query
on the stack's DNS port, and ``bay dns`` lists the same tasks as answered."""

from __future__ import annotations

import json

import dns.asyncquery
import dns.message
import dns.rdatatype

from tests.e2e.harness import BayUp
from tests.integration.dns_harness import until_answer


async def test_a_scaled_group_resolves_on_the_stacks_dns_port(bay: BayUp) -> None:
    spec = bay.cwd / "dns-web.yaml"
    spec.write_text(
        "name: dns-web\ncmd: exec sleep 600\ninstances: 1\nports: [{name: http}]\n"
        "resources: {cpus: 0.1, mem: 16}\n"
    )

    async def srv_ports() -> set[int]:
        query = dns.message.make_query("_http._tcp.dns-web.local.bay.internal.", "SRV")
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=bay.dns_port, timeout=2.0)
        return {r.port for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SRV for r in rrset}

    try:
        code, _, err = await bay.cli("apply", "-f", str(spec))
        assert code == 0, err
        code, _, err = await bay.cli("scale", "dns-web", "2", "--wait", "--timeout", "30", timeout=40)
        assert code == 0, err
        code, out, err = await bay.cli("tasks", "dns-web", "-o", "json")
        assert code == 0, err
        tasks = json.loads(out)["tasks"]
        ports = {t["ports"]["http"] for t in tasks}
        assert len(ports) == 2

        # the scheduler's events reach the DNS service through the log: ask until it has them
        assert await until_answer(srv_ports, ports, timeout=15) == ports
        query = dns.message.make_query("dns-web.local.bay.internal.", "A")
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=bay.dns_port, timeout=2.0)
        assert {r.address for rrset in reply.answer for r in rrset} == {"127.0.0.1"}  # both run here

        code, out, err = await bay.cli("dns", "dns-web", "--json")
        assert code == 0, err
        listing = json.loads(out)
        assert {t["id"]: t["answered"] for t in listing["tasks"]} == {t["id"]: True for t in tasks}
        async with bay.http() as http:
            assert (await http.get("/healthz")).json()["dns"] is True
    finally:
        await bay.cli("delete", "dns-web")

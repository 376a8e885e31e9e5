"""Metrics of a real ``bay up``: service discovery lists every process, each one it lists answers a
scrape that Prometheus' parser reads, and the series follow real actions (a group applied and
scaled, a DNS query for a missing name, an autoscale policy set)."""

from __future__ import annotations

from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode

from tests.e2e.harness import BayUp
from tests.integration.metrics_scrape import Scrape, scrape
from tests.poll import poll_until

GROUP = "m-web"
PROCESSES = {"registry", "scheduler", "dns", "deployer", "autoscaler", "gateway"}


async def sd(bay: BayUp) -> list[dict[str, Any]]:
    async with bay.http() as http:
        resp = await http.get("/v1/sd/prometheus")
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


async def until_page(address: str, check: Any, what: str) -> Scrape:
    async def look() -> Scrape | None:
        page = await scrape(address)
        return page if check(page) else None

    result: Scrape = await poll_until(look, what, 30.0)
    return result


async def test_every_process_listed_scraped_and_following_what_happens(bay: BayUp) -> None:
    processes = {t["labels"]["bay_service"]: t for t in await sd(bay) if t["labels"]["bay_kind"] == "process"}
    assert set(processes) == PROCESSES
    assert processes["scheduler"]["labels"]["cluster"] == "local"
    assert processes["registry"]["targets"] == [bay.metrics_address("REGISTRY")]
    pages = {name: await scrape(t["targets"][0]) for name, t in processes.items()}
    for name, page in pages.items():
        assert page.value("bay_nats_connected", service=name) == 1, name
        assert page.value("bay_fold_sequence", service=name) is not None, name
        assert page.value("bay_fold_skipped_events_total", service=name) == 0, name

    registry = bay.metrics_address("REGISTRY")
    appends = pages["registry"].value("bay_eventlog_append_seconds_count", service="registry") or 0
    spec = bay.cwd / "m-web.yaml"
    spec.write_text(
        f"name: {GROUP}\ncmd: exec sleep 600\ninstances: 1\nports: [{{name: http}}, {{name: metrics}}]\n"
        "resources: {cpus: 0.1, mem: 16}\n"
    )
    try:
        code, _, err = await bay.cli("apply", "-f", str(spec))
        assert code == 0, err
        page = await scrape(registry)
        assert (page.value("bay_eventlog_append_seconds_count", service="registry") or 0) >= appends + 1

        code, _, err = await bay.cli("scale", GROUP, "2", "--wait", "--timeout", "30", timeout=40)
        assert code == 0, err
        page = await until_page(
            bay.metrics_address("SCHEDULER"),
            lambda p: p.value("bay_group_ready_tasks", group=GROUP) == 2,
            "the scheduler's page: 2 ready",
        )
        assert page.value("bay_group_desired_instances", group=GROUP, cluster="local") == 2
        assert page.value("bay_group_tasks", group=GROUP, state="running") == 2

        tasks = await poll_until(lambda: _tasks_listed(bay), "both tasks in service discovery", 15.0)
        assert {t["labels"]["group"] for t in tasks} == {GROUP}
        assert {t["labels"]["cluster"] for t in tasks} == {"local"}

        dns_page = bay.metrics_address("DNS")
        before = (await scrape(dns_page)).value("bay_dns_queries_total", rcode="nxdomain") or 0
        query = dns.message.make_query("not-a-group.local.bay.internal.", "A")
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=bay.dns_port, timeout=2.0)
        assert reply.rcode() == dns.rcode.NXDOMAIN
        after = (await scrape(dns_page)).value("bay_dns_queries_total", rcode="nxdomain")
        assert after == before + 1

        code, _, err = await bay.cli("autoscale", "set", GROUP, "--min", "1", "--max", "3", "--cpu", "0.6")
        assert code == 0, err
        page = await until_page(
            bay.metrics_address("AUTOSCALER"),
            lambda p: p.value("bay_autoscaler_max_instances", group=GROUP) == 3,
            "the autoscaler's page: the policy's max",
        )
        assert page.value("bay_autoscaler_at_max", group=GROUP) == 0
        deployer = await scrape(bay.metrics_address("DEPLOYER"))
        assert deployer.value("bay_deployments", state="running") == 0
    finally:
        await bay.cli("autoscale", "off", GROUP)
        await bay.cli("delete", GROUP)


async def _tasks_listed(bay: BayUp) -> list[dict[str, Any]] | None:
    tasks = [t for t in await sd(bay) if t["labels"]["bay_kind"] == "task" and t["labels"]["group"] == GROUP]
    return tasks if len(tasks) == 2 else None

"""An event a service cannot fold shows in the gateway's ``/healthz`` and ``/metrics``: for the
registry, the scheduler and the DNS service, each counting it and naming its sequence (issue 10)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from libs.natsserver import free_port
from tests.integration.dns_harness import DnsProcess
from tests.integration.gateway_harness import start_stack
from tests.integration.scheduler_harness import SchedulerProcess, kill_tasks
from tests.integration.test_registry_poison import poison
from tests.poll import poll_until

pytestmark = pytest.mark.timeout(120)

FOLDS = {"registry", "scheduler.local", "dns"}


async def test_a_poisoned_event_shows_in_healthz_and_the_metrics(fresh_stream: str, tmp_path: Path) -> None:
    sched_port, dns_port = free_port(), free_port()
    stack = await start_stack(
        fresh_stream,
        tmp_path,
        schedulers={"local": f"127.0.0.1:{sched_port}"},
        dns_addr=f"127.0.0.1:{dns_port}",
    )
    sched = SchedulerProcess(stack.registry, fresh_stream, tmp_path, port=sched_port)
    dns = DnsProcess(fresh_stream, tmp_path / "dns", grpc_port=dns_port)
    try:
        await sched.start()
        await dns.start()

        async def folds(least: int = 0) -> dict[str, Any] | None:
            got: dict[str, Any] = (await stack.client.get("/healthz")).json()["folds"]
            answered = got.keys() == FOLDS and all(f["sequence"] >= least for f in got.values())
            return got if answered else None

        clean = await poll_until(folds, "every folding service answering", 30)
        assert all(f["skipped"] == 0 and f["last_skipped_sequence"] is None for f in clean.values())

        last = await poison(stack.registry)  # a scale of a group never created, an unknown event type
        seen = await poll_until(lambda: folds(last), f"every service folding up to {last}", 30)
        assert {name: (f["skipped"], f["last_skipped_sequence"]) for name, f in seen.items()} == {
            name: (2, last) for name in FOLDS
        }

        metrics = (await stack.client.get("/metrics")).text
        for name in FOLDS:
            assert re.search(rf'^bay_fold_skipped_events{{service="{name}"}} 2\.0$', metrics, re.M), metrics
            assert re.search(
                rf'^bay_fold_last_skipped_sequence{{service="{name}"}} {last}\.0$', metrics, re.M
            )
    finally:
        dns.stop()
        await sched.stop()
        kill_tasks(tmp_path)
        await stack.stop()

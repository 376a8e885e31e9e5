"""Proof with the real programs: ``bay up --monitoring`` runs Debian's Prometheus and Alertmanager;
a crash-looping group (a command that exits at once) fires ``BayTaskCrashLooping``, which reaches
a webhook receiver run by this test (a real HTTP server) in Alertmanager's documented payload
(version "4", status "firing", the alert's labels with alertname and the group); ``bay alerts``
shows it, and so does the web UI's overview in a real browser (Debian's chromium), on the group's
row; the group fixed (updated to a command that stays up), a "resolved" notification arrives.

The rules Prometheus evaluates here are the shipped ones (deploy/prometheus/bay-rules.yml) with
every ``for`` shortened to a few seconds and nothing else changed (same expressions, labels and
annotations): the shipped durations (minutes) are right for a platform and too long for a test.
Scrapes, evaluations and Alertmanager's grouping run at second intervals for the same reason.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from libs.auth import TokenStore
from libs.natsserver import free_port
from services.cli.stack.monitoring import ALERTMANAGER_BINARIES, SHIPPED_RULES
from tests.browser.chrome import Page, browser_missing, new_driver
from tests.e2e.harness import BAY, BayUp, clean_environment, running_bay, wait_gone
from tests.poll import poll_until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        shutil.which("prometheus") is None or not any(shutil.which(b) for b in ALERTMANAGER_BINARIES),
        reason="Debian's prometheus and prometheus-alertmanager are installed by `make setup`",
    ),
]
FOR = "3s"
ALERT = "BayTaskCrashLooping"
GROUP = "crashy"
#: a webhook URL may carry its receiver's secret: it must not show in `bay up`'s output
HOOK_SECRET = "hook-s3cret-4f9a"
#: the rules about Bay's own processes: quiet on a healthy platform
PLATFORM_ALERTS = {"BaySchedulerDown", "BayDnsDown", "BayDnsAbsent", "BayFoldBehind", "BayNatsDisconnected"}


def rules_for_the_test(path: Path) -> Path:
    """The shipped rules with every ``for`` set to :data:`FOR` (see the module's docstring)."""
    doc = yaml.safe_load(SHIPPED_RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = FOR
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class Receiver:
    """A webhook receiver: every notification Alertmanager POSTs, as parsed JSON."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.payloads)

    def about(self, status: str) -> list[dict[str, Any]]:
        """Notifications of the crash loop of GROUP with this status."""
        return [
            p
            for p in self.received()
            if p.get("status") == status
            and any(
                a["labels"].get("alertname") == ALERT and a["labels"].get("group") == GROUP
                for a in p["alerts"]
            )
        ]


@contextmanager
def webhook_receiver() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.payloads.append({"_path": self.path, **json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}/hook/{HOOK_SECRET}"
    finally:
        server.shutdown()
        server.server_close()


def overview_shows_the_alert(bay: BayUp) -> None:
    """The overview, logged in as a viewer in headless Chromium, shows the firing alert on the
    group's row and in the list of firing alerts (what Prometheus and Alertmanager said, no stand-in)."""
    from selenium.webdriver.common.by import By

    missing = browser_missing()
    assert not missing, missing
    token = TokenStore(bay.data_dir / "tokens.json").create("alert-watcher", "viewer")
    driver = new_driver()
    try:
        page = Page(driver, bay.gateway_url)
        page.login(token)
        row = f"tr[data-group='{GROUP}']"
        badge = page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} .alert"), "the alert on the row")
        assert ALERT in badge[0].text
        listed = page.wait(
            lambda d: d.find_elements(By.CSS_SELECTOR, f"#alerts li[data-alert='{ALERT}']"),
            "the alert listed",
        )
        assert GROUP in listed[0].text
        page.screenshot("overview-real-alert")
        problems = page.console_problems()
        assert not problems, f"the browser's console reported: {problems}"
    finally:
        driver.quit()


def crash_alert(payload: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in payload["alerts"] if a["labels"]["alertname"] == ALERT)


async def test_crash_loop_fires_reaches_the_webhook_and_resolves(tmp_path: Path) -> None:
    with webhook_receiver() as (receiver, url):
        env = {
            "BAY_ALERT_RULES_FILE": str(rules_for_the_test(tmp_path / "rules.yml")),
            "BAY_ALERT_WEBHOOK_URL": url,
            "BAY_PROMETHEUS_LISTEN": f"127.0.0.1:{free_port()}",
            "BAY_ALERTMANAGER_LISTEN": f"127.0.0.1:{free_port()}",
            "BAY_PROMETHEUS_SCRAPE_INTERVAL_SECONDS": "0.5",
            "BAY_PROMETHEUS_EVALUATION_INTERVAL_SECONDS": "0.5",
            "BAY_PROMETHEUS_SD_REFRESH_SECONDS": "1",
            "BAY_ALERTMANAGER_GROUP_WAIT_SECONDS": "1",
            "BAY_ALERTMANAGER_GROUP_INTERVAL_SECONDS": "1",
            "BAY_ALERTMANAGER_REPEAT_INTERVAL_SECONDS": "3600",
        }
        async with running_bay(tmp_path, args=("--monitoring",), env_extra=env, timeout=60) as bay:
            line = await bay.wait_for(r"^bay: monitoring — prometheus (\S+), alertmanager (\S+),")
            assert line.group(1) == f"http://{env['BAY_PROMETHEUS_LISTEN']}"
            assert "prometheus" in bay.pids() and "alertmanager" in bay.pids()
            # Prometheus scrapes every Bay process the gateway's service discovery lists
            services = {"registry", "scheduler", "dns", "deployer", "autoscaler", "gateway"}
            async with httpx.AsyncClient(base_url=line.group(1), timeout=5) as prom:

                async def all_up() -> list[dict[str, Any]] | None:
                    active = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
                    up = [t for t in active if t["labels"].get("job") == "bay" and t["health"] == "up"]
                    return up if {t["labels"]["bay_service"] for t in up} == services else None

                targets = await poll_until(all_up, "every Bay process scraped", 60)
            scheduler = next(t for t in targets if t["labels"]["bay_service"] == "scheduler")
            assert scheduler["labels"]["cluster"] == "local"
            assert scheduler["scrapeUrl"] == f"http://{bay.metrics_address('SCHEDULER')}/metrics"
            spec = {
                "name": GROUP,
                "cmd": "echo starting; exit 3",
                "instances": 1,
                "resources": {"cpus": 0.1, "mem": 16},
            }
            async with bay.http() as http:
                resp = await http.post("/v1/groups", json=spec)
                assert resp.status_code == 201, resp.text

                fired = await poll_until(lambda: receiver.about("firing"), f"{ALERT} notified", 90)
                payload = fired[0]
                assert payload["_path"] == f"/hook/{HOOK_SECRET}"
                assert payload["version"] == "4" and payload["status"] == "firing"
                assert payload["receiver"] == "webhook"
                assert (
                    payload["groupLabels"]["alertname"] == ALERT and payload["groupLabels"]["group"] == GROUP
                )
                alert = crash_alert(payload)
                assert alert["status"] == "firing"
                assert alert["labels"]["severity"] == "critical" and alert["labels"]["cluster"] == "local"
                assert alert["annotations"]["summary"].startswith(
                    f"Group {GROUP} (cluster local) is crash-looping"
                )
                assert alert["startsAt"] and alert["generatorURL"]

                # what `bay alerts` shows (the gateway reads the same Alertmanager)
                resp = await http.get("/v1/alerts")
                assert resp.status_code == 200, resp.text
                listed = [a for a in resp.json()["alerts"] if a["name"] == ALERT]
                assert [a["group"] for a in listed] == [GROUP], resp.json()
                # and nothing about the platform itself, which is healthy (the `for`s are 3 s here)
                firing = {a["name"] for a in resp.json()["alerts"]}
                assert not firing & PLATFORM_ALERTS, resp.json()
                code, out, err = await bay.cli("alerts")
                assert code == 0, err
                row = next(line.split() for line in out.splitlines() if line.startswith(ALERT))
                assert row[:3] == [ALERT, GROUP, "critical"], out
                await asyncio.to_thread(overview_shows_the_alert, bay)

                # fixed: a command that stays up; the crash loop resolves
                fixed = {**spec, "cmd": "exec sleep 600"}
                resp = await http.put(f"/v1/groups/{GROUP}", json=fixed)
                assert resp.status_code == 200, resp.text
                resolved = await poll_until(lambda: receiver.about("resolved"), f"{ALERT} resolved", 90)
                payload = resolved[0]
                assert payload["version"] == "4" and payload["status"] == "resolved"
                alert = crash_alert(payload)
                assert alert["status"] == "resolved" and alert["labels"]["group"] == GROUP
                assert alert["endsAt"] > alert["startsAt"]

                async def gone() -> bool:
                    body = (await http.get("/v1/alerts")).json()
                    return not any(a["name"] == ALERT for a in body["alerts"])

                await poll_until(gone, f"{ALERT} no longer listed", 30)
            pids = bay.pids()
            assert await bay.terminate(30) == 0
            assert not [line for line in bay.lines if HOOK_SECRET in line]
            for name in ("prometheus", "alertmanager"):
                await wait_gone(pids[name], 5)


async def test_monitoring_without_prometheus_installed_says_so_at_once(tmp_path: Path) -> None:
    """A PATH without Prometheus (only the virtualenv's programs): ``bay up --monitoring`` exits 1
    before it starts anything, saying what is missing and how it is installed."""
    env = {
        **clean_environment(),
        "PATH": str(Path(BAY).parent),
        "BAY_DATA_DIR": str(tmp_path / ".bay"),
        "BAY_GATEWAY_LISTEN": f"127.0.0.1:{free_port()}",
        "BAY_NATS_PORT": str(free_port()),
    }
    proc = await asyncio.create_subprocess_exec(
        BAY, "up", "--monitoring", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1, out
    assert "error: --monitoring needs prometheus, which is not installed" in out.decode()
    assert "make setup" in out.decode() and "started" not in out.decode()


async def test_without_the_flag_nothing_extra_runs(bay: BayUp) -> None:
    """The shared ``bay up`` (no --monitoring): no Prometheus, no Alertmanager, and the gateway
    says it has none."""
    assert not {"prometheus", "alertmanager"} & set(bay.pids())
    assert not any(line.startswith("bay: monitoring") for line in bay.lines)
    async with bay.http() as http:
        resp = await http.get("/v1/alerts")
    assert resp.status_code == 200 and resp.json() == {"configured": False, "alerts": []}

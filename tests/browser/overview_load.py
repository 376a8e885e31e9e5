"""The overview with many groups: making them through the REST API, and timing the page in the
browser (``tests/browser/test_ui_figures.py`` and ``python -m bench ui`` share it).

Times are the page's own ``performance.now()`` (milliseconds from navigation start): first render
when all the bars are in the DOM (after ``GET /v1/overview``), live when the stream's first answer
is applied; then a scale of one group, from the request to its changed row.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from tests.browser.chrome import Page

#: a task that does nothing for a long while
SLEEPER = "exec sleep 600"
PROBE = "probe"


def make_group(api: httpx.Client, name: str, instances: int, **extra: Any) -> None:
    spec = {"name": name, "cmd": SLEEPER, "instances": instances, "resources": {"cpus": 0.01, "mem": 8}}
    spec.update(extra)
    response = api.post("/v1/groups", json=spec)
    assert response.status_code in (200, 201), response.text


def make_groups(api: httpx.Client, count: int) -> int:
    """``count`` groups of ``instances: 0`` (a spec and a bar each, no task), ``many-0000``...,
    and the group ``probe`` (made only where missing); the groups there are in all."""
    have = {g["spec"]["name"] for g in api.get("/v1/groups").json()["groups"]}
    wanted = [f"many-{i:04d}" for i in range(count) if f"many-{i:04d}" not in have]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: make_group(api, name, 0), wanted))
    if PROBE not in have:
        make_group(api, PROBE, 0)
    return len(api.get("/v1/groups").json()["groups"])


@dataclass(frozen=True)
class OverviewTimes:
    bars: int
    first_render_ms: float
    live_ms: float
    change_ms: float

    def __str__(self) -> str:
        return (
            f"{self.bars} groups: first render {self.first_render_ms:.0f} ms, live {self.live_ms:.0f} ms "
            f"(from navigation start); a scale to the row changed: {self.change_ms:.0f} ms"
        )


def measure_overview(page: Page) -> OverviewTimes:
    """Open the overview on a logged-in ``page`` and time it; the probe is scaled up by one."""
    from selenium.webdriver.common.by import By

    page.open("/ui/")
    marks = page.wait(
        lambda d: (
            (m := d.execute_script("return window.bayOverview")) and m["live"] and m["firstRender"] and m
        ),
        "the overview rendered and live",
        timeout=60,
    )
    bars = len(page.driver.find_elements(By.CSS_SELECTOR, "#groups tbody tr .health"))
    probe = f"tr[data-group='{PROBE}'] .health"
    wanted = int(page.driver.find_element(By.CSS_SELECTOR, probe).get_attribute("data-desired")) + 1
    sent = page.js("return performance.now()")
    answer = page.fetch(f"/v1/groups/{PROBE}/scale", "POST", {"instances": wanted})
    assert answer["status"] == 200, answer
    page.wait(
        lambda d: d.find_element(By.CSS_SELECTOR, probe).get_attribute("data-desired") == str(wanted),
        f"the probe's bar wanting {wanted}",
    )
    applied = page.js(f"return window.bayOverview.applied['{PROBE}']")
    return OverviewTimes(bars, marks["firstRender"], marks["live"], applied - sent)

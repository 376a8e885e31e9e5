"""``python -m bench ui``: the web UI's overview with 1,000 groups in headless Chromium.

A real ``bay up`` in a temporary directory; the groups are made through the REST API
(``instances: 0``: a spec and a bar each, no task) plus one ``probe`` group; the page is opened
three times by Debian's Chromium through Selenium (the browser tests' :mod:`tests.browser.chrome`)
and timed by the page itself (:mod:`tests.browser.overview_load`): first render, live, and a scale
from the request to its changed row. Medians of the three loads.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path

import httpx

from bench.report import Result
from libs.auth import TokenStore
from tests.browser.chrome import Page, browser_missing, new_driver
from tests.browser.overview_load import OverviewTimes, make_groups, measure_overview
from tests.e2e.harness import running_bay

LOADS = 3


def _measure(gateway: str, token: str, groups: int) -> tuple[int, list[OverviewTimes]]:
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
        total = make_groups(api, groups)
    driver = new_driver()
    try:
        page = Page(driver, gateway)
        page.login(token)
        return total, [measure_overview(page) for _ in range(LOADS)]
    finally:
        driver.quit()


async def run_ui(groups: int = 1_000) -> Result:
    res = Result("ui", f"the web UI's overview with {groups:,} groups in headless Chromium")
    res.params = {"groups": groups, "loads": LOADS, "browser": "Debian chromium + chromium-driver, Selenium"}
    missing = browser_missing()
    if missing:
        res.notes.append(f"skipped: {missing}")
        return res
    with tempfile.TemporaryDirectory(prefix="bay-bench-ui-") as tmp:
        async with running_bay(Path(tmp), timeout=60) as bay:
            token = TokenStore(bay.data_dir / "tokens.json").create("bench-ui", "operator")
            total, runs = await asyncio.to_thread(_measure, bay.gateway_url, token, groups)
    res.params["groups on the page"] = total
    res.add(
        "first render (navigation start → all bars in the DOM)",
        statistics.median(r.first_render_ms for r in runs),
        "ms",
    )
    res.add("live (→ the stream's first answer applied)", statistics.median(r.live_ms for r in runs), "ms")
    res.add("a scale → its row changed", statistics.median(r.change_ms for r in runs), "ms")
    res.notes += [f"load {i + 1}: {r}" for i, r in enumerate(runs)]
    return res

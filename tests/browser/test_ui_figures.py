"""The overview with 1,000 groups: time to first render and to live, measured in the browser.

The groups are made through the REST API before the page loads: 1,000 groups of ``instances: 0``
(a spec each, no task: the page draws a bar per group whatever runs), plus one group ``probe``
that the test scales once the page is live. Times are the page's own ``performance.now()``
(milliseconds from navigation start): ``firstRender`` when all the bars are in the DOM (after
``GET /v1/overview``), ``live`` when the stream's first answer is applied, and then how long a
scale takes from the request to the changed row. Printed under "web UI figures".
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.browser.conftest import Page
from tests.browser.test_ui import make_group

GROUPS = 1000


def test_overview_with_1000_groups(
    operator_page: Page, api: httpx.Client, record_property: pytest.RecordProperty
) -> None:
    from selenium.webdriver.common.by import By

    have = {g["spec"]["name"] for g in api.get("/v1/groups").json()["groups"]}
    wanted = [f"many-{i:04d}" for i in range(GROUPS) if f"many-{i:04d}" not in have]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: make_group(api, name, 0), wanted))
    if "probe" not in have:
        make_group(api, "probe", 0)
    total = len(api.get("/v1/groups").json()["groups"])
    assert total >= GROUPS + 1

    page = operator_page
    page.open("/ui/")
    marks = page.wait(
        lambda d: (
            (m := d.execute_script("return window.bayOverview")) and m["live"] and m["firstRender"] and m
        ),
        "the overview rendered and live",
        timeout=60,
    )
    bars = len(page.driver.find_elements(By.CSS_SELECTOR, "#groups tbody tr .health"))
    assert bars >= total
    sent = page.js("return performance.now()")
    answer = page.fetch("/v1/groups/probe/scale", "POST", {"instances": 1})
    assert answer["status"] == 200, answer
    applied = page.wait(
        lambda d: d.execute_script("return window.bayOverview.applied['probe'] || null"),
        "the scale applied to the probe's row",
    )
    page.wait(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "tr[data-group='probe'] .health").get_attribute("data-desired")
            == "1"
        ),
        "the probe's bar wanting 1",
    )
    figure = (
        f"{bars} groups: first render {marks['firstRender']:.0f} ms, live {marks['live']:.0f} ms "
        f"(from navigation start); a scale to the row changed: {applied - sent:.0f} ms"
    )
    record_property("figure", figure)
    print(figure)
    page.screenshot("overview-1000")

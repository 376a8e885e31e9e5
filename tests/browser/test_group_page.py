"""The group page in a real browser against a real ``bay up``: a task's log followed live, a version
rolled back with one click and the version changing live, time travel to an earlier event showing
the earlier instance count (and back to live), a viewer who can change nothing. Screenshots:
docs/screenshots/group.png and docs/screenshots/time-travel.png."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import Page

#: prints a numbered line five times a second, forever: a log that grows while it is followed
TALKER = 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done'
SMALL = {"cpus": 0.01, "mem": 8}


def text(page: Page, element_id: str) -> str:
    found: str = page.js(
        "const n = document.getElementById(arguments[0]); return n ? n.textContent : '';", element_id
    )
    return found


def click(page: Page, css: str, what: str) -> None:
    """Click an enabled element, found and clicked in one step in the page (tables are drawn
    anew as the group changes: an element found earlier may be gone by the time it is clicked)."""
    script = (
        "const b = document.querySelector(arguments[0]);"
        "if (!b || b.disabled) return false; b.click(); return true;"
    )
    page.wait(lambda d: page.js(script, css), what)


def enabled(page: Page, css: str) -> list[bool]:
    found: list[bool] = page.js(
        "return [...document.querySelectorAll(arguments[0])].map((b) => !b.disabled);", css
    )
    return found


def whole_page_screenshot(page: Page, name: str) -> None:
    """``page.screenshot`` of the whole page: the window made as tall as the page for it."""
    size = page.driver.get_window_size()
    height = page.js("return document.documentElement.scrollHeight")
    page.driver.set_window_size(size["width"], min(int(height) + 120, 4000))
    try:
        page.screenshot(name)
    finally:
        page.driver.set_window_size(size["width"], size["height"])


def travel(page: Page, sequence: int) -> None:
    """Pick an event in the time-travel list, as a person would with the select."""
    listed = "return [...document.querySelectorAll('#tt-event option')].some((o) => o.value === arguments[0])"
    page.wait(lambda d: page.js(listed, str(sequence)), f"event {sequence} in the time-travel list")
    page.js(
        "const s = document.getElementById('tt-event');"
        "s.value = arguments[0]; s.dispatchEvent(new Event('change'));",
        str(sequence),
    )


def ticks(page: Page) -> list[int]:
    """The tick numbers in the log panel."""
    return [int(line.split()[1]) for line in text(page, "log").splitlines() if line.startswith("tick ")]


def group_now(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"/v1/groups/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_log_rollback_and_time_travel_on_the_group_page(operator_page: Page, api: httpx.Client) -> None:
    from selenium.webdriver.common.by import By

    page = operator_page
    spec = {"name": "shop", "cmd": TALKER, "instances": 1, "resources": SMALL}
    created = api.post("/v1/groups", json=spec)
    assert created.status_code == 201, created.text
    page.open("/ui/groups/shop")
    page.wait(lambda d: text(page, "ready-count") == "1", "one ready task on the page")
    assert text(page, "version") == "1"
    assert "cmd:" in text(page, "spec-yaml") and "tick" in text(page, "spec-yaml")

    # a task's log, followed live: new ticks arrive without a reload
    click(page, "#tasks-table button.logs", "the log button of a task")
    page.wait(lambda d: len(ticks(page)) >= 2, "the task's log on the page")
    first = max(ticks(page))
    page.wait(lambda d: max(ticks(page)) >= first + 5, "new log lines arriving live")
    assert text(page, "log-state") == "following"

    # scale (through the API): the page follows it live
    assert api.post("/v1/groups/shop/scale", json={"instances": 3}).status_code == 200
    page.wait(lambda d: text(page, "instances") == "3" and text(page, "ready-count") == "3", "3 ready, live")

    # a new version, then a one-click rollback to v1: the version changes live (v3 = v1's spec)
    updated = api.put("/v1/groups/shop", json={**group_now(api, "shop")["spec"], "env": {"COLOUR": "blue"}})
    assert updated.status_code == 200, updated.text
    page.wait(lambda d: text(page, "version") == "2", "version 2 shown live")
    page.wait(lambda d: "COLOUR" in text(page, "diff-text"), "the diff of v1 against v2")
    assert "+   COLOUR: blue" in text(page, "diff-text")
    click(page, "button.rollback[data-version='1']", "the rollback button of v1")
    page.wait(lambda d: text(page, "version") == "3", "version 3 (the rollback) shown live")
    assert group_now(api, "shop")["version"] == 3
    assert "COLOUR" not in text(page, "spec-yaml")
    for chart in ("chart-ready", "chart-cpu", "chart-mem"):  # usage: the scheduler's samples, via the gateway
        drawn = f"return Number(document.getElementById('{chart}').dataset.points || 0) > 0"
        page.wait(lambda d, drawn=drawn: page.js(drawn), f"a line in {chart}")
    whole_page_screenshot(page, "group")

    # time travel: first to the rollback (v3), where v1 and v2 can be seen but not rolled back to
    history = api.get("/v1/groups/shop/history").json()["events"]
    created_at = next(e["sequence"] for e in history if e["type"] == "GroupCreated")
    rolled_at = next(e["sequence"] for e in history if e["type"] == "GroupRolledBack")
    travel(page, rolled_at)
    page.wait(lambda d: d.find_element(By.ID, "past-banner").is_displayed(), "the page marked as past")
    page.wait(
        lambda d: text(page, "version") == "3" and len(enabled(page, "button.rollback")) == 2, "v3 then"
    )
    assert not any(enabled(page, "button.rollback"))
    assert page.js("return document.body.classList.contains('past')")

    # ... then to the event that created the group, when it had one instance
    travel(page, created_at)
    page.wait(lambda d: text(page, "instances") == "1" and text(page, "version") == "1", "the earlier state")
    assert f"#{created_at}" in text(page, "past-text")
    assert not any(enabled(page, "#versions button, #deployment button, #tasks button"))
    assert page.driver.current_url.endswith(f"?at={created_at}")
    whole_page_screenshot(page, "time-travel")

    page.driver.find_element(By.ID, "back-live").click()
    page.wait(lambda d: text(page, "instances") == "3" and text(page, "version") == "3", "back to live")
    assert not page.driver.find_element(By.ID, "past-banner").is_displayed()

    # opened at a time: the same past, from the page's address
    page.open(f"/ui/groups/shop?at={created_at}")
    page.wait(lambda d: text(page, "instances") == "1", "the past from the page's address")


def test_a_viewer_sees_the_group_and_can_change_nothing(viewer_page: Page, api: httpx.Client) -> None:

    spec = {"name": "looked-at", "cmd": "exec sleep 600", "instances": 1, "resources": SMALL}
    assert api.post("/v1/groups", json=spec).status_code == 201
    api.put("/v1/groups/looked-at", json={**spec, "env": {"A": "1"}})
    page = viewer_page
    page.open("/ui/groups/looked-at")
    page.wait(lambda d: text(page, "version") == "2", "the group shown")
    states = page.wait(lambda d: enabled(page, "button.rollback"), "a rollback button")
    assert not any(states)
    refused = page.fetch("/v1/groups/looked-at/rollback", "POST", {"version": 1})
    assert refused["status"] == 403, refused

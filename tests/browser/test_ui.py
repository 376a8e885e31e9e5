"""The web UI in a real browser against a real ``bay up``: log-in, the overview filling live as a
group is scaled from it, a viewer who can change nothing, the events page live with a filter, and
an alert on the overview. Screenshots of each page go to docs/screenshots/."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ALERTED_GROUP, LOGIN_WINDOW_SECONDS, Page, until
from tests.e2e.harness import BayUp

SLEEPER = "exec sleep 600"


def make_group(api: httpx.Client, name: str, instances: int, **extra: Any) -> None:
    spec = {"name": name, "cmd": SLEEPER, "instances": instances, "resources": {"cpus": 0.01, "mem": 8}}
    spec.update(extra)
    response = api.post("/v1/groups", json=spec)
    assert response.status_code in (200, 201), response.text


def bar_counts(page: Page, group: str) -> dict[str, int] | None:
    found = page.js(
        "const bar = document.querySelector(`tr[data-group='${arguments[0]}'] .health`);"
        "return bar ? {...bar.dataset} : null;",
        group,
    )
    return {k: int(v) for k, v in found.items()} if found else None


def test_login_refuses_a_bad_token_and_keeps_the_cookie_from_scripts(
    browser: Page, tokens: dict[str, str]
) -> None:
    from selenium.webdriver.common.by import By

    browser.console_problems()
    browser.driver.delete_all_cookies()
    browser.open("/ui/")
    browser.wait(lambda d: "/ui/login" in d.current_url, "sent to the log-in page")
    browser.driver.find_element(By.ID, "token").send_keys("bay_not-a-token")
    browser.driver.find_element(By.ID, "login").click()
    # the page before the post has the (hidden, empty) element too: wait for the answer's
    browser.wait(lambda d: d.find_element(By.ID, "login-error").text == "unknown token", "the error shown")
    assert browser.driver.get_cookie("bay_session") is None
    browser.screenshot("login")

    browser.login(tokens["operator"])
    browser.wait(lambda d: d.current_url.endswith("/ui/"), "the overview after logging in")
    browser.wait(lambda d: d.find_element(By.ID, "role").text == "operator", "the role in the top bar")
    cookie = browser.driver.get_cookie("bay_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "bay_session" not in browser.js("return document.cookie")
    html = browser.driver.page_source
    assert tokens["operator"] not in html
    session = browser.fetch("/ui/session")
    assert session["status"] == 200 and tokens["operator"] not in session["body"]
    assert not browser.console_problems()


def test_a_group_fills_live_as_it_is_scaled_from_the_overview(operator_page: Page, api: httpx.Client) -> None:
    from selenium.webdriver.common.by import By

    # its tasks are ready once a file exists: the bar shows them starting first, then ready
    gate = Path(tempfile.mkdtemp(prefix="bay-ui-gate-"))
    gate.chmod(0o755)
    check = {
        "protocol": "command",
        "command": f"test -e {gate}/ready",
        "grace_period_seconds": 120,
        "interval_seconds": 0.5,
        "timeout_seconds": 0.5,
    }
    make_group(api, "fill", 0, health_check=check)
    page = operator_page
    page.open("/ui/")
    page.wait(lambda d: bar_counts(page, "fill") is not None, "the group's row")
    page.wait(lambda d: "live" in d.find_element(By.ID, "live").get_attribute("class"), "the stream open")
    page.js("window.notReloaded = true;")  # gone if the page reloads
    # every bar the row shows from now on, as the page draws it
    page.js(
        """
        window.seen = [];
        const body = document.querySelector('#groups tbody');
        new MutationObserver(() => {
          const bar = document.querySelector("tr[data-group='fill'] .health");
          if (bar) window.seen.push(bar.dataset.ready + '/' + bar.dataset.desired);
        }).observe(body, {childList: true, subtree: true});
        """
    )
    row = page.driver.find_element(By.CSS_SELECTOR, "tr[data-group='fill']")
    field = row.find_element(By.CSS_SELECTOR, ".scale-input")
    field.clear()
    field.send_keys("3")
    row.find_element(By.CSS_SELECTOR, "button.scale").click()
    starting = page.wait(
        lambda d: (c := bar_counts(page, "fill")) and c["desired"] == 3 and c["starting"] == 3 and c,
        "3 starting in the bar",
    )
    assert starting["ready"] == 0
    page.screenshot("overview-starting")
    (gate / "ready").touch()
    page.wait(lambda d: (bar_counts(page, "fill") or {}).get("ready") == 3, "3 ready in the bar")
    counts = bar_counts(page, "fill")
    assert counts is not None and counts["desired"] == 3 and counts["waiting"] == counts["starting"] == 0
    assert page.js("return window.notReloaded === true"), "the page reloaded"
    seen = page.js("return window.seen")
    assert seen[-1] == "3/3" and "0/3" in seen, f"the bar did not fill: {seen}"
    assert api.get("/v1/groups/fill").json()["spec"]["instances"] == 3
    ready = page.driver.find_element(By.CSS_SELECTOR, "tr[data-group='fill'] .ready-count").text
    assert ready == "3/3"
    assert "null" not in page.driver.find_element(By.ID, "groups").text
    hosts = page.driver.find_elements(By.CSS_SELECTOR, "#clusters tr[data-host]")
    assert hosts and "used" in hosts[0].text
    page.screenshot("overview")


def test_a_viewer_sees_the_overview_but_cannot_scale(
    viewer_page: Page, api: httpx.Client, tokens: dict[str, str], browser_bay: BayUp
) -> None:
    from selenium.webdriver.common.by import By

    make_group(api, "watched", 1)
    page = viewer_page
    page.open("/ui/")
    page.wait(lambda d: bar_counts(page, "watched") is not None, "the group's row")
    page.wait(lambda d: d.find_element(By.ID, "role").text == "viewer", "the role in the top bar")
    button = page.driver.find_element(By.CSS_SELECTOR, "tr[data-group='watched'] button.scale")
    assert not button.is_enabled()
    # the API refuses the viewer's session too, with the CSRF header and all
    refused = page.fetch("/v1/groups/watched/scale", "POST", {"instances": 5})
    assert refused["status"] == 403, refused
    assert "has role viewer" in json.loads(refused["body"])["message"]
    assert api.get("/v1/groups/watched").json()["spec"]["instances"] == 1
    page.screenshot("overview-viewer")


def test_a_change_with_the_cookie_needs_the_csrf_header(
    browser_bay: BayUp, api: httpx.Client, tokens: dict[str, str]
) -> None:
    make_group(api, "guarded", 0)
    with httpx.Client(base_url=browser_bay.gateway_url, timeout=10.0) as client:
        login = client.post("/ui/login", data={"token": tokens["operator"]}, follow_redirects=False)
        assert login.status_code == 303
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        csrf = client.get("/ui/session").json()["csrf"]
        assert client.get("/v1/groups/guarded").status_code == 200  # reads: the cookie alone

        bare = client.post("/v1/groups/guarded/scale", json={"instances": 2})
        assert bare.status_code == 403
        assert "X-CSRF-Token" in bare.json()["message"]
        wrong = client.post("/v1/groups/guarded/scale", json={"instances": 2}, headers={"X-CSRF-Token": "x"})
        assert wrong.status_code == 403
        # a cross-site form post: a form body, an Origin of another site, no header
        form = client.post(
            "/v1/groups/guarded/scale",
            content="instances=2",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"},
        )
        assert form.status_code == 403
        assert api.get("/v1/groups/guarded").json()["spec"]["instances"] == 0

        done = client.post("/v1/groups/guarded/scale", json={"instances": 1}, headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200, done.text
        assert api.get("/v1/groups/guarded").json()["spec"]["instances"] == 1

        for header in (
            "content-security-policy",
            "x-content-type-options",
            "referrer-policy",
            "x-frame-options",
        ):
            assert header in bare.headers and header in client.get("/ui/").headers
        assert "script-src 'self'" in bare.headers["content-security-policy"]

        out = client.post("/ui/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert client.get("/v1/groups/guarded").status_code == 401  # the session is gone


def test_failed_logins_are_rate_limited_per_address(browser_bay: BayUp, tokens: dict[str, str]) -> None:
    """The guesser connects from 127.0.0.2 (still the loopback), so the browser of the other tests,
    on 127.0.0.1, is not held back: that it is not is part of the test."""
    guesser = httpx.Client(
        base_url=browser_bay.gateway_url,
        timeout=10.0,
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
    )
    other = httpx.Client(base_url=browser_bay.gateway_url, timeout=10.0)
    with guesser, other:
        statuses = [guesser.post("/ui/login", data={"token": "wrong"}).status_code for _ in range(6)]
        assert statuses[-1] == 429, statuses
        assert 401 in statuses
        limited = guesser.post("/ui/login", data={"token": tokens["operator"]})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) <= LOGIN_WINDOW_SECONDS
        assert "127.0.0.2" in limited.text and tokens["operator"] not in limited.text
        assert other.post("/ui/login", data={"token": tokens["operator"]}).status_code == 303
        # once the window has passed, a good token is taken again
        until(
            lambda: guesser.post("/ui/login", data={"token": tokens["operator"]}).status_code == 303,
            "a log-in taken again after the window",
            timeout=LOGIN_WINDOW_SECONDS + 5,
        )


def test_the_events_page_shows_a_new_event_live_with_a_filter(operator_page: Page, api: httpx.Client) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    make_group(api, "evented", 0)
    make_group(api, "other", 0)
    page = operator_page
    page.open("/ui/events?group=evented&type=GroupScaled")
    page.wait(lambda d: d.find_element(By.ID, "live").text == "live", "the stream open")
    page.js("window.notReloaded = true;")
    assert api.post("/v1/groups/other/scale", json={"instances": 1}).status_code == 200
    assert api.post("/v1/groups/evented/scale", json={"instances": 1, "reason": "ui test"}).status_code == 200

    def top_row(d: Any) -> Any:
        rows = d.find_elements(By.CSS_SELECTOR, "#events tbody tr")
        return rows[0] if rows and "evented" in rows[0].text else None

    row = page.wait(top_row, "the GroupScaled event of 'evented' on top")
    assert row.get_attribute("data-type") == "GroupScaled"
    assert "ui-operator" in row.find_element(By.CSS_SELECTOR, ".actor").text
    texts = [r.text for r in page.driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")]
    assert texts and all("evented" in t and "GroupScaled" in t for t in texts), texts
    assert page.js("return window.notReloaded === true")
    # the actor filter: another actor's events only
    field = page.driver.find_element(By.ID, "filter-actor")
    field.send_keys("nobody")
    page.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "#events tbody tr"), "no event of 'nobody'")
    field.send_keys(Keys.BACKSPACE * len("nobody"))  # clear() fires no input event
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#events tbody tr"), "the events back")
    page.open("/ui/events")
    page.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#events tbody tr")) > 3, "the history")
    page.screenshot("events")


def test_a_firing_alert_shows_on_the_overview(operator_page: Page, api: httpx.Client) -> None:
    """The platform's gateway is given a fake Alertmanager API (``FakeAlertmanager`` in the
    conftest: one firing alert naming a group) as ``BAY_ALERTMANAGER_URL``; the real end-to-end
    alert proof, with a real Prometheus and Alertmanager, is helper alerting's. ``GET /v1/alerts``
    (alerting's) reads it; where that route is not on the branch yet the gateway answers 404, and
    the page must show that as no alerts at all (no error): checked, then the test skips."""
    from selenium.webdriver.common.by import By

    make_group(api, ALERTED_GROUP, 0)
    answer = api.get("/v1/alerts")
    page = operator_page
    page.open("/ui/")
    page.wait(lambda d: bar_counts(page, ALERTED_GROUP) is not None, "the group's row")
    row = f"tr[data-group='{ALERTED_GROUP}']"
    if answer.status_code == 404:
        assert not page.driver.find_elements(By.CSS_SELECTOR, f"{row} .alert")
        assert page.driver.find_element(By.ID, "alerts").get_attribute("hidden") is not None
        assert page.driver.find_element(By.ID, "overview-error").get_attribute("hidden") is not None
        pytest.skip(
            "GET /v1/alerts is not on this branch (helper alerting builds it): 404 shown as no alerts"
        )
    assert answer.status_code == 200 and answer.json()["configured"], answer.text
    badge = page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} .alert"), "the alert on the row")
    assert "BayGroupNotReady" in badge[0].text
    listed = page.driver.find_element(By.CSS_SELECTOR, "#alerts li[data-alert='BayGroupNotReady']")
    assert ALERTED_GROUP in listed.text
    page.screenshot("overview-alert")


def test_event_history_the_latest_by_actor(api: httpx.Client) -> None:
    """What the events page asks for its history: the last N events of an actor, oldest first."""
    make_group(api, "historic", 0)
    for n in (1, 2, 3):
        assert api.post("/v1/groups/historic/scale", json={"instances": n}).status_code == 200
    query = {"latest": "true", "limit": 2, "actor": "ui-operator"}

    def written() -> Any:  # the audit trail is written by its own process, a moment later
        page = api.get("/v1/events", params=query).json()
        return page if [e["data"].get("instances") for e in page["events"]] == [2, 3] else None

    page = until(written, "the last two scales in the history")
    events = page["events"]
    assert all(e["actor"] == "ui-operator" for e in events)
    assert events[0]["sequence"] < events[1]["sequence"] and page["next_after"] is None

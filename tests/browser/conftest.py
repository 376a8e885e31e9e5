"""Browser tests of the web UI: headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
installed by ``install/tools.sh``) driven by Selenium, against a real ``bay up``.

The tests are plain (sync) functions: Selenium blocks, so ``bay up`` runs on an event loop of its
own in a thread (:class:`LoopThread`), whose reader keeps draining its output while a test waits
on the browser. What a test module uses:

- ``browser_bay``: the running platform (:class:`tests.e2e.harness.BayUp`), one per session;
- ``tokens``: ``{"operator": ..., "viewer": ...}``, plain tokens made in its tokens file;
- ``operator_page`` / ``viewer_page``: a :class:`Page`, logged in through the real form;
- ``page.screenshot("overview")`` saves ``docs/screenshots/overview.png``.

Every page test fails on a CSP violation or an uncaught script error in the browser's console
(:meth:`Page.console_problems`, checked after each test by the ``page`` fixtures).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest

from libs.auth import TokenStore
from libs.natsserver import free_port
from tests.browser.chrome import Page, browser_missing, new_driver
from tests.e2e.harness import BayUp, start_bay
from tests.figures import print_figures

#: a short login window, so the rate-limit test can see it end
LOGIN_WINDOW_SECONDS = 5

T = TypeVar("T")


class LoopThread:
    """An event loop in a thread: ``run(coro)`` from sync code, waiting for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bay-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="session")
def bay_loop() -> Iterator[LoopThread]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    loop = LoopThread()
    yield loop
    loop.close()


#: the group the fake Alertmanager's alert names
ALERTED_GROUP = "alerted"


class FakeAlertmanager(BaseHTTPRequestHandler):
    """Alertmanager's API v2 ``GET /api/v2/alerts`` with one firing alert: a stand-in for the page
    tests only (the real Alertmanager runs in helper alerting's end-to-end test)."""

    ALERTS = [
        {
            "labels": {"alertname": "BayGroupNotReady", "severity": "critical", "group": ALERTED_GROUP},
            "annotations": {
                "summary": f"group {ALERTED_GROUP} has fewer ready tasks than desired",
                "description": "0 of 1 ready for 5m",
            },
            "startsAt": "2026-12-04T20:00:00.000Z",
            "endsAt": "2026-12-04T21:00:00.000Z",
            "updatedAt": "2026-12-04T20:00:00.000Z",
            "generatorURL": "",
            "fingerprint": "0123456789abcdef",
            "receivers": [{"name": "default"}],
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []},
        }
    ]

    def do_GET(self) -> None:
        found = self.path.startswith("/api/v2/alerts")
        body = json.dumps(self.ALERTS if found else []).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture(scope="session")
def alertmanager(bay_loop: LoopThread) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeAlertmanager)
    thread = threading.Thread(target=server.serve_forever, name="fake-alertmanager", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser_bay(
    bay_loop: LoopThread, alertmanager: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BayUp]:
    cwd = tmp_path_factory.mktemp("bay-browser")
    env = {
        "BAY_UI_LOGIN_WINDOW_SECONDS": str(LOGIN_WINDOW_SECONDS),
        "BAY_ALERTMANAGER_URL": alertmanager,
    }
    bay = bay_loop.run(start_bay(cwd, env_extra=env, timeout=60.0))
    try:
        yield bay
    finally:
        bay_loop.run(bay.kill_leftovers(), 60)


@pytest.fixture(scope="session")
def tokens(browser_bay: BayUp) -> dict[str, str]:
    """Plain tokens of each role, made in the platform's tokens file (the gateway re-reads it)."""
    store = TokenStore(browser_bay.data_dir / "tokens.json")
    return {role: store.create(f"ui-{role}", role) for role in ("viewer", "operator")}


@pytest.fixture(scope="session")
def api(browser_bay: BayUp, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    """The REST API as the operator, with its token (not through a browser session)."""
    headers = {"Authorization": f"Bearer {tokens['operator']}"}
    with httpx.Client(base_url=browser_bay.gateway_url, headers=headers, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="session")
def browser(browser_bay: BayUp) -> Iterator[Page]:
    """One Chromium for the session (each page fixture logs in afresh on it)."""
    driver = new_driver()
    try:
        yield Page(driver, browser_bay.gateway_url)
    finally:
        driver.quit()


def _page_as(browser: Page, token: str) -> Iterator[Page]:
    browser.console_problems()  # what earlier tests left is theirs
    browser.login(token)
    yield browser
    problems = browser.console_problems()
    assert not problems, f"the browser's console reported: {problems}"


@pytest.fixture
def operator_page(browser: Page, tokens: dict[str, str]) -> Iterator[Page]:
    yield from _page_as(browser, tokens["operator"])


@pytest.fixture
def viewer_page(browser: Page, tokens: dict[str, str]) -> Iterator[Page]:
    yield from _page_as(browser, tokens["viewer"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    print_figures(terminalreporter, "web UI figures", under="tests/browser/")

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
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from libs.auth import TokenStore
from libs.natsserver import free_port
from tests.e2e.harness import BayUp, start_bay
from tests.figures import print_figures

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: how long a page may take to show what a test waits for
WAIT = 30.0
#: a short login window, so the rate-limit test can see it end
LOGIN_WINDOW_SECONDS = 5

T = TypeVar("T")


def _browser_missing() -> str:
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        return "chromium / chromium-driver are not installed (`make tools` installs them, as root)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (`make setup` installs the dev dependencies)"
    return ""


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
    reason = _browser_missing()
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


def until(check: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    """The first truthy ``check()`` (a condition no event announces: an HTTP answer), looked at
    again after a short pause until ``timeout``; AssertionError naming ``what`` after it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


class Page:
    """One headless Chromium on the platform's gateway."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def login(self, token: str, path: str = "/ui/") -> None:
        """Through the real form, as a person would (the cookie is then the browser's own)."""
        from selenium.webdriver.common.by import By

        self.driver.delete_all_cookies()
        self.open(path)
        self.wait(lambda d: d.current_url.split("?")[0].endswith("/ui/login"), "the log-in page")
        field = self.driver.find_element(By.ID, "token")
        field.send_keys(token)
        self.driver.find_element(By.ID, "login").click()
        self.wait(lambda d: "/ui/login" not in d.current_url, "logged in")

    def wait(self, check: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
        """The first truthy ``check(driver)`` (a deadline, polled by Selenium)."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
            TimeoutException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        # a live page redraws what a check looked at: look again, until the deadline
        ignored = (NoSuchElementException, StaleElementReferenceException)
        try:
            return WebDriverWait(self.driver, timeout, 0.05, ignored_exceptions=ignored).until(check)
        except TimeoutException:
            raise AssertionError(f"not within {timeout}s: {what}") from None

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def fetch(self, path: str, method: str = "GET", body: Any = None, csrf: bool = True) -> dict[str, Any]:
        """``fetch`` in the page (its cookie): ``{"status", "body"}``; ``csrf``: with the header."""
        script = """
        const [path, method, body, csrf, done] = arguments;
        (async () => {
          const headers = {"Content-Type": "application/json"};
          if (csrf) {
            headers["X-CSRF-Token"] = (await (await fetch("/ui/session")).json()).csrf;
          }
          const sent = body === null ? undefined : JSON.stringify(body);
          const r = await fetch(path, {method, headers, body: sent});
          done({status: r.status, body: await r.text()});
        })().catch((e) => done({status: -1, body: String(e)}));
        """
        result: dict[str, Any] = self.driver.execute_async_script(script, path, method, body, csrf)
        return result

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console_problems(self) -> list[str]:
        """CSP violations and uncaught errors the console logged since the last call."""
        problems = []
        for entry in self.driver.get_log("browser"):
            text = entry.get("message", "")
            if "Content Security Policy" in text or "Refused to" in text or "Uncaught" in text:
                problems.append(text)
        return problems


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI: Chromium's sandbox refuses to run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tempfile.mkdtemp(prefix='bay-chromium-')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver's path given: Selenium Manager (which would download one) is never asked
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(WAIT)
    driver.set_page_load_timeout(WAIT)
    return driver


@pytest.fixture(scope="session")
def browser(browser_bay: BayUp) -> Iterator[Page]:
    """One Chromium for the session (each page fixture logs in afresh on it)."""
    driver = _driver()
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

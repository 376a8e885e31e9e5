"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium: what the
browser tests (``tests/browser/conftest.py``) and ``python -m bench ui`` open pages with."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: how long a page may take to show what a test waits for
WAIT = 30.0

T = TypeVar("T")


def browser_missing() -> str:
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        return "chromium / chromium-driver are not installed (`make tools` installs them, as root)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (`make setup` installs the dev dependencies)"
    return ""


def until(check: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    """The first truthy ``check()`` (a condition no event announces: an HTTP answer), looked at
    again after a short pause until ``timeout``; AssertionError naming ``what`` after it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)  # tests/poll.py's look-again, for the synchronous browser driver


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
            WebDriverException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        # a live page redraws what a check looked at: look again, until the deadline (Chromium may
        # also say so as an inspector error, "Node with given id does not belong to the document")
        ignored = (NoSuchElementException, StaleElementReferenceException)

        def look(driver: Any) -> Any:
            try:
                return check(driver)
            except WebDriverException as exc:
                if isinstance(exc, ignored) or "does not belong to the document" in str(exc):
                    return False
                raise

        try:
            return WebDriverWait(self.driver, timeout, 0.05).until(look)
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


def new_driver() -> Any:
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

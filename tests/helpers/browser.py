"""Pages in a real headless Chromium: the app on a live port, a WebDriver on Debian's
`chromium` through `chromedriver`, the console's errors, and screenshots the run keeps.

    with live_server(app) as base_url, open_browser(base_url, shots_dir(request)) as b:
        b.go("/dashboard/sign-in")
        b.screenshot("sign-in")
        b.assert_no_console_errors()

`live_server` runs any ASGI app (the FastAPI app of `create_app`, e.g. `client.app` of
`tests.helpers.ledger_api.ledger_api`) under uvicorn in a thread of this process, so a
test can seed the ledger and read it back while the browser works against the same
runtime. Screenshots land in `tests/.screenshots/<module>/<test>/` (git-ignored; the
directory ignores itself), kept after the run so that a person can look at them.

Without chromium or chromedriver the test FAILS (never skips) and says what to install:
a page test that silently does not run is worse than none.
"""

from __future__ import annotations

import base64
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

LAPTOP = (1366, 800)
PHONE = (390, 844)

SHOTS_ROOT = Path(__file__).resolve().parents[1] / ".screenshots"


# -- the app on a port ---------------------------------------------------------------


@contextmanager
def live_server(app: Any, *, timeout: float = 20) -> Iterator[str]:
    """Serve `app` on a free 127.0.0.1 port (uvicorn in a thread, lifespan run) until
    the block ends; yields its base URL, e.g. ``http://127.0.0.1:41234``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert thread.is_alive(), "the live server stopped while starting (see the log above)"
        assert time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


# -- where screenshots go --------------------------------------------------------------


def shots_dir(request: pytest.FixtureRequest) -> Path:
    """`tests/.screenshots/<module>/<test>/`, emptied for this run of the test."""
    SHOTS_ROOT.mkdir(exist_ok=True)
    ignore = SHOTS_ROOT / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    module = Path(str(request.node.path)).stem
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
    path = SHOTS_ROOT / module / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# -- the browser -------------------------------------------------------------------------


def _binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        missing = [n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p]
        pytest.fail(
            f"browser tests need Debian's chromium and chromium-driver; missing: "
            f"{', '.join(missing)}. Install them with `infra/tools.sh chromium chromedriver` "
            f"(make test does), or `apt-get install chromium chromium-driver`.",
            pytrace=False,
        )
    return chromium, driver


class Browser:
    """A headless Chromium on one base URL, with its console log and screenshots."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, shots: Path) -> None:
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.shots = shots
        self._console: list[dict[str, Any]] = []

    # navigation and lookups
    def go(self, path: str) -> None:
        """Open `path` (relative to the base URL) and wait until the document is loaded."""
        self.driver.get(self.base_url + path)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")

    @property
    def path(self) -> str:
        """The current URL without the base (path and query)."""
        url: str = self.driver.current_url
        return url[len(self.base_url) :] if url.startswith(self.base_url) else url

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str = "body") -> str:
        return str(self.find(css).text)

    def fill(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        self.find(css).click()

    def wait(self, condition: Callable[[Any], Any], timeout: float = 10, what: str = "") -> Any:
        """Until `condition(driver)` is truthy; fails with `what` and the page's text.
        An element that vanished or went stale meanwhile (the page changed) counts as
        not yet."""
        ignored = (NoSuchElementException, StaleElementReferenceException)
        try:
            return WebDriverWait(self.driver, timeout, ignored_exceptions=ignored).until(condition)
        except TimeoutException:
            body = self.driver.find_element(By.TAG_NAME, "body").text[:2000]
            raise AssertionError(
                f"timed out waiting for {what or condition}; page:\n{body}"
            ) from None

    def wait_for(self, css: str, timeout: float = 10) -> WebElement:
        """The first element matching `css`, once it exists."""
        found: WebElement = self.wait(
            lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [None])[0], timeout, css
        )
        return found

    def js(self, script: str, *args: Any) -> Any:
        """Run `script` in the page (`return …` to get a value back)."""
        return self.driver.execute_script(script, *args)

    def resize(self, size: tuple[int, int]) -> None:
        """The viewport's size in CSS pixels (LAPTOP, PHONE, or any (width, height))."""
        width, height = size
        # Sets the viewport exactly, whatever the window's decorations take.
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    # evidence
    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Save the page as `<shots>/<name>.png` (the whole page unless `full_page=False`)."""
        path = self.shots / f"{name}.png"
        if full_page:
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            path.write_bytes(base64.b64decode(shot["data"]))
        else:
            self.driver.save_screenshot(str(path))
        return path

    def console(self) -> list[dict[str, Any]]:
        """Every console entry since the browser started (level, message, source)."""
        self._console.extend(self.driver.get_log("browser"))  # type: ignore[no-untyped-call]
        return list(self._console)

    def console_errors(self) -> list[str]:
        """The SEVERE entries: console.error, uncaught exceptions, failed loads (404 …)."""
        return [e["message"] for e in self.console() if e.get("level") == "SEVERE"]

    def assert_no_console_errors(self) -> None:
        errors = self.console_errors()
        assert not errors, "browser console errors:\n" + "\n".join(errors)

    def clear_console(self) -> None:
        self.console()
        self._console.clear()

    # the session outside the page
    def cookie(self, name: str) -> dict[str, Any] | None:
        """The browser's cookie `name` with its flags (httpOnly, sameSite, secure …)."""
        found: dict[str, Any] | None = self.driver.get_cookie(name)
        return found

    def http(self) -> httpx.Client:
        """A plain HTTP client carrying the browser's cookies (for status codes, headers
        and bodies a page cannot show: a PDF, a refused POST)."""
        cookies = {c["name"]: c["value"] for c in self.driver.get_cookies()}
        return httpx.Client(base_url=self.base_url, cookies=cookies, follow_redirects=False)


@contextmanager
def open_browser(
    base_url: str, shots: Path, *, size: tuple[int, int] = LAPTOP
) -> Iterator[Browser]:
    """A headless Chromium at `size` whose console log is collected; quit at the end."""
    chromium, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # containers without user namespaces
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--lang=en-US",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        browser = Browser(driver, base_url, shots)
        browser.resize(size)
        yield browser
    finally:
        driver.quit()

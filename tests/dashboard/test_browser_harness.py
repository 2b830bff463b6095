"""The browser harness itself (tests/helpers/browser.py): a page served live, its
console errors seen, a screenshot kept, the viewport sized."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from tests.helpers.browser import PHONE, live_server, open_browser, shots_dir

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>harness</title></head>
<body><h1 id="title">Hello</h1>
<script>if (location.search === "?fail") console.error("boom from the page");</script>
</body></html>"""


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/page", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    return app


def test_page_console_screenshot_and_size(request: pytest.FixtureRequest) -> None:
    with live_server(_app()) as url, open_browser(url, shots_dir(request)) as browser:
        browser.go("/page")
        assert browser.text("#title") == "Hello"
        browser.assert_no_console_errors()
        shot = browser.screenshot("page")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        browser.go("/page?fail")
        errors = browser.console_errors()
        assert any("boom from the page" in e for e in errors), errors
        with pytest.raises(AssertionError, match="boom"):
            browser.assert_no_console_errors()

        browser.resize(PHONE)
        assert browser.js("return window.innerWidth") == PHONE[0]
        with browser.http() as http:
            assert http.get("/page").status_code == 200

"""The portal in a real headless Chromium (tests/helpers/browser.py): opened from the
link of POST /customers/{id}/portal-url, every page without console errors at laptop
and phone width, the token gone from the address bar, only the customer's own
invoices, a PDF link that answers a PDF, and an expired link refused with a page a
person can read. Screenshots: tests/.screenshots/test_portal_browser/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.usage_store import UsageStore
from tests.conftest import CH_DATABASE
from tests.helpers.browser import LAPTOP, PHONE, Browser, live_server, open_browser, shots_dir
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.portal.conftest import NOW, SECRET, portal_url, seed
from tests.portal.test_account_usage import _send

pytestmark = [pytest.mark.ledger, pytest.mark.clickhouse]

SECTIONS = (
    ("Subscription", "/portal", "subscription"),
    ("Usage", "/portal/usage", "usage"),
    ("Invoices", "/portal/invoices", "invoices"),
    ("Wallet", "/portal/wallet", "wallet"),
)


@dataclass
class Live:
    api: ApiClient
    base_url: str
    ids: dict[str, str]


@pytest.fixture
def live(ledger_url: str, tmp_path: Path, clickhouse: Any) -> Iterator[Live]:
    with ledger_api(ledger_url, tmp_path, now=NOW, secret_key=SECRET) as api:
        api.runtime.usage = UsageStore(clickhouse, CH_DATABASE)
        ids = seed(api)
        api.ok("POST", "/metrics", json={"code": "jobs", "name": "Jobs", "aggregation": "count"})
        _send(api, clickhouse, "acme", "calls", 1200)
        for index in range(3, 5):
            paid = api.open_invoice("acme", "80.00", index=index)
            api.ok("POST", f"/invoices/{paid['id']}/payments", json={"amount": "80.00"})
        with live_server(api.app) as url:
            # The link the API hands out points at this server.
            api.runtime.settings.public_url = url
            yield Live(api, url, ids)


@pytest.fixture
def browser(live: Live, request: pytest.FixtureRequest) -> Iterator[Browser]:
    with open_browser(live.base_url, shots_dir(request)) as found:
        yield found


def _open_link(browser: Browser, live: Live, customer: str, **body: Any) -> str:
    """Open the customer's portal link as it was handed out; the link's URL."""
    url = str(portal_url(live.api, customer, **body)["url"])
    assert url.startswith(f"{live.base_url}/portal?token=mlp1.")
    browser.driver.get(url)
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    return url


def _no_overflow(browser: Browser) -> None:
    wide = browser.js("return document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than the viewport"


def test_the_customer_walks_through_the_portal(browser: Browser, live: Live) -> None:
    _open_link(browser, live, "acme")
    # The token is traded for a cookie the page's script cannot read, and is gone.
    assert browser.path == "/portal"
    assert "token" not in browser.driver.current_url
    cookie = browser.cookie("meterline_portal")
    assert cookie is not None and cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert browser.js("return document.cookie") == ""
    for size_name, size in (("laptop", LAPTOP), ("phone", PHONE)):
        browser.resize(size)
        for label, path, key in SECTIONS:
            browser.go(path)
            current = browser.find('nav a[aria-current="page"]')
            assert current.text == label
            assert browser.find("h1").text
            browser.screenshot(f"{size_name}-{key}")
            browser.assert_no_console_errors()
            if size == PHONE:
                _no_overflow(browser)
    browser.resize(LAPTOP)

    browser.go("/portal")
    text = browser.text("main")
    assert "Pro" in text and "25.00 USD" in text and "active" in text

    browser.go("/portal/usage")
    bars = browser.find_all('[role="progressbar"]')
    # calls: 1200 of 1000 included (120 %, the bar full), and of its cap of 5000 (24 %).
    shown = [(b.get_attribute("aria-valuenow"), b.get_attribute("aria-valuetext")) for b in bars]
    assert shown == [
        ("100", "120% of the included quantity"),
        ("24", "24% of the cap"),
    ]
    for bar in bars:
        names = (bar.get_attribute("aria-labelledby") or "").split()
        assert len(names) == 2 and all(browser.find(f"#{n}").text for n in names)
    assert "1200 of 1000 included: 20% over" in browser.text("main")
    assert "Projected subtotal" in browser.text("main")

    browser.go("/portal/invoices")
    rows = browser.find_all("table.invoices tbody tr")
    assert len(rows) == 3  # acme's OPEN one and two PAID; no DRAFT, nothing of globex
    links = [a.get_attribute("href") or "" for a in browser.find_all("a.pdf")]
    assert f"{live.base_url}/portal/invoices/{live.ids['acme_open']}/pdf" in links
    assert not any(live.ids["globex_open"] in link for link in links)
    with browser.http() as http:
        pdf = http.get(links[0].removeprefix(live.base_url))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")

    browser.click(f'a[href="/portal/invoices/{live.ids["acme_open"]}"]')
    browser.wait(lambda d: "Invoice" in d.find_element("css selector", "h1").text)
    assert "120.00" in browser.text("main")
    browser.screenshot("laptop-invoice")
    browser.resize(PHONE)
    browser.screenshot("phone-invoice")
    browser.assert_no_console_errors()

    # Another customer's invoice is not found, even by its id.
    browser.resize(LAPTOP)
    browser.go(f"/portal/invoices/{live.ids['globex_open']}")
    assert browser.find("h1").text == "Not found"
    browser.screenshot("other-customers-invoice")

    browser.clear_console()
    browser.click("footer button")
    browser.wait(lambda d: d.find_element("css selector", "h1").text == "Signed out")
    assert browser.cookie("meterline_portal") is None


def test_each_customer_sees_only_its_own_invoices(browser: Browser, live: Live) -> None:
    _open_link(browser, live, "globex")
    browser.go("/portal/invoices")
    numbers = [a.text for a in browser.find_all("table.invoices tbody td:first-child a")]
    assert len(numbers) == 1
    hrefs = [a.get_attribute("href") or "" for a in browser.find_all("a.pdf")]
    assert hrefs == [f"{live.base_url}/portal/invoices/{live.ids['globex_open']}/pdf"]
    assert "Globex" in browser.text("header")
    browser.screenshot("globex-invoices")
    browser.assert_no_console_errors()
    with browser.http() as http:
        assert http.get(f"/portal/invoices/{live.ids['acme_open']}/pdf").status_code == 404


def test_an_expired_link_is_refused_with_a_readable_page(browser: Browser, live: Live) -> None:
    url = str(portal_url(live.api, "acme", expiresInMinutes=1)["url"])
    live.api.clock.advance(timedelta(minutes=2))
    browser.driver.get(url)
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    assert browser.find("h1").text == "This link has expired"
    assert "Ask the company that bills you for a new link" in browser.text("main")
    assert browser.cookie("meterline_portal") is None
    assert not browser.find_all("nav")
    browser.screenshot("expired-laptop")
    browser.resize(PHONE)
    browser.screenshot("expired-phone")
    _no_overflow(browser)
    # The one console entry is the refused document itself (401), nothing of the page.
    errors = browser.console_errors()
    assert all("401" in e for e in errors), errors

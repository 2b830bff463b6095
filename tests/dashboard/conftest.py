"""A seeded tenant served live, and the steps every dashboard test takes (sign in).

`dashboard` is a tenant's API client (tests.helpers.ledger_api) over a fresh ledger,
with its app on a live port (`.base_url`); `seeded` adds the ledger a test can assert
exact figures of: two USD customers, issued invoices in September and October 2026, a
payment, usage fees of two metrics, a DRAFT of acme, and one EUR customer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.analytics.conftest import draft, issue
from tests.helpers.browser import Browser, live_server, open_browser, shots_dir
from tests.helpers.ledger_api import ApiClient, ledger_api

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@dataclass
class Dashboard:
    api: ApiClient
    base_url: str
    draft_id: str = ""
    paid_id: str = ""


@pytest.fixture
def dashboard(ledger_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with ledger_api(ledger_url, tmp_path, now=NOW) as api, live_server(api.app) as url:
        yield Dashboard(api, url)


def seed(board: Dashboard) -> Dashboard:
    """The figures the tests assert (amounts in USD unless said):

    - acme: Sep 2026 invoice 300.00 (CHARGE 100 + USAGE_FEE api_calls 200), paid in full on
      2026-10-05; Oct 2026 invoice 150.00 (USAGE_FEE api_calls 150), open; DRAFT 40.00.
    - globex: Oct 2026 invoice 500.00 (USAGE_FEE storage_gb 500), open.
    - bolt (EUR): Oct 2026 invoice 70.00 EUR.
    Gross revenue: 2026-09 = 300.00, 2026-10 = 650.00; collections 2026-10 = 300.00.
    Top customers (USD): globex 500.00 (1 invoice), acme 450.00 (2 invoices, 150.00 due).
    """
    api = board.api
    api.customer("acme", name="Acme Corp")
    api.customer("globex", name="Globex")
    api.customer("bolt", name="Bolt GmbH", currency="EUR")
    board.paid_id = issue(
        api,
        datetime(2026, 9, 10, tzinfo=UTC),
        "acme",
        [("CHARGE", None, "100.00"), ("USAGE_FEE", "api_calls", "200.00")],
    )
    api.clock.set(datetime(2026, 10, 5, tzinfo=UTC))
    api.ok("POST", f"/invoices/{board.paid_id}/payments", json={"amount": "300.00"})
    issue(api, datetime(2026, 10, 12, tzinfo=UTC), "acme", [("USAGE_FEE", "api_calls", "150.00")])
    issue(
        api, datetime(2026, 10, 20, tzinfo=UTC), "globex", [("USAGE_FEE", "storage_gb", "500.00")]
    )
    issue(api, datetime(2026, 10, 21, tzinfo=UTC), "bolt", [("CHARGE", None, "70.00")])
    board.draft_id = draft(api, "acme", [("CHARGE", None, "40.00")])
    api.clock.set(NOW)
    return board


@pytest.fixture
def seeded(dashboard: Dashboard) -> Dashboard:
    return seed(dashboard)


@pytest.fixture
def browser(dashboard: Dashboard, request: pytest.FixtureRequest) -> Iterator[Browser]:
    with open_browser(dashboard.base_url, shots_dir(request)) as found:
        yield found


def sign_in(browser: Browser, tenant_id: str, api_key: str) -> None:
    """Through the sign-in page, as a person does; lands on the usage page."""
    browser.go("/dashboard/sign-in")
    browser.fill("#tenant_id", tenant_id)
    browser.fill("#api_key", api_key)
    browser.click("button[type=submit].primary")
    browser.wait(lambda d: "/sign-in" not in d.current_url, what="the sign-in to go through")

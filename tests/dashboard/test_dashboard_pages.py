"""The operator dashboard in a real headless Chromium, over a seeded ledger (SQLite and
PostgreSQL): sign-in, every page without console errors, charts holding the seeded
figures, an invoice finalized from its page, the PDF, sign-out, a phone's width."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import Dashboard, sign_in
from tests.helpers.browser import PHONE, Browser

pytestmark = pytest.mark.ledger

PAGES = [
    ("usage", "/dashboard/usage", "Usage over time"),
    ("customers", "/dashboard/customers", "Top customers"),
    ("revenue", "/dashboard/revenue", "Revenue"),
    ("invoices", "/dashboard/invoices", "Invoices"),
    ("alerts", "/dashboard/alerts", "Alerts and quota blocks"),
    ("bill-runs", "/dashboard/bill-runs", "Bill runs"),
    ("rejected-events", "/dashboard/rejected-events", "Rejected events"),
]


def _datasets(browser: Browser, canvas_id: str) -> list[dict[str, object]]:
    """The labels and data of the Chart.js chart drawn on `canvas_id`."""
    found: list[dict[str, object]] = browser.js(
        """const chart = Chart.getChart(document.getElementById(arguments[0]));
           if (!chart) return null;
           return chart.data.datasets.map(d => ({label: d.label, data: d.data}))
             .concat([{label: "__labels__", data: chart.data.labels}]);""",
        canvas_id,
    )
    assert found, f"no chart on #{canvas_id}"
    return found


def test_wrong_key_and_wrong_tenant_are_refused(dashboard: Dashboard, browser: Browser) -> None:
    browser.go("/dashboard/sign-in")
    browser.fill("#tenant_id", dashboard.api.tenant_id)
    browser.fill("#api_key", "ml_not-a-key")
    browser.click("button[type=submit].primary")
    assert "not valid" in browser.wait_for("#sign-in-error").text
    assert browser.cookie("meterline_dashboard") is None
    browser.screenshot("wrong-key")

    browser.fill("#tenant_id", "ten_someone_else")
    browser.fill("#api_key", dashboard.api.api_key)
    browser.click("button[type=submit].primary")
    browser.wait(lambda d: "does not belong" in d.find_element("css selector", "body").text)
    assert browser.cookie("meterline_dashboard") is None
    # The refusals are answered as pages (401/403), which Chromium logs as failed loads.
    browser.clear_console()

    browser.go("/dashboard/invoices")  # without a session: to the sign-in page
    assert browser.path.startswith("/dashboard/sign-in?next=/dashboard/invoices")


def test_every_page_with_seeded_figures(seeded: Dashboard, browser: Browser) -> None:
    sign_in(browser, seeded.api.tenant_id, seeded.api.api_key)
    assert browser.path == "/dashboard/usage"

    cookie = browser.cookie("meterline_dashboard")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/dashboard"
    assert cookie["secure"] is False  # plain http here; https sets Secure (test_sessions)
    assert seeded.api.api_key not in cookie["value"]
    assert seeded.api.tenant_id not in cookie["value"]  # sealed, not merely signed

    for name, path, heading in PAGES:
        browser.go(path)
        assert browser.text("h1") == heading, name
        browser.screenshot(name)
        browser.assert_no_console_errors()

    # The ledger-only runtime has no usage store: said plainly, no chart, no error.
    browser.go("/dashboard/usage")
    assert "not available" in browser.text("#usage-unavailable")
    browser.go("/dashboard/rejected-events")
    assert "not available" in browser.text("#rejected-unavailable")

    browser.go("/dashboard/customers")
    chart = _datasets(browser, "customers-chart")
    assert chart[0] == {"label": "Invoiced (USD)", "data": [500, 450]}
    assert chart[-1]["data"] == ["Globex", "Acme Corp"]
    rows = [r.text for r in browser.find_all("table tbody tr")]
    assert rows == [
        "Globex globex 1 500.00 USD 500.00 USD",
        "Acme Corp acme 2 450.00 USD 150.00 USD",
    ]
    browser.go("/dashboard/customers?currency=EUR")
    assert [r.text for r in browser.find_all("table tbody tr")] == [
        "Bolt GmbH bolt 1 70.00 EUR 70.00 EUR"
    ]
    browser.assert_no_console_errors()

    browser.go("/dashboard/revenue")
    revenue = {d["label"]: d["data"] for d in _datasets(browser, "revenue-chart")}
    months = revenue["__labels__"]
    assert isinstance(months, list) and months[-3:] == ["2026-09", "2026-10", "2026-11"]
    assert len(months) == 12
    gross = revenue["Gross revenue"]
    collected = revenue["Collections"]
    assert isinstance(gross, list) and isinstance(collected, list)
    assert gross[-3:] == [300, 650, 0] and sum(gross) == 950
    assert collected[-3:] == [0, 300, 0] and sum(collected) == 300
    usage = {d["label"]: d["data"] for d in _datasets(browser, "usage-revenue-chart")}
    assert usage["api_calls"][-3:] == [200, 150, 0]  # type: ignore[index]
    assert usage["storage_gb"][-3:] == [0, 500, 0]  # type: ignore[index]
    table = browser.text("main")
    assert "2026-10 0.00 0 650.00 2 300.00" in table  # exact strings beside the chart
    browser.assert_no_console_errors()


def test_finalize_a_draft_and_download_its_pdf(seeded: Dashboard, browser: Browser) -> None:
    sign_in(browser, seeded.api.tenant_id, seeded.api.api_key)
    browser.go("/dashboard/invoices?status=DRAFT")
    row = f"#invoice-{seeded.draft_id}"
    assert "DRAFT" in browser.text(row)
    browser.screenshot("draft")
    browser.click(f"{row} form[action$='/finalize'] button")
    notice = browser.wait_for("#notice")
    assert "finalized" in notice.text
    assert browser.path.startswith("/dashboard/invoices?status=DRAFT&notice=finalized")
    assert browser.find_all(row) == []  # no longer a draft

    browser.go("/dashboard/invoices")
    assert "OPEN" in browser.text(row)
    assert seeded.api.ok("GET", f"/invoices/{seeded.draft_id}")["status"] == "OPEN"
    # The activity log names the signed-in key, as for the same action through the API.
    [entry] = seeded.api.ok("GET", f"/activity?resourceId={seeded.draft_id}")["data"]
    key_id = seeded.api.ok("GET", "/request-log?limit=1")["data"][0]["apiKeyId"]
    assert (entry["action"], entry["actor"]) == (
        "invoice.finalized",
        {"type": "api_key", "id": key_id},
    )
    browser.screenshot("finalized")
    browser.assert_no_console_errors()

    link = browser.find(f"{row} a.button").get_attribute("href")
    assert link and link.endswith(f"/dashboard/invoices/{seeded.draft_id}/pdf")
    with browser.http() as http:
        pdf = http.get(link)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")

    # Voiding asks first; accepted, the invoice is VOID.
    browser.click(f"{row} form[action$='/void'] button")
    alert = browser.wait(lambda d: d.switch_to.alert, what="the void confirmation")
    assert "cannot be undone" in alert.text
    alert.accept()
    browser.wait_for("#notice")
    assert "VOID" in browser.text(row)
    browser.assert_no_console_errors()


def test_state_changes_need_the_csrf_token(seeded: Dashboard, browser: Browser) -> None:
    sign_in(browser, seeded.api.tenant_id, seeded.api.api_key)
    finalize = f"/dashboard/invoices/{seeded.draft_id}/finalize"
    with browser.http() as http:
        refused = http.post(finalize, data={"status": ""})
        assert refused.status_code == 403
        assert "security token" in refused.text
        wrong = http.post(finalize, data={"csrf_token": "guess"})
        assert wrong.status_code == 403
        browser.go("/dashboard/invoices")
        token = browser.find("meta[name=csrf-token]").get_attribute("content")
        assert token
        foreign = http.post(
            finalize, data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert seeded.api.ok("GET", f"/invoices/{seeded.draft_id}")["status"] == "DRAFT"
        # The same request with the page's token goes through.
        done = http.post(finalize, headers={"X-CSRF-Token": token})
        assert done.status_code == 303
        assert done.headers["location"].endswith("notice=finalized")
    assert seeded.api.ok("GET", f"/invoices/{seeded.draft_id}")["status"] == "OPEN"

    # Sign-out is a POST with the token too; afterwards the pages ask to sign in.
    browser.go("/dashboard/revenue")
    browser.click("form.sign-out button")
    browser.wait(lambda d: "/dashboard/sign-in" in d.current_url)
    assert browser.cookie("meterline_dashboard") is None
    browser.go("/dashboard/revenue")
    assert browser.path.startswith("/dashboard/sign-in")
    browser.assert_no_console_errors()


def test_phone_width(seeded: Dashboard, browser: Browser) -> None:
    browser.resize(PHONE)
    browser.go("/dashboard/sign-in")
    browser.screenshot("phone-sign-in")
    sign_in(browser, seeded.api.tenant_id, seeded.api.api_key)
    for name, path, _ in PAGES:
        browser.go(path)
        browser.screenshot(f"phone-{name}")
        # Nothing but the scrollable tables and nav is wider than the screen.
        width = browser.js("return document.documentElement.scrollWidth")
        assert width <= PHONE[0], f"{name} is {width}px wide on a {PHONE[0]}px screen"
    browser.assert_no_console_errors()


def test_bill_run_progress_refreshes(dashboard: Dashboard, browser: Browser) -> None:
    from datetime import UTC, datetime

    from invoicing.billing.runs import create_bill_run, update_run
    from invoicing.db import transaction

    api = dashboard.api
    with transaction(api.runtime.sessions) as session:
        run = create_bill_run(
            session,
            api.tenant_id,
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 11, 1, tzinfo=UTC),
        ).id
    update_run(api.runtime.sessions, run, status="running", total=10, processed=4)
    sign_in(browser, api.tenant_id, api.api_key)
    browser.go("/dashboard/bill-runs")
    row = f"tr[data-run='{run}']"
    assert browser.find(f"{row} progress").get_attribute("value") == "4"
    assert browser.text(f"{row} [data-field=status]") == "running"
    browser.screenshot("running")

    update_run(
        api.runtime.sessions, run, status="completed", processed=10, invoices_created=9, failed=1
    )
    browser.wait(
        lambda d: d.find_element("css selector", f"{row} [data-field=status]").text == "completed",
        timeout=15,
        what="the bill run's progress to refresh",
    )
    assert browser.text(f"{row} [data-field=progress]") == "10 / 10"
    assert browser.text(f"{row} [data-field=invoicesCreated]") == "9"
    browser.screenshot("completed")
    browser.assert_no_console_errors()

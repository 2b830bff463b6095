"""Every analytics endpoint on one seeded ledger, with exact expected figures.

The ledger, October to December 2026 (the clock then stands at 2027-01-15):

    invoices  acme   Oct 05  100.10 USD  (base 40.00, api_calls 60.10)
                     paid 50.05 Oct 25 and 50.05 Nov 02
              globex Oct 20    0.20 USD  (storage 0.20)          unpaid, due Nov 19
              acme   Oct 31 23:59:59  0.10 USD (base)            unpaid, due Nov 15
              globex Nov 01 00:00  250.00 USD (base 50, api_calls 200)
                     offset 25.50 Dec 10, due Dec 01
              yoyo   Nov 10   80.00 EUR  (api_calls 80.00)       paid Nov 20
              acme   Nov 15   30.00 USD  (api_calls 30.00)       voided Nov 16
              acme   a DRAFT of 100.00 USD, never finalized
              acme   Dec 03  500.00 USD  a wallet top-up (type credit)  paid Dec 05
    credit notes on globex's November invoice: 25.50 applied (Dec 10), 1.00 left a DRAFT,
              2.00 issued then voided (Dec 12)
    plans     basic USD monthly 10.00; pro USD yearly 100.00 + a recurring fixed charge of
              20.00 (and a one-time setup of 99.00); eu EUR quarterly 10.00; wk USD weekly 1.00
    subscriptions  acme basic from Sep 15; acme pro Nov 10 – Dec 05; globex basic at 12.50
              (override) Oct 01 – terminated Dec 20; yoyo eu from Oct 15; initech wk Nov 01 – Nov 30
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.analytics.conftest import NOW, draft, issue
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

RANGE = "from=2026-10&to=2026-12"


def at(month: int, day: int, *hms: int) -> datetime:
    return datetime(2026, month, day, *hms, tzinfo=UTC)


def seed(api: ApiClient) -> None:
    api.customer("acme", netPaymentTermDays=15)
    api.customer("globex", netPaymentTermDays=30)
    api.customer("yoyo", currency="EUR")
    api.customer("initech")
    a1 = issue(
        api, at(10, 5), "acme", [("CHARGE", None, "40.00"), ("USAGE_FEE", "api_calls", "60.10")]
    )
    issue(api, at(10, 20), "globex", [("USAGE_FEE", "storage", "0.20")])
    issue(api, at(10, 31, 23, 59, 59), "acme", [("CHARGE", None, "0.10")])
    g2 = issue(
        api, at(11, 1), "globex", [("CHARGE", None, "50.00"), ("USAGE_FEE", "api_calls", "200.00")]
    )
    y1 = issue(api, at(11, 10), "yoyo", [("USAGE_FEE", "api_calls", "80.00")])
    a3 = issue(api, at(11, 15), "acme", [("USAGE_FEE", "api_calls", "30.00")])
    draft(api, "acme", [("CHARGE", None, "100.00")])
    top_up = issue(api, at(12, 3), "acme", [("CHARGE", None, "500.00")], type_="credit")

    api.clock.set(at(10, 25))
    api.ok("POST", f"/invoices/{a1}/payments", json={"amount": "50.05"})
    api.clock.set(at(11, 2))
    api.ok("POST", f"/invoices/{a1}/payments", json={"amount": "50.05"})
    api.clock.set(at(11, 16))
    api.ok("POST", f"/invoices/{a3}/void")
    api.clock.set(at(11, 20))
    api.ok("POST", f"/invoices/{y1}/payments", json={"amount": "80.00"})
    api.clock.set(at(12, 5))
    api.ok("POST", f"/invoices/{top_up}/payments", json={"amount": "500.00"})

    def note(amount: str) -> str:
        body = {"invoiceId": g2, "amount": amount, "reason": "OTHER", "type": "offset"}
        created: str = api.ok("POST", "/credit-notes", json=body)["id"]
        return created

    api.clock.set(at(12, 10))
    applied = note("25.50")
    api.ok("POST", f"/credit-notes/{applied}/issue")
    api.ok("POST", f"/credit-notes/{applied}/apply")
    api.clock.set(at(12, 11))
    note("1.00")
    api.clock.set(at(12, 12))
    voided = note("2.00")
    api.ok("POST", f"/credit-notes/{voided}/issue")
    api.ok("POST", f"/credit-notes/{voided}/void")

    api.ok(
        "POST",
        "/plans",
        json={
            "code": "basic",
            "name": "Basic",
            "currency": "USD",
            "interval": "monthly",
            "baseFee": "10.00",
        },
    )
    api.ok(
        "POST",
        "/plans",
        json={
            "code": "pro",
            "name": "Pro",
            "currency": "USD",
            "interval": "yearly",
            "baseFee": "100.00",
            "fixedCharges": [
                {"name": "Seats", "amount": "4.00", "units": "5"},
                {"name": "Setup", "amount": "99.00", "oneTime": True},
            ],
        },
    )
    api.ok(
        "POST",
        "/plans",
        json={
            "code": "eu",
            "name": "EU",
            "currency": "EUR",
            "interval": "quarterly",
            "baseFee": "10.00",
        },
    )
    api.ok("POST", "/plans", json={"code": "wk", "name": "Weekly", "currency": "USD",
                                   "interval": "weekly", "baseFee": "1.00"})  # fmt: skip

    def subscribe(
        customer: str, plan: str, start: str, end: str | None = None, **extra: Any
    ) -> str:
        body = {"customerId": customer, "planCode": plan, "startDate": start, "endDate": end}
        created: str = api.ok("POST", "/subscriptions", json=body | extra)["id"]
        return created

    subscribe("acme", "basic", "2026-09-15T00:00:00Z")
    subscribe("acme", "pro", "2026-11-10T00:00:00Z", "2026-12-05T00:00:00Z")
    globex = subscribe("globex", "basic", "2026-10-01T00:00:00Z", overrides={"baseFee": "12.50"})
    subscribe("yoyo", "eu", "2026-10-15T00:00:00Z")
    subscribe("initech", "wk", "2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z")
    # Ended later than the seeding clock: an end date (terminate takes only the past).
    api.ok("PATCH", f"/subscriptions/{globex}", json={"endDate": "2026-12-20T00:00:00Z"})
    api.clock.set(NOW)


def rows(api: ApiClient, endpoint: str, query: str = RANGE) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.ok("GET", f"/analytics/{endpoint}?{query}")["data"]
    return found


def money(rows_: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in rows_]


def test_gross_revenue_nets_credit_notes_and_skips_drafts_voids_and_top_ups(
    api: ApiClient,
) -> None:
    seed(api)
    assert rows(api, "gross-revenue") == [
        {"month": "2026-10", "currency": "EUR", "amount": "0.00", "count": 0},
        {"month": "2026-11", "currency": "EUR", "amount": "80.00", "count": 1},
        {"month": "2026-12", "currency": "EUR", "amount": "0.00", "count": 0},
        {"month": "2026-10", "currency": "USD", "amount": "100.40", "count": 3},
        {"month": "2026-11", "currency": "USD", "amount": "250.00", "count": 1},
        {"month": "2026-12", "currency": "USD", "amount": "-25.50", "count": 0},
    ]
    usd = rows(api, "gross-revenue", f"{RANGE}&currency=usd")
    assert money(usd, "month", "amount") == [
        ("2026-10", "100.40"), ("2026-11", "250.00"), ("2026-12", "-25.50"),
    ]  # fmt: skip
    acme = rows(api, "gross-revenue", f"{RANGE}&customerId=acme")
    assert money(acme, "month", "currency", "amount", "count") == [
        ("2026-10", "USD", "100.20", 2), ("2026-11", "USD", "0.00", 0),
        ("2026-12", "USD", "0.00", 0),
    ]  # fmt: skip
    globex = rows(api, "gross-revenue", f"{RANGE}&customerId=globex&currency=USD")
    assert money(globex, "month", "amount") == [
        ("2026-10", "0.20"), ("2026-11", "250.00"), ("2026-12", "-25.50"),
    ]  # fmt: skip
    # One month alone, and the month edges: Oct 31 23:59:59 is October, Nov 1 00:00 November.
    assert money(rows(api, "gross-revenue", "from=2026-11&to=2026-11&currency=USD"), "amount") == [
        ("250.00",)
    ]


def test_invoice_collections_are_payments_by_the_month_they_arrived(api: ApiClient) -> None:
    seed(api)
    assert money(rows(api, "invoice-collections"), "month", "currency", "amount", "count") == [
        ("2026-10", "EUR", "0.00", 0), ("2026-11", "EUR", "80.00", 1),
        ("2026-12", "EUR", "0.00", 0),
        ("2026-10", "USD", "50.05", 1), ("2026-11", "USD", "50.05", 1),
        ("2026-12", "USD", "500.00", 1),
    ]  # fmt: skip
    acme = rows(api, "invoice-collections", f"{RANGE}&customerId=acme")
    assert money(acme, "month", "currency", "amount") == [
        ("2026-10", "USD", "50.05"), ("2026-11", "USD", "50.05"), ("2026-12", "USD", "500.00"),
    ]  # fmt: skip
    assert rows(api, "invoice-collections", f"{RANGE}&customerId=globex") == []
    eur = rows(api, "invoice-collections", f"{RANGE}&currency=EUR&customerId=yoyo")
    assert money(eur, "month", "amount") == [
        ("2026-10", "0.00"), ("2026-11", "80.00"), ("2026-12", "0.00"),
    ]  # fmt: skip


def test_invoiced_usage_per_metric_of_issued_invoices(api: ApiClient) -> None:
    seed(api)
    found = money(rows(api, "invoiced-usage"), "month", "currency", "metric", "amount", "count")
    assert found == [
        ("2026-10", "EUR", "api_calls", "0.00", 0),
        ("2026-11", "EUR", "api_calls", "80.00", 1),
        ("2026-12", "EUR", "api_calls", "0.00", 0),
        ("2026-10", "USD", "api_calls", "60.10", 1),
        ("2026-11", "USD", "api_calls", "200.00", 1),  # acme's voided 30.00 is not in it
        ("2026-12", "USD", "api_calls", "0.00", 0),
        ("2026-10", "USD", "storage", "0.20", 1),
        ("2026-11", "USD", "storage", "0.00", 0),
        ("2026-12", "USD", "storage", "0.00", 0),
    ]
    globex = rows(api, "invoiced-usage", "from=2026-10&to=2026-11&customerId=globex")
    assert money(globex, "month", "metric", "amount") == [
        ("2026-10", "api_calls", "0.00"), ("2026-11", "api_calls", "200.00"),
        ("2026-10", "storage", "0.20"), ("2026-11", "storage", "0.00"),
    ]  # fmt: skip
    assert rows(api, "invoiced-usage", f"{RANGE}&currency=JPY") == []


def test_mrr_and_its_movements(api: ApiClient) -> None:
    seed(api)
    zero = {"new": "0.00", "expansion": "0.00", "contraction": "0.00", "churn": "0.00"}
    assert rows(api, "mrr") == [
        # EUR 10.00 a quarter: 3.333… a month, rounded once.
        {"month": "2026-10", "currency": "EUR", "amount": "3.33", "count": 1,
         "movements": zero | {"new": "3.33"}},
        {"month": "2026-11", "currency": "EUR", "amount": "3.33", "count": 1, "movements": zero},
        {"month": "2026-12", "currency": "EUR", "amount": "3.33", "count": 1, "movements": zero},
        # acme's basic (10.00, since September) and globex's 12.50 (new in October).
        {"month": "2026-10", "currency": "USD", "amount": "22.50", "count": 2,
         "movements": zero | {"new": "12.50"}},
        # acme's pro: (100.00 + 5 × 4.00) / 12; initech's week came and went within November.
        {"month": "2026-11", "currency": "USD", "amount": "32.50", "count": 3,
         "movements": zero | {"expansion": "10.00"}},
        {"month": "2026-12", "currency": "USD", "amount": "10.00", "count": 1,
         "movements": zero | {"contraction": "10.00", "churn": "12.50"}},
    ]  # fmt: skip
    acme = rows(api, "mrr", "from=2026-09&to=2026-12&customerId=acme")
    assert money(acme, "month", "amount", "count") == [
        ("2026-09", "10.00", 1), ("2026-10", "10.00", 1), ("2026-11", "20.00", 2),
        ("2026-12", "10.00", 1),
    ]  # fmt: skip
    assert acme[0]["movements"] == zero | {"new": "10.00"}
    # initech's weekly subscription ran inside November: never at a month's end.
    assert rows(api, "mrr", "from=2026-11&to=2026-11&customerId=initech") == []
    assert rows(api, "mrr", f"{RANGE}&currency=GBP") == [
        {"month": m, "currency": "GBP", "amount": "0.00", "count": 0, "movements": zero}
        for m in ("2026-10", "2026-11", "2026-12")
    ]


def test_weekly_mrr_is_52_weeks_over_12_months(api: ApiClient) -> None:
    api.customer("initech")
    api.ok("POST", "/plans", json={"code": "wk", "name": "Weekly", "currency": "USD",
                                   "interval": "weekly", "baseFee": "1.00"})  # fmt: skip
    api.ok("POST", "/subscriptions", json={"customerId": "initech", "planCode": "wk",
                                           "startDate": "2026-12-01T00:00:00Z"})  # fmt: skip
    found = rows(api, "mrr", "from=2026-12&to=2027-01")
    assert money(found, "month", "amount", "count") == [
        ("2026-12", "4.33", 1),
        ("2027-01", "4.33", 1),
    ]
    assert found[0]["movements"]["new"] == "4.33"


def test_overdue_balances_per_currency(api: ApiClient) -> None:
    seed(api)
    # globex's November invoice after its offset, its October one, acme's October 31st.
    assert rows(api, "overdue-balances", "") == [
        {"currency": "USD", "amount": "224.80", "count": 3}
    ]
    assert rows(api, "overdue-balances", "customerId=acme") == [
        {"currency": "USD", "amount": "0.10", "count": 1}
    ]
    assert rows(api, "overdue-balances", "currency=EUR") == [
        {"currency": "EUR", "amount": "0.00", "count": 0}
    ]
    # Due in November: acme's (Nov 15) and globex's October one (Nov 19).
    assert rows(api, "overdue-balances", "from=2026-11&to=2026-11") == [
        {"currency": "USD", "amount": "0.30", "count": 2}
    ]
    # Before any due date has passed nothing is overdue.
    api.clock.set(at(11, 15))
    assert rows(api, "overdue-balances", "") == []


def test_months_default_to_the_year_up_to_now_and_accept_dates(api: ApiClient) -> None:
    seed(api)
    year = rows(api, "gross-revenue", "currency=USD")
    assert [r["month"] for r in year] == [f"2026-{m:02d}" for m in range(2, 13)] + ["2027-01"]
    assert rows(api, "gross-revenue", "from=2026-10-15&to=2026-12-31T23:00:00Z&currency=USD") == (
        rows(api, "gross-revenue", f"{RANGE}&currency=USD")
    )
    # A time with an offset is read in UTC: 2026-11-01T00:30+01:00 is October 31st.
    early = rows(api, "gross-revenue", "from=2026-11-01T00:30:00%2B01:00&to=2026-10&currency=USD")
    assert [r["month"] for r in early] == ["2026-10"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=2026-13", "month 13"),
        ("from=2026-00", "month 00"),
        ("to=2026-1", "not a month"),
        ("from=last-year", "not a month"),
        ("from=2026-12&to=2026-10", "after to"),
        ("from=2000-01&to=2026-10", "more than 120 months"),
        ("from=0001-01", "outside"),
        ("to=9999-12", "outside"),
        ("currency=XYZ", "ISO 4217"),
        ("currency=dollars", "ISO 4217"),
    ],
)
def test_bad_parameters_are_422_with_a_reason(api: ApiClient, query: str, words: str) -> None:
    for endpoint in ("mrr", "gross-revenue", "invoice-collections", "invoiced-usage"):
        error = api.error("GET", f"/analytics/{endpoint}?{query}", 422)
        assert words in error["message"], error
    if "more than" not in words:  # due dates may span any range
        error = api.error("GET", f"/analytics/overdue-balances?{query}", 422)
        assert words in error["message"], error


def test_an_unknown_customer_is_404(api: ApiClient) -> None:
    for endpoint in ("mrr", "gross-revenue", "invoice-collections", "invoiced-usage",
                     "overdue-balances"):  # fmt: skip
        error = api.error("GET", f"/analytics/{endpoint}?customerId=nobody", 404)
        assert "nobody" in error["message"]


def test_an_empty_ledger_has_no_figures(api: ApiClient) -> None:
    for endpoint in ("mrr", "gross-revenue", "invoice-collections", "invoiced-usage",
                     "overdue-balances"):  # fmt: skip
        assert rows(api, endpoint, RANGE if endpoint != "overdue-balances" else "") == []
    assert money(rows(api, "gross-revenue", f"{RANGE}&currency=USD"), "amount", "count") == [
        ("0.00", 0), ("0.00", 0), ("0.00", 0),
    ]  # fmt: skip


def test_without_credentials_it_is_401(api: ApiClient) -> None:
    response = api.get("/analytics/mrr", headers={"Authorization": ""})
    assert response.status_code == 401

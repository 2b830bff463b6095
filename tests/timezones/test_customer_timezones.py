"""Billing in the customer's time zone, through the HTTP API on SQLite and PostgreSQL,
with usage in the session's in-process ClickHouse (docs/customer-timezones.md).

A Paris customer across the March 2027 change (28 March, CET → CEST) and a New York
customer across the November 2027 one (7 November, EDT → EST): the monthly base fee of
a mid-month start is prorated in local days, events just either side of local midnight
land in their local period, and the scheduler closes a customer's month at its local
midnight, not before, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from invoicing.billing import BillRunner
from invoicing.billing.scheduler import close_period
from invoicing.models import BillRunRow
from invoicing.payments import providers
from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import UsageStore
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.scenarios import metric, per_unit
from tests.helpers.stack import CH_DATABASE
from tests.subscriptions.conftest import bill, invoices_of

pytestmark = [pytest.mark.ledger, pytest.mark.clickhouse]


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def api(ledger_url: str, tmp_path: Path, clickhouse: Any) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, now=z("2027-03-10T00:00:00Z")) as client:
        client.runtime.usage = UsageStore(clickhouse, CH_DATABASE)
        yield client


def send(api: ApiClient, clickhouse: Any, customer: str, *events: tuple[str, str]) -> None:
    """Store `calls` events of `customer` as (id, UTC instant) directly in ClickHouse."""
    rows = [
        UsageEvent(api.tenant_id, event_id, customer, "calls", z(ts), None, {})
        for event_id, ts in events
    ]
    ClickHouseSink(clickhouse, CH_DATABASE).write_events(rows)


def setup_plan(api: ApiClient) -> None:
    metric(api, "calls", "count")
    body = {"code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly"}
    api.ok("POST", "/plans", json={**body, "baseFee": "100", "charges": [per_unit("calls", "1")]})


def subscribe(api: ApiClient, customer: str, zone: str, start: str) -> str:
    api.customer(customer, timezone=zone)
    body = {"customerId": customer, "planCode": "pro", "startDate": start}
    sub_id: str = api.ok("POST", "/subscriptions", json=body)["id"]
    return sub_id


def bill_runs(api: ApiClient) -> list[tuple[datetime, datetime, str]]:
    """The tenant's bill runs (window and status), in the order they started."""
    with api.runtime.sessions() as session:
        rows = session.execute(
            select(BillRunRow)
            .where(BillRunRow.tenant_id == api.tenant_id)
            .order_by(BillRunRow.started_at, BillRunRow.id)
        ).scalars()
        return [(r.period_start, r.period_end, r.status) for r in rows]


def summary(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(ln["type"], ln["quantity"], ln["unitAmount"], ln["amount"]) for ln in invoice["lines"]]


# -- the zone on the customer ---------------------------------------------------------


def test_timezone_is_an_iana_name(api: ApiClient) -> None:
    error = api.error(
        "POST",
        "/customers",
        422,
        json={"externalId": "mars", "name": "Mars", "currency": "USD", "timezone": "Mars/Olympus"},
    )
    assert "'Mars/Olympus' is not an IANA time zone name" in error["message"]
    assert api.customer("paris", timezone="Europe/Paris")["timezone"] == "Europe/Paris"
    for bad in ("europe/paris", "Europe", "+01:00", "localtime", ""):
        error = api.error("PATCH", "/customers/paris", 422, json={"timezone": bad})
        assert "is not an IANA time zone name" in error["message"], bad
    assert api.ok("GET", "/customers/paris")["timezone"] == "Europe/Paris"
    patched = api.ok("PATCH", "/customers/paris", json={"timezone": "America/New_York"})
    assert patched["timezone"] == "America/New_York"
    assert api.customer("plain")["timezone"] == "UTC"


# -- Paris across 28 March 2027 -------------------------------------------------------


def test_paris_march_is_the_local_month_prorated_in_local_days(
    api: ApiClient, clickhouse: Any
) -> None:
    setup_plan(api)
    # Starts at Paris midnight on 15 March (23:00 UTC the day before)
    sub = subscribe(api, "paris", "Europe/Paris", "2027-03-15T00:00:00+01:00")
    send(
        api,
        clickhouse,
        "paris",
        ("before-start", "2027-03-14T22:59:59Z"),  # 23:59:59 on 14 March: not billed
        ("at-start", "2027-03-14T23:00:00Z"),  # 00:00 on 15 March
        ("dst-day", "2027-03-28T01:30:00Z"),  # 03:30 CEST, the 23-hour day
        ("last-second", "2027-03-31T21:59:59Z"),  # 23:59:59 CEST on 31 March
        ("april-midnight", "2027-03-31T22:00:00Z"),  # 00:00 on 1 April: April's
        ("april-00h30", "2027-03-31T22:30:00Z"),  # 00:30 on 1 April: April's
    )
    api.clock.set(z("2027-04-02T00:00:00Z"))
    assert bill(api, "2027-03-01", "2027-03-31")["invoicesCreated"] == 1
    [march] = invoices_of(api, sub)
    assert (march["periodStart"], march["periodEnd"]) == (
        "2027-02-28T23:00:00Z", "2027-03-31T22:00:00Z",
    )  # fmt: skip
    # 15 → 31 March: 17 of 31 local days (743 hours): 100 × 17 / 31 = 54.8387… → 54.84
    assert summary(march) == [
        ("PRORATION", "1", "54.838709677419", "54.84"),
        ("USAGE_FEE", "3", "1", "3.00"),
    ]
    assert march["total"] == "57.84"
    api.clock.set(z("2027-05-02T00:00:00Z"))
    assert bill(api, "2027-04-01", "2027-04-30")["invoicesCreated"] == 1
    april = invoices_of(api, sub)[1]
    assert (april["periodStart"], april["periodEnd"]) == (
        "2027-03-31T22:00:00Z", "2027-04-30T22:00:00Z",
    )  # fmt: skip
    assert summary(april) == [("CHARGE", "1", "100", "100.00"), ("USAGE_FEE", "2", "1", "2.00")]
    # A re-run bills nothing twice
    assert bill(api, "2027-03-01", "2027-04-30")["invoicesCreated"] == 0


def test_paris_usage_read_out_is_the_local_month(api: ApiClient, clickhouse: Any) -> None:
    setup_plan(api)
    subscribe(api, "paris", "Europe/Paris", "2027-03-01T00:00:00+01:00")
    send(
        api,
        clickhouse,
        "paris",
        ("march", "2027-03-31T21:59:59Z"),
        ("april", "2027-03-31T22:30:00Z"),
    )
    api.clock.set(z("2027-03-31T22:10:00Z"))  # 00:10 on 1 April in Paris
    readout = api.ok("GET", "/customers/paris/usage")
    assert (readout["from"], readout["to"]) == ("2027-03-31T22:00:00Z", "2027-04-30T22:00:00Z")
    assert readout["amount"] == "1.00"  # only the 00:30 call is April's
    projected = api.ok("GET", "/customers/paris/usage/projected")
    assert (projected["from"], projected["to"]) == (readout["from"], readout["to"])
    quota = api.ok("GET", "/customers/paris/quota/calls")
    assert (quota["periodStart"], quota["periodEnd"], quota["used"]) == (
        "2027-03-31T22:00:00Z", "2027-04-30T22:00:00Z", "1",
    )  # fmt: skip
    api.clock.set(z("2027-03-31T21:50:00Z"))  # 23:50 on 31 March
    readout = api.ok("GET", "/customers/paris/usage")
    assert (readout["from"], readout["to"]) == ("2027-02-28T23:00:00Z", "2027-03-31T22:00:00Z")
    assert readout["amount"] == "1.00"


# -- New York across 7 November 2027 --------------------------------------------------


def test_new_york_november_has_30_local_days(api: ApiClient, clickhouse: Any) -> None:
    setup_plan(api)
    api.clock.set(z("2027-11-05T00:00:00Z"))
    # Starts at New York midnight on 10 November (EST, 05:00 UTC)
    sub = subscribe(api, "nyc", "America/New_York", "2027-11-10T00:00:00-05:00")
    send(
        api,
        clickhouse,
        "nyc",
        ("fall-back", "2027-11-07T06:30:00Z"),  # 01:30 EST on 7 Nov: before the start
        ("in", "2027-11-20T12:00:00Z"),
        ("last-second", "2027-12-01T04:59:59Z"),  # 23:59:59 on 30 November
        ("december", "2027-12-01T05:00:00Z"),  # 00:00 on 1 December: December's
    )
    api.clock.set(z("2027-12-02T00:00:00Z"))
    assert bill(api, "2027-11-01", "2027-11-30")["invoicesCreated"] == 1
    [november] = invoices_of(api, sub)
    assert (november["periodStart"], november["periodEnd"]) == (
        "2027-11-01T04:00:00Z", "2027-12-01T05:00:00Z",
    )  # fmt: skip
    # 10 → 30 November: 21 of 30 local days (721 hours): 100 × 21 / 30 = 70.00 exactly;
    # counted in UTC hours it would be 21 of 31 days (67.74)
    assert summary(november) == [
        ("PRORATION", "1", "70", "70.00"),
        ("USAGE_FEE", "2", "1", "2.00"),
    ]
    assert november["total"] == "72.00"


# -- the scheduler closes at local midnight ------------------------------------------


def test_the_scheduler_closes_each_customer_at_its_local_midnight(
    api: ApiClient, clickhouse: Any
) -> None:
    setup_plan(api)
    api.clock.set(z("2027-10-01T12:00:00Z"))
    subs = {
        name: subscribe(api, name, zone, "2027-09-01T00:00:00Z")
        for name, zone in [
            ("kiritimati", "Pacific/Kiritimati"),  # UTC+14
            ("utc", "UTC"),
            ("paris", "Europe/Paris"),
            ("honolulu", "Pacific/Honolulu"),  # UTC−10
        ]
    }
    send(
        api,
        clickhouse,
        "honolulu",
        ("hnl-oct", "2027-11-01T09:59:59Z"),  # 23:59:59 on 31 October in Honolulu
        ("hnl-nov", "2027-11-01T10:00:00Z"),  # November's
    )
    runner = BillRunner(api.runtime.sessions, api.runtime.usage, clock=api.clock)
    gateways = providers.gateways(api.runtime.settings.secrets)

    def close(at: str) -> dict[str, int]:
        api.clock.set(z(at))
        close_period(api.runtime.sessions, runner, api.clock.now(), 30, gateways)
        octobers = {}
        for name, sub in subs.items():
            billed = [i for i in invoices_of(api, sub) if i["periodEnd"] > "2027-10-15"]
            octobers[name] = len(billed)
        return octobers

    # September is billed for everyone by the first pass (its local ends have passed)
    assert close("2027-10-31T09:59:00Z") == dict.fromkeys(subs, 0)
    # Kiritimati's October ends at 10:00 UTC on 31 October, before UTC's midnight
    assert close("2027-10-31T10:00:00Z") == {"kiritimati": 1, "utc": 0, "paris": 0, "honolulu": 0}
    assert close("2027-10-31T22:59:59Z") == {"kiritimati": 1, "utc": 0, "paris": 0, "honolulu": 0}
    # Paris (CET again since 31 October) at 23:00 UTC, UTC at midnight
    assert close("2027-10-31T23:00:00Z") == {"kiritimati": 1, "utc": 0, "paris": 1, "honolulu": 0}
    assert close("2027-11-01T00:00:00Z") == {"kiritimati": 1, "utc": 1, "paris": 1, "honolulu": 0}
    # Hourly passes before Honolulu's midnight bill nothing more
    for hour in range(1, 10):
        assert close(f"2027-11-01T{hour:02d}:00:00Z")["honolulu"] == 0
    assert close("2027-11-01T10:00:00Z") == dict.fromkeys(subs, 1)
    assert close("2027-11-01T11:00:00Z") == dict.fromkeys(subs, 1)  # never twice
    [honolulu_october] = [
        i for i in invoices_of(api, subs["honolulu"]) if i["periodEnd"] > "2027-10-15"
    ]
    assert (honolulu_october["periodStart"], honolulu_october["periodEnd"]) == (
        "2027-10-01T10:00:00Z", "2027-11-01T10:00:00Z",
    )  # fmt: skip
    assert summary(honolulu_october) == [
        ("CHARGE", "1", "100", "100.00"),
        ("USAGE_FEE", "1", "1", "1.00"),
    ]
    # One run per zone closing: September (1), then Kiritimati, Paris, UTC, Honolulu
    runs = bill_runs(api)
    assert [(start, status) for start, _, status in runs] == [
        (z("2027-09-01T00:00:00Z"), "completed"),
        *[(z("2027-10-01T00:00:00Z"), "completed")] * 4,
    ]


def test_a_utc_tenant_is_run_once_a_month_as_before(api: ApiClient, clickhouse: Any) -> None:
    setup_plan(api)
    api.clock.set(z("2027-10-01T12:00:00Z"))
    sub = subscribe(api, "utc", "UTC", "2027-10-01T00:00:00Z")
    runner = BillRunner(api.runtime.sessions, api.runtime.usage, clock=api.clock)
    gateways = providers.gateways(api.runtime.settings.secrets)
    for at in ("2027-10-31T23:00:00Z", "2027-11-01T00:05:00Z", "2027-11-01T06:00:00Z"):
        api.clock.set(z(at))
        close_period(api.runtime.sessions, runner, api.clock.now(), 30, gateways)
    # Last month's run on the first pass (September: nothing to bill), October's the
    # pass after midnight, and no other: what the scheduler always did
    assert bill_runs(api) == [
        (z("2027-09-01T00:00:00Z"), z("2027-10-01T00:00:00Z"), "completed"),
        (z("2027-10-01T00:00:00Z"), z("2027-11-01T00:00:00Z"), "completed"),
    ]
    [october] = invoices_of(api, sub)
    assert (october["periodStart"], october["issuedAt"]) == (
        "2027-10-01T00:00:00Z", "2027-11-01T00:05:00Z",
    )  # fmt: skip

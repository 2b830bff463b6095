"""The usage read-out over HTTP: every model priced exactly as the bill run prices it.

`GET /customers/{id}/usage` for a window that is one billing period must say, line by
line, what that period's invoice says (docs/api-choices.md, Usage read-out). One
tenant holds one customer per case; the events of every case go through
POST /events → Kafka → Faust → ClickHouse once, one bill run invoices March 2026, and
each case compares the read-out with its invoice and with the amount worked out by hand.
Then: windows across periods and before the subscription, bad windows (422, never 500),
usage that cannot be priced, and the end-of-period projection of a percentage charge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.clock import FrozenClock

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

Json = dict[str, Any]
MARCH = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}


# -- helpers ---------------------------------------------------------------------------


def create_customer(c: Any, external_id: str, plan_code: str, start: str) -> None:
    c.ok(
        "POST",
        "/customers",
        json={"externalId": external_id, "name": external_id, "currency": "USD"},
    )
    c.ok(
        "POST",
        "/subscriptions",
        json={"customerId": external_id, "planCode": plan_code, "startDate": start},
    )


def create_plan(c: Any, code: str, charges: list[Json], interval: str = "monthly") -> None:
    c.ok(
        "POST",
        "/plans",
        json={
            "code": code,
            "name": code,
            "currency": "USD",
            "interval": interval,
            "charges": charges,
        },
    )


def send(c: Any, events: list[Json]) -> None:
    """POST the events in batches (all accepted) and wait until all are in ClickHouse."""
    for offset in range(0, len(events), 5_000):
        batch = events[offset : offset + 5_000]
        body = c.ok("POST", "/events", json={"events": batch})
        assert body == {"accepted": len(batch), "rejected": []}
    c.wait_events(len({e["id"] for e in events}))


def bill(c: Any, start: str, end: str) -> None:
    run = c.bill(start, end)
    assert run["status"] == "completed" and run["failed"] == 0, run


def invoices(c: Any, customer_id: str) -> list[Json]:
    rows = c.ok("GET", "/invoices", params={"customerId": customer_id, "limit": 500})["data"]
    return sorted(
        (c.ok("GET", f"/invoices/{r['id']}") for r in rows), key=lambda i: i["periodStart"]
    )


def usage_lines(invoice: Json) -> list[tuple[str, Json, str]]:
    """(metric, group, amount) of the invoice's usage lines, in order."""
    return [
        (ln["metric"], ln.get("group") or {}, ln["amount"])
        for ln in invoice["lines"]
        if ln["type"] == "USAGE_FEE"
    ]


def readout_lines(body: Json) -> list[tuple[str, Json, str]]:
    return [(m["metric"], m["group"], m["amount"]) for m in body["metrics"]]


def assert_error(response: Any, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    for word in words:
        assert word in body["error"]["message"], body


# -- every model and aggregation, against the bill run ----------------------------------


@dataclass(frozen=True)
class Case:
    """One customer on its own plan, its March events and the amounts worked out by hand."""

    id: str
    metrics: list[Json]
    charges: list[Json]
    events: list[Json]
    # (metric, quantity, amount) per read-out row, in invoice line order
    expected: list[tuple[str, str, str]]
    total: str
    groups: list[Json] = field(default_factory=list)


def m(code: str, aggregation: str, **extra: Any) -> Json:
    return {"code": code, "name": code, "aggregation": aggregation, **extra}


def ch(metric_code: str, model: str, properties: Json, **extra: Any) -> Json:
    return {"metric": metric_code, "model": model, "properties": properties, **extra}


def e(metric_code: str, day: int, value: Any = None, hour: int = 12, **props: Any) -> Json:
    event: Json = {"metric": metric_code, "timestamp": f"2026-03-{day:02d}T{hour:02d}:00:00Z"}
    if value is not None:
        event["value"] = value
    if props:
        event["properties"] = props
    return event


def pct(**properties: Any) -> Json:
    return ch("gmv", "percentage", {"rate": "2", **properties})


# Transactions of 100, 50 and 25.5 (in time order), as in the brief.
GMV = [e("gmv", 2, amount=100), e("gmv", 3, amount=50), e("gmv", 4, amount="25.5")]
TIERS = [
    {"upTo": "10", "unitAmount": "1", "flatAmount": "5"},
    {"upTo": None, "unitAmount": "0.5", "flatAmount": "2"},
]

CASES = [
    Case(
        "per_unit",
        [m("calls", "count")],
        [ch("calls", "per_unit", {"unitAmount": "0.05"}, includedQuantity="10")],
        [e("calls", d) for d in range(1, 26)],
        # 25 calls, 10 included: 15 × 0.05 = 0.75
        [("calls", "25", "0.75")],
        "0.75",
    ),
    Case(
        "graduated",
        [m("storage", "sum")],
        [ch("storage", "graduated", {"tiers": TIERS})],
        [e("storage", 2, 8), e("storage", 9, "7.5")],
        # 15.5: 5 + 10 × 1, then 2 + 5.5 × 0.5 = 2.75 → 19.75
        [("storage", "15.5", "19.75")],
        "19.75",
    ),
    Case(
        "volume",
        [m("peak", "max", field="gb")],
        [ch("peak", "volume", {"tiers": TIERS})],
        [e("peak", 2, gb=4), e("peak", 10, gb=12), e("peak", 20, gb=7)],
        # max 12 falls in the second tier: 12 × 0.5 + 2 = 8.00
        [("peak", "12", "8.00")],
        "8.00",
    ),
    Case(
        "package",
        [m("users", "unique_count", field="user")],
        [ch("users", "package", {"amount": "10", "packageSize": "5", "freeUnits": "1"})],
        [e("users", d, user=u) for d, u in enumerate("abcabdefgh", start=1)],
        # 8 distinct users, 1 free: ⌈7 / 5⌉ = 2 packages × 10 = 20.00
        [("users", "8", "20.00")],
        "20.00",
    ),
    Case(
        "percentage",
        [m("gmv", "sum", field="amount")],
        [pct()],
        GMV,
        # 2 % × 175.5 = 3.51
        [("gmv", "175.5", "3.51")],
        "3.51",
    ),
    Case(
        "percentage_fixed_amount",
        [m("gmv", "sum", field="amount")],
        [pct(fixedAmount="0.30")],
        GMV,
        # 2 % × 175.5 + 3 × 0.30 = 3.51 + 0.90 = 4.41
        [("gmv", "175.5", "4.41")],
        "4.41",
    ),
    Case(
        "percentage_free_events",
        [m("gmv", "sum", field="amount")],
        [pct(freeUnitsPerEvents=2)],
        GMV,
        # the first two transactions are free: 2 % × 25.5 = 0.51
        [("gmv", "175.5", "0.51")],
        "0.51",
    ),
    Case(
        "percentage_free_total",
        [m("gmv", "sum", field="amount")],
        [pct(freeUnitsPerTotalAggregation="120")],
        GMV,
        # 120 free: 100 free, 50 pays on 30 → 0.60, 25.5 → 0.51; 1.11
        [("gmv", "175.5", "1.11")],
        "1.11",
    ),
    Case(
        "percentage_min_max",
        [m("gmv", "sum", field="amount")],
        [pct(perTransactionMin="1", perTransactionMax="1.5")],
        GMV,
        # fees 2.00 → 1.50 (max), 1.00, 0.51 → 1.00 (min); 3.50
        [("gmv", "175.5", "3.50")],
        "3.50",
    ),
    Case(
        "percentage_all_rules",
        [m("gmv", "sum", field="amount")],
        [pct(fixedAmount="0.30", freeUnitsPerEvents=1, perTransactionMax="1")],
        GMV,
        # 100 free; 50: 1.00 + 0.30 → 1.00 (max); 25.5: 0.51 + 0.30 = 0.81; 1.81
        [("gmv", "175.5", "1.81")],
        "1.81",
    ),
    Case(
        "graduated_percentage",
        [m("gmv", "sum", field="amount")],
        [
            ch(
                "gmv",
                "graduated_percentage",
                {
                    "tiers": [
                        {"upTo": "120", "rate": "2", "flatAmount": "1"},
                        {"upTo": None, "rate": "1", "flatAmount": "5"},
                    ]
                },
            )
        ],
        GMV,
        # 1 + 2 % × 120 = 3.40, then 5 + 1 % × 55.5 = 5.555; 8.955 → 8.96
        [("gmv", "175.5", "8.96")],
        "8.96",
    ),
    Case(
        "latest",
        [m("seats_now", "latest", field="seats")],
        [ch("seats_now", "per_unit", {"unitAmount": "3"})],
        [e("seats_now", 5, seats=5), e("seats_now", 20, seats=9), e("seats_now", 28, seats=7)],
        # the last value, 7 × 3 = 21.00
        [("seats_now", "7", "21.00")],
        "21.00",
    ),
    Case(
        "weighted_sum",
        [m("seats", "weighted_sum")],
        [ch("seats", "per_unit", {"unitAmount": "3"})],
        [e("seats", 1, 4, hour=0), e("seats", 16, 2, hour=0)],
        # 4 seats for 15 days, 6 for 16: 156 / 31 = 5.032258064516; × 3 = 15.0967… → 15.10
        [("seats", "5.032258064516", "15.10")],
        "15.10",
    ),
    Case(
        "filters_and_groups",
        [m("requests", "count", filters={"region": ["eu", "us"]}, groupBy=["region"])],
        [
            ch("requests", "per_unit", {"unitAmount": "0.5"}, filters={"method": ["GET"]}),
            ch(
                "requests",
                "package",
                {"amount": "4", "packageSize": "2"},
                filters={"method": ["POST"]},
            ),
        ],
        [e("requests", 3, region="eu", method="GET") for _ in range(3)]
        + [e("requests", 4, region="us", method="GET") for _ in range(2)]
        + [e("requests", 5, region="eu", method="POST") for _ in range(3)]
        + [e("requests", 6, region="ap", method="GET"), e("requests", 6, region="eu")],
        # GET: eu 3 × 0.5 = 1.50, us 2 × 0.5 = 1.00; POST: eu ⌈3 / 2⌉ × 4 = 8.00
        # (ap is not in the metric's filter; the event without a method in no charge's)
        [("requests", "3", "1.50"), ("requests", "2", "1.00"), ("requests", "3", "8.00")],
        "10.50",
        [{"region": "eu"}, {"region": "us"}, {"region": "eu"}],
    ),
    Case(
        "hard_cap",
        [m("tokens", "sum")],
        [ch("tokens", "per_unit", {"unitAmount": "0.1"}, hardCap="10")],
        [e("tokens", 2, 6), e("tokens", 3, 6)],
        # quantity shows every event (12); the amount prices at most the cap: 10 × 0.1
        [("tokens", "12", "1.00")],
        "1.00",
    ),
]


@dataclass
class Billed:
    client: Any
    cases: dict[str, Case]


@pytest.fixture(scope="module")
def billed(stack: Any) -> Billed:
    c = stack.tenant("usage-readout-models")
    events: list[Json] = []
    for case in CASES:
        # Metric codes are per tenant: each case has its own.
        rename = {spec["code"]: f"{case.id}.{spec['code']}" for spec in case.metrics}
        for spec in case.metrics:
            c.ok("POST", "/metrics", json={**spec, "code": rename[spec["code"]]})
        create_plan(c, case.id, [{**x, "metric": rename[x["metric"]]} for x in case.charges])
        create_customer(c, case.id, case.id, "2026-03-01")
        for n, event in enumerate(case.events):
            events.append(
                {**event, "id": f"{case.id}-{n}", "customerId": case.id,
                 "metric": rename[event["metric"]]}
            )  # fmt: skip
    send(c, events)
    bill(c, "2026-03-01", "2026-03-31")
    return Billed(c, {case.id: case for case in CASES})


@pytest.mark.parametrize("case_id", [case.id for case in CASES])
def test_readout_is_the_invoice(billed: Billed, case_id: str) -> None:
    c, case = billed.client, billed.cases[case_id]
    body = c.ok("GET", f"/customers/{case_id}/usage", params=MARCH)
    [invoice] = invoices(c, case_id)
    assert readout_lines(body) == usage_lines(invoice)
    assert [(r["metric"], r["quantity"], r["amount"]) for r in body["metrics"]] == [
        (f"{case_id}.{metric}", quantity, amount) for metric, quantity, amount in case.expected
    ]
    assert body["amount"] == case.total
    assert (body["customerId"], body["from"], body["to"], body["currency"]) == (
        case_id,
        MARCH["from"],
        MARCH["to"],
        "USD",
    )
    if case.groups:
        assert [r["group"] for r in body["metrics"]] == case.groups


def test_readout_of_a_part_of_the_period(billed: Billed) -> None:
    """A window inside a period prices its usage as that period's invoice would."""
    body = billed.client.ok(
        "GET",
        "/customers/percentage_fixed_amount/usage",
        params={"from": "2026-03-03", "to": "2026-03-31"},
    )
    # 50 and 25.5: 2 % × 75.5 + 2 × 0.30 = 1.51 + 0.60 = 2.11
    assert [(r["quantity"], r["amount"]) for r in body["metrics"]] == [("75.5", "2.11")]
    assert (body["from"], body["to"]) == ("2026-03-03T00:00:00Z", "2026-04-01T00:00:00Z")


# -- windows across periods and before the subscription ---------------------------------


@pytest.fixture(scope="module")
def yearly_window(stack: Any) -> Any:
    """Customers on monthly plans from 2026-01-01, with January-March usage, billed."""
    c = stack.tenant("usage-readout-windows")
    c.ok("POST", "/metrics", json=m("bytes", "sum"))
    create_plan(c, "flat", [ch("bytes", "per_unit", {"unitAmount": "0.01"})])
    create_plan(
        c,
        "tiered",
        [
            ch(
                "bytes",
                "graduated",
                {
                    "tiers": [
                        {"upTo": "100", "unitAmount": "0", "flatAmount": "5"},
                        {"upTo": None, "unitAmount": "0.01"},
                    ]
                },
            )
        ],
    )
    create_customer(c, "flat", "flat", "2026-01-01")
    create_customer(c, "tiered", "tiered", "2026-01-01")
    send(
        c,
        [
            {"id": "f1", "customerId": "flat", "metric": "bytes",
             "timestamp": "2026-01-10T00:00:00Z", "value": 10000},
            {"id": "f2", "customerId": "flat", "metric": "bytes",
             "timestamp": "2026-01-20T00:00:00Z", "value": 20},
            {"id": "f0", "customerId": "flat", "metric": "bytes",
             "timestamp": "2025-12-15T00:00:00Z", "value": 7},
            {"id": "t1", "customerId": "tiered", "metric": "bytes",
             "timestamp": "2026-01-10T00:00:00Z", "value": 150},
            {"id": "t3", "customerId": "tiered", "metric": "bytes",
             "timestamp": "2026-03-10T00:00:00Z", "value": 50},
        ],
    )  # fmt: skip
    bill(c, "2026-01-01", "2026-03-31")
    return c


def test_window_before_the_subscription_is_clipped_to_it(yearly_window: Any) -> None:
    c = yearly_window
    wide = c.ok(
        "GET",
        "/customers/flat/usage",
        params={"from": "2025-12-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"},
    )
    # The December 2025 event (7) lies before the subscription: neither counted nor billed.
    # 10,020 × 0.01 = 100.20, all in January, the other months cost nothing.
    assert [(r["metric"], r["quantity"], r["amount"]) for r in wide["metrics"]] == [
        ("bytes", "10020", "100.20")
    ]
    assert wide["amount"] == "100.20"
    assert (wide["from"], wide["to"]) == ("2025-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
    january = c.ok(
        "GET", "/customers/flat/usage", params={"from": "2026-01-01", "to": "2026-01-31"}
    )
    assert january["amount"] == "100.20"
    [first, *_] = invoices(c, "flat")
    assert usage_lines(first) == [("bytes", {}, "100.20")]


def test_empty_bounds_are_the_current_period(yearly_window: Any) -> None:
    empty = yearly_window.ok("GET", "/customers/flat/usage", params={"from": "", "to": ""})
    default = yearly_window.ok("GET", "/customers/flat/usage")
    assert empty == default


def test_window_of_several_periods_sums_each_periods_price(yearly_window: Any) -> None:
    c = yearly_window
    body = c.ok("GET", "/customers/tiered/usage", params={"from": "2026-01-01", "to": "2026-03-31"})
    # Priced per month, as the invoices are: January 150 → 5 + 50 × 0.01 = 5.50,
    # February nothing → 5.00 (the first tier's flat amount), March 50 → 5.00: 15.50.
    # (Priced as one period it would be 5 + 100 × 0.01 = 6.00.)
    assert [(r["quantity"], r["amount"]) for r in body["metrics"]] == [("200", "15.50")]
    billed = [usage_lines(inv) for inv in invoices(c, "tiered")]
    assert billed == [[("bytes", {}, "5.50")], [("bytes", {}, "5.00")], [("bytes", {}, "5.00")]]


# -- bad windows: a 422 that names the parameter, never a 500 ---------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "garbage"}, ["from", "garbage"]),
        ({"to": "garbage"}, ["to", "garbage"]),
        ({"from": "2026-13-01T00:00:00Z"}, ["from", "2026-13-01"]),
        ({"from": "2026-02-30"}, ["from", "2026-02-30"]),
        (
            {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"},
            ["'from'", "1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z"],
        ),
        ({"from": "2026-01-01", "to": "9999-12-31T23:59:59Z"}, ["to", "out of range"]),
        ({"from": "0001-01-01T00:00:00+05:00"}, ["from", "out of range"]),
        ({"from": "2026-01-01", "to": "2300-01-01"}, ["'to'", "2200-01-01T00:00:00Z"]),
        ({"from": "2026-02-01", "to": "2026-01-01"}, ["'to'", "after 'from'"]),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}, ["after 'from'"]),
        ({"from": "2199-06-01"}, ["'from'", "current billing period"]),
    ],
)
def test_bad_window_is_422(yearly_window: Any, params: dict[str, str], words: list[str]) -> None:
    response = yearly_window.get("/customers/flat/usage", params=params)
    assert_error(response, 422, "validation_error", *words)


_instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda t: t.isoformat().replace("+00:00", "Z"))
_window_text = st.one_of(
    st.none(),
    _instants,
    _instants.map(lambda s: s[:10]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.from_regex(r"\A[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?)?Z?\Z"),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=_window_text, end=_window_text)
def test_any_window_is_200_or_422(yearly_window: Any, start: str | None, end: str | None) -> None:
    params = {k: v for k, v in (("from", start), ("to", end)) if v is not None}
    response = yearly_window.get("/customers/tiered/usage", params=params)
    assert response.status_code in (200, 422), (params, response.text)
    if response.status_code == 422:
        assert response.json()["error"]["code"] == "validation_error"


# -- usage that the bill run cannot price either -----------------------------------------


def test_a_refund_event_keeps_the_subscription_billable(stack: Any) -> None:
    c = stack.tenant("usage-readout-unpriceable")
    c.ok("POST", "/metrics", json=m("gmv", "sum", field="amount"))
    create_plan(c, "refunds", [pct(fixedAmount="0.30")])
    create_customer(c, "shop", "refunds", "2026-03-01")
    send(
        c,
        [
            {"id": "p1", "customerId": "shop", "metric": "gmv",
             "timestamp": "2026-03-05T00:00:00Z", "properties": {"amount": 100}},
            {"id": "p2", "customerId": "shop", "metric": "gmv",
             "timestamp": "2026-03-06T00:00:00Z", "properties": {"amount": -5}},
        ],
    )  # fmt: skip
    # A negative transaction is a refund: no fee, no fixed amount (refunds are credit
    # notes), and the subscription stays billable: 2 % of 100 + 0.30.
    usage = c.ok("GET", "/customers/shop/usage", params=MARCH)
    assert usage["amount"] == "2.30", usage
    run = c.bill("2026-03-01", "2026-03-31")
    assert (run["status"], run["failed"], run["invoicesCreated"]) == ("completed", 0, 1), run


# -- the end-of-period projection ---------------------------------------------------------


@pytest.fixture
def frozen(stack: Any) -> Iterator[FrozenClock]:
    """The API's clock, frozen in October 2026 for one test."""
    clock = FrozenClock(datetime(2026, 10, 10, 12, tzinfo=UTC))
    previous, stack.runtime.clock = stack.runtime.clock, clock
    try:
        yield clock
    finally:
        stack.runtime.clock = previous


def test_projected_percentage_charge(stack: Any, frozen: FrozenClock) -> None:
    c = stack.tenant("usage-readout-projected")
    c.ok("POST", "/metrics", json=m("gmv", "sum", field="amount"))
    c.ok("POST", "/metrics", json=m("calls", "count"))
    create_plan(
        c,
        "pct",
        [
            pct(fixedAmount="0.30", freeUnitsPerEvents=1),
            ch("calls", "per_unit", {"unitAmount": "0.1"}),
        ],
    )
    create_customer(c, "shop", "pct", "2026-10-01")
    events = [
        {"id": f"g{n}", "customerId": "shop", "metric": "gmv",
         "timestamp": f"2026-10-0{n + 2}T12:00:00Z", "properties": {"amount": a}}
        for n, a in enumerate([100, 50, "25.5"])
    ] + [
        {"id": f"c{n}", "customerId": "shop", "metric": "calls",
         "timestamp": "2026-10-05T00:00:00Z"}
        for n in range(10)
    ]  # fmt: skip
    send(c, events)
    # So far (October, now Oct 10 12:00): 100 is free; 50 → 1.00 + 0.30 = 1.30;
    # 25.5 → 0.51 + 0.30 = 0.81: 2.11. Calls 10 × 0.1 = 1.00.
    now = c.ok("GET", "/customers/shop/usage")
    assert (now["from"], now["to"]) == ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
    assert [(r["quantity"], r["amount"]) for r in now["metrics"]] == [
        ("175.5", "2.11"),
        ("10", "1.00"),
    ]
    projected = c.ok("GET", "/customers/shop/usage/projected")
    # 10 of 31 days begun (a started day counts): × 3.1. The transactions go on as seen:
    # round(3 × 3.1) = 9 of them, 100, 50, 25.5 three times; only the first is free:
    # 2.11 + 2 × (2.00 + 0.30 + 1.30 + 0.81) = 2.11 + 8.82 = 10.93 on 526.5.
    # Calls: 10 × 3.1 = 31 × 0.1 = 3.10.
    assert (projected["from"], projected["to"]) == (now["from"], now["to"])
    assert [(r["quantity"], r["amount"]) for r in projected["metrics"]] == [
        ("526.5", "10.93"),
        ("31", "3.10"),
    ]
    assert projected["amount"] == "14.03"
    # After the period, nothing is left to project: the projection is the usage.
    frozen.set(datetime(2026, 11, 15, tzinfo=UTC))
    october = c.ok(
        "GET", "/customers/shop/usage", params={"from": "2026-10-01", "to": "2026-10-31"}
    )
    assert october["amount"] == "3.11"


def test_projection_of_each_aggregation(stack: Any, frozen: FrozenClock) -> None:
    """Now Oct 10 12:00, 10 of 31 days begun (× 3.1): count and sum grow by the factor;
    max, unique_count, latest and weighted_sum (a level held to the period's end) are
    the usage so far. docs/api-choices.md (Projection)."""
    c = stack.tenant("usage-readout-projection-aggregations")
    aggregations = ["count", "sum", "max", "unique_count", "latest", "weighted_sum"]
    for aggregation in aggregations:
        field = {"field": "user"} if aggregation == "unique_count" else {}
        c.ok("POST", "/metrics", json=m(f"m_{aggregation}", aggregation, **field))
    create_plan(c, "six", [ch(f"m_{a}", "per_unit", {"unitAmount": "0.5"}) for a in aggregations])
    create_customer(c, "six", "six", "2026-10-01")
    values = [("2026-10-01T00:00:00Z", "10", "u1"), ("2026-10-06T00:00:00Z", "-4", "u2"),
              ("2026-10-08T00:00:00Z", "3", "u1")]  # fmt: skip
    events = [
        {"id": f"{a}-{n}", "customerId": "six", "metric": f"m_{a}", "timestamp": ts,
         **({"properties": {"user": user}} if a == "unique_count" else {"value": value})}
        for a in aggregations
        for n, (ts, value, user) in enumerate(values)
    ]  # fmt: skip
    send(c, events)
    now = {r["metric"]: (r["quantity"], r["amount"]) for r in c.ok(
        "GET", "/customers/six/usage")["metrics"]}  # fmt: skip
    projected = {r["metric"]: (r["quantity"], r["amount"]) for r in c.ok(
        "GET", "/customers/six/usage/projected")["metrics"]}  # fmt: skip
    assert now["m_count"] == ("3", "1.50")
    assert projected["m_count"] == ("9.3", "4.65")  # 3 × 3.1
    assert now["m_sum"] == ("9", "4.50")
    assert projected["m_sum"] == ("27.9", "13.95")  # 9 × 3.1
    assert now["m_max"] == projected["m_max"] == ("10", "5.00")
    assert now["m_unique_count"] == projected["m_unique_count"] == ("2", "1.00")
    assert now["m_latest"] == projected["m_latest"] == ("3", "1.50")
    # The level 10 from Oct 1, 6 from Oct 6, 9 from Oct 8, held to Nov 1:
    # (10 × 5 + 6 × 2 + 9 × 24) / 31 = 278 / 31 = 8.967741935484 (12 places).
    assert now["m_weighted_sum"] == projected["m_weighted_sum"]
    assert now["m_weighted_sum"][0].startswith("8.96774193548")
    assert now["m_weighted_sum"][1] == "4.48"

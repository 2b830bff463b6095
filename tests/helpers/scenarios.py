"""The vocabulary of the end-to-end billing scenarios (tests/e2e/scenarios).

Build a catalog through the API in a tenant (`metric`, `plan`, `customer`, `coupon`),
send events and wait until ClickHouse has them (`ev`, `send`), run a bill run (`bill`),
fetch the invoices (`invoices`, `invoice`) and compare them as tuples (`lines`, `totals`,
`usage`, `fee`, `discount`).
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def metric(c: Any, code: str, aggregation: str, **extra: Any) -> None:
    c.ok("POST", "/metrics", json={"code": code, "name": code, "aggregation": aggregation, **extra})


def charge(metric_code: str, model: str, properties: Json, **extra: Any) -> Json:
    return {"metric": metric_code, "model": model, "properties": properties, **extra}


def per_unit(metric_code: str, unit_amount: str, **extra: Any) -> Json:
    return charge(metric_code, "per_unit", {"unitAmount": unit_amount}, **extra)


def plan(
    c: Any,
    code: str,
    charges: list[Json],
    *,
    currency: str = "USD",
    interval: str = "monthly",
    **extra: Any,
) -> None:
    c.ok(
        "POST",
        "/plans",
        json={
            "code": code,
            "name": code,
            "currency": currency,
            "interval": interval,
            "charges": charges,
            **extra,
        },
    )


def customer(
    c: Any, external_id: str, plan_code: str, start: str = "2026-10-01", **extra: Any
) -> Json:
    """A customer (in USD unless `currency` is given) subscribed to a plan from `start`."""
    sub_extra = {k: extra.pop(k) for k in ("endDate", "overrides") if k in extra}
    c.ok(
        "POST",
        "/customers",
        json={"externalId": external_id, "name": external_id, "currency": "USD", **extra},
    )
    sub: Json = c.ok(
        "POST",
        "/subscriptions",
        json={"customerId": external_id, "planCode": plan_code, "startDate": start, **sub_extra},
    )
    return sub


def ev(
    event_id: str, customer_id: str, metric_code: str, ts: str, value: Any = None, **props: Any
) -> Json:
    event: Json = {
        "id": event_id,
        "customerId": customer_id,
        "metric": metric_code,
        "timestamp": ts if "T" in ts else f"{ts}T12:00:00Z",
    }
    if value is not None:
        event["value"] = value
    if props:
        event["properties"] = props
    return event


def send(c: Any, events: list[Json], stored: int | None = None) -> None:
    """POST the events (all accepted) and wait until `stored` distinct ones are in ClickHouse."""
    body = c.ok("POST", "/events", json={"events": events})
    assert body == {"accepted": len(events), "rejected": []}
    c.wait_events(len({e["id"] for e in events}) if stored is None else stored)


def bill(c: Any, start: str, end: str, created: int | None = None) -> Json:
    run: Json = c.bill(start, end)
    assert run["status"] == "completed" and run["failed"] == 0, run
    if created is not None:
        assert run["invoicesCreated"] == created, run
    return run


def invoices(c: Any, customer_id: str) -> list[Json]:
    """The customer's invoices with their lines, oldest period first."""
    rows = c.ok("GET", "/invoices", params={"customerId": customer_id, "limit": 500})["data"]
    full = [c.ok("GET", f"/invoices/{r['id']}") for r in rows]
    return sorted(full, key=lambda i: i["periodStart"])


def invoice(c: Any, customer_id: str) -> Json:
    [only] = invoices(c, customer_id)
    return only


def lines(inv: Json) -> list[tuple[Any, ...]]:
    """(type, metric, quantity, unitAmount, amount, taxAmount) of every line, in order."""
    return [
        (ln["type"], ln["metric"], ln["quantity"], ln["unitAmount"], ln["amount"], ln["taxAmount"])
        for ln in inv["lines"]
    ]


def totals(inv: Json) -> tuple[str, ...]:
    """(subtotal, discountTotal, taxTotal, creditTotal, total, amountDue)."""
    return tuple(
        inv[k]
        for k in ("subtotal", "discountTotal", "taxTotal", "creditTotal", "total", "amountDue")
    )


def usage(metric_code: str, quantity: str, unit: str, amount: str, tax: str = "0.00") -> tuple:
    return ("USAGE_FEE", metric_code, quantity, unit, amount, tax)


def fee(amount: str, unit: str, kind: str = "CHARGE", tax: str = "0.00", qty: str = "1") -> tuple:
    return (kind, None, qty, unit, amount, tax)


def discount(amount: str, unit: str) -> tuple:
    return ("DISCOUNT", None, "1", unit, amount, "0.00")


Z = "0.00"


def coupon(c: Any, code: str, customer_id: str, **spec: Any) -> None:
    c.ok("POST", "/coupons", json={"code": code, **spec})
    c.ok("POST", f"/customers/{customer_id}/coupons", json={"couponCode": code})

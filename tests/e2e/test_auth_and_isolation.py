"""Authentication and tenant isolation through HTTP, on the live stack.

A wrong, missing or other tenant's key gets 401 or 403 and never data; tenant B can
neither see nor change anything of tenant A, and the same codes live independently in
both tenants (API.md, docs/api-choices.md, ARCHITECTURE.md invariant 6).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}


def _assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"error"}, body  # the error and nothing else: never data
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


@pytest.fixture
def raw(stack: Any) -> Any:
    with httpx.Client(base_url=f"{stack.base_url}/api/v1", timeout=30) as client:
        yield client


def _catalog(client: Any, name: str) -> dict[str, Any]:
    """A metric, a plan, a customer 'acme' and its subscription; returns the subscription."""
    client.ok("POST", "/metrics", json={"code": "api_calls", "name": name, "aggregation": "count"})
    client.ok(
        "POST",
        "/plans",
        json={
            "code": "pro",
            "name": name,
            "currency": "USD",
            "interval": "monthly",
            "baseFee": "10",
            "charges": [
                {"metric": "api_calls", "model": "per_unit", "properties": {"unitAmount": "1"}}
            ],
        },
    )
    client.ok("POST", "/customers", json={"externalId": "acme", "name": name, "currency": "USD"})
    return dict(
        client.ok(
            "POST",
            "/subscriptions",
            json={"customerId": "acme", "planCode": "pro", "startDate": "2026-10-01"},
        )
    )


def _events(count: int, name: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"evt_{i}",
            "customerId": "acme",
            "metric": "api_calls",
            "timestamp": f"2026-10-{i + 2:02d}T08:00:00Z",
            "properties": {"who": name},
        }
        for i in range(count)
    ]


PROTECTED = [
    ("GET", "/metrics"),
    ("POST", "/metrics"),
    ("GET", "/plans"),
    ("GET", "/customers"),
    ("GET", "/customers/acme"),
    ("GET", "/customers/acme/usage"),
    ("GET", "/subscriptions"),
    ("GET", "/invoices"),
    ("POST", "/events"),
    ("POST", "/bill-runs"),
]


# Valid bodies: a request that slipped past auth would succeed, not fail validation.
BODIES: dict[str, dict[str, Any]] = {
    "/metrics": {"code": "sneaky", "name": "x", "aggregation": "count"},
    "/events": {"events": _events(1, "x")},
    "/bill-runs": {"periodStart": "2026-10-01", "periodEnd": "2026-10-31"},
}


def _send(client: httpx.Client, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
    body = BODIES[url] if method == "POST" else None
    return client.request(method, url, headers=headers, json=body)


def test_health_endpoints_need_no_auth(raw: httpx.Client, stack: Any) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "meterline_stream_consumed_total" in metrics.text


def test_missing_malformed_and_unknown_keys_get_401(raw: httpx.Client, stack: Any) -> None:
    tenant = stack.tenant("auth-401")
    tenant.ok("POST", "/customers", json={"externalId": "acme", "name": "A", "currency": "USD"})
    bad_auth: list[dict[str, str]] = [
        {},
        {"Authorization": f"Basic {tenant.api_key}"},
        {"Authorization": "Bearer"},  # (HTTP clients strip a trailing space: "Bearer ")
        {"Authorization": f"Token {tenant.api_key}"},
        {"Authorization": tenant.api_key},
        {"Authorization": "Bearer ml_not-a-real-key"},
        {"Authorization": f"Bearer {tenant.api_key}x"},
    ]
    for auth in bad_auth:
        headers = {**auth, "X-Tenant-Id": tenant.tenant_id}
        for method, url in PROTECTED:
            response = _send(raw, method, url, headers)
            error = _assert_error(response, 401, "unauthorized")
            assert tenant.api_key not in error["message"]
    # A valid key without X-Tenant-Id is not enough either.
    for method, url in PROTECTED:
        response = _send(raw, method, url, {"Authorization": f"Bearer {tenant.api_key}"})
        _assert_error(response, 401, "unauthorized")
    # None of those requests changed anything.
    assert [m["code"] for m in tenant.ok("GET", "/metrics")["data"]] == []
    assert tenant.ok("GET", "/customers/acme")["name"] == "A"


def test_a_key_for_another_tenant_gets_403(raw: httpx.Client, stack: Any) -> None:
    a = stack.tenant("auth-a")
    b = stack.tenant("auth-b")
    a.ok("POST", "/customers", json={"externalId": "acme", "name": "A", "currency": "USD"})
    for key, tenant_id in ((b.api_key, a.tenant_id), (a.api_key, b.tenant_id)):
        headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": tenant_id}
        for method, url in PROTECTED:
            _assert_error(_send(raw, method, url, headers), 403, "forbidden")
    # Unknown tenant id with a valid key: also refused, never another tenant's data.
    headers = {"Authorization": f"Bearer {a.api_key}", "X-Tenant-Id": "ten_nobody"}
    _assert_error(raw.get("/customers/acme", headers=headers), 403, "forbidden")
    assert a.ok("GET", "/metrics")["data"] == []
    assert b.ok("GET", "/customers")["data"] == []


def test_tenant_b_cannot_see_or_change_tenant_a(stack: Any) -> None:
    a = stack.tenant("iso-a")
    b = stack.tenant("iso-b")
    sub_a = _catalog(a, "A")
    assert a.ok("POST", "/events", json={"events": _events(3, "a")})["accepted"] == 3
    a.wait_events(3)
    run_a = a.bill("2026-10-01", "2026-10-31")
    assert run_a["status"] == "completed", run_a
    [invoice_a] = a.ok("GET", "/invoices")["data"]

    def not_found(method: str, url: str, **kwargs: Any) -> None:
        _assert_error(b.request(method, url, **kwargs), 404, "not_found")

    not_found("GET", "/metrics/api_calls")
    not_found("PATCH", "/metrics/api_calls", json={"name": "hijacked"})
    not_found("DELETE", "/metrics/api_calls")
    not_found("GET", "/plans/pro")
    not_found("GET", "/customers/acme")
    not_found("PATCH", "/customers/acme", json={"name": "hijacked"})
    not_found("GET", "/customers/acme/usage", params=OCTOBER)
    not_found("GET", "/customers/acme/usage/projected")
    not_found("GET", f"/subscriptions/{sub_a['id']}")
    not_found("POST", f"/subscriptions/{sub_a['id']}/terminate")
    not_found("GET", f"/invoices/{invoice_a['id']}")
    not_found("POST", f"/invoices/{invoice_a['id']}/finalize")
    not_found("POST", f"/invoices/{invoice_a['id']}/void")
    not_found("POST", f"/invoices/{invoice_a['id']}/payments", json={"amount": "1.00"})
    not_found("GET", f"/bill-runs/{run_a['id']}")
    # B cannot subscribe A's customer to A's plan either.
    response = b.post(
        "/subscriptions", json={"customerId": "acme", "planCode": "pro", "startDate": "2026-10-01"}
    )
    assert response.status_code in (404, 422), response.text
    for listing in ("/metrics", "/plans", "/customers", "/subscriptions", "/invoices"):
        assert b.ok("GET", listing) == {"data": [], "nextCursor": None}, listing
    assert b.ok("GET", "/invoices", params={"customerId": "acme"})["data"] == []

    # A's data is untouched.
    assert a.ok("GET", "/metrics/api_calls")["name"] == "A"
    assert a.ok("GET", "/customers/acme")["name"] == "A"
    assert a.ok("GET", f"/subscriptions/{sub_a['id']}")["status"] == "active"
    assert a.ok("GET", f"/invoices/{invoice_a['id']}")["status"] == "DRAFT"

    # The same codes exist in B independently, with B's own content.
    sub_b = _catalog(b, "B")
    assert sub_b["id"] != sub_a["id"]
    assert b.ok("GET", "/metrics/api_calls")["name"] == "B"
    assert a.ok("GET", "/metrics/api_calls")["name"] == "A"
    b.ok("PATCH", "/customers/acme", json={"name": "B renamed"})
    assert a.ok("GET", "/customers/acme")["name"] == "A"
    b.ok("POST", f"/subscriptions/{sub_b['id']}/terminate")
    assert a.ok("GET", f"/subscriptions/{sub_a['id']}")["status"] == "active"

    # B's events for its "acme" (even with A's event ids) never reach A's usage.
    assert b.ok("POST", "/events", json={"events": _events(5, "b")})["accepted"] == 5
    b.wait_events(5)
    usage_a = a.ok("GET", "/customers/acme/usage", params=OCTOBER)
    assert [(m["metric"], m["quantity"]) for m in usage_a["metrics"]] == [("api_calls", "3")]
    usage_b = b.ok("GET", "/customers/acme/usage", params=OCTOBER)
    assert [(m["metric"], m["quantity"]) for m in usage_b["metrics"]] == [("api_calls", "5")]
    assert a.ok("GET", f"/invoices/{invoice_a['id']}")["total"] == invoice_a["total"]


def test_events_of_another_tenant_for_a_customer_it_lacks_stay_out(stack: Any) -> None:
    """B sends events for 'acme' without having such a customer: A's acme sees none."""
    a = stack.tenant("iso-events-a")
    b = stack.tenant("iso-events-b")
    _catalog(a, "A")
    assert b.ok("POST", "/events", json={"events": _events(4, "b")})["accepted"] == 4
    assert a.ok("POST", "/events", json={"events": _events(2, "a")[:1]})["accepted"] == 1
    b.wait_events(4)
    a.wait_events(1)
    usage = a.ok("GET", "/customers/acme/usage", params=OCTOBER)
    assert [(m["metric"], m["quantity"]) for m in usage["metrics"]] == [("api_calls", "1")]
    assert usage["amount"] == "1.00"
    _assert_error(b.get("/customers/acme/usage", params=OCTOBER), 404, "not_found")


def _revoke(stack: Any, tenant_id: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from invoicing.models import ApiKey

    with stack.runtime.session() as session:
        session.execute(
            update(ApiKey).where(ApiKey.tenant_id == tenant_id).values(revoked_at=datetime.now(UTC))
        )


def test_a_revoked_key_never_used_is_refused(stack: Any) -> None:
    tenant = stack.tenant("revoked-fresh")
    _revoke(stack, tenant.tenant_id)
    _assert_error(tenant.get("/metrics"), 401, "unauthorized")


def test_a_revoked_key_is_refused_after_it_was_used(stack: Any) -> None:
    tenant = stack.tenant("revoked-used")
    tenant.ok("GET", "/metrics")
    _revoke(stack, tenant.tenant_id)
    _assert_error(tenant.get("/metrics"), 401, "unauthorized")

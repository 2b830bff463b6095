"""The activity log: every change of the catalog, customers, subscriptions, invoices,
credit notes, connections, dunning and settings records exactly one entry, in the
change's transaction, naming the request's API key; a refused change records none;
credentials never reach it; filters, keyset pages, tenant isolation and retention."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from invoicing import activity as activity_log
from invoicing.activity import Actor
from invoicing.db import transaction
from invoicing.retention import purge_expired
from tests.audit.conftest import activity, key_id
from tests.billing.fakes import InMemoryUsage
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient

pytestmark = pytest.mark.ledger

STRIPE_KEY = "sk_test_audit_4242424242"
HOOK_SECRET = "whsec_audit_0123456789"
ERP_SECRET = "erp-audit-secret-7f3a9c"
HOOK_URL = "http://127.0.0.1:9/hooks/T000/B000/tokeninpath"


class Recorded:
    """Sends changes and insists that each adds exactly one entry, of the client's key."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.key = key_id(api)
        self.calls = 0

    def __call__(
        self,
        method: str,
        url: str,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        self.calls += 1
        before = {e["id"] for e in activity(self.api)}
        body = self.api.ok(method, url, **kwargs)
        new = [e for e in activity(self.api) if e["id"] not in before]
        assert [e["action"] for e in new] == [action], f"{method} {url}"
        (entry,) = new
        assert entry["resourceType"] == resource_type
        if resource_id is not None:
            assert entry["resourceId"] == resource_id
        assert entry["actor"] == {"type": "api_key", "id": self.key}
        assert entry["at"].startswith(self.api.clock.now().strftime("%Y-%m-%dT%H:%M:%S"))
        return body if body is not None else entry


def _catalog(rec: Recorded) -> None:
    metric = {"code": "calls", "name": "Calls", "aggregation": "sum"}
    rec("POST", "/metrics", "metric.created", "metric", "calls", json=metric)
    rec("PATCH", "/metrics/calls", "metric.updated", "metric", "calls", json={"name": "API"})
    rec("POST", "/metrics", "metric.created", "metric", "tmp", json={**metric, "code": "tmp"})
    rec("DELETE", "/metrics/tmp", "metric.deleted", "metric", "tmp")
    plan = {
        "code": "basic",
        "name": "Basic",
        "currency": "USD",
        "interval": "monthly",
        "baseFee": "10",
        "charges": [{"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "1"}}],
    }
    rec("POST", "/plans", "plan.created", "plan", "basic", json=plan)
    add_on = {"code": "setup", "name": "Setup", "amount": "50", "currency": "USD"}
    rec("POST", "/add-ons", "add_on.created", "add_on", "setup", json=add_on)
    rec("PATCH", "/add-ons/setup", "add_on.updated", "add_on", "setup", json={"name": "Onboard"})
    rec("DELETE", "/add-ons/setup", "add_on.deleted", "add_on", "setup")
    tax = {"code": "vat", "name": "VAT", "rate": "20"}
    rec("POST", "/taxes", "tax.created", "tax", "vat", json=tax)
    rec("DELETE", "/taxes/vat", "tax.deleted", "tax", "vat")
    coupon = {"code": "c10", "type": "percentage", "percentage": "10"}
    rec("POST", "/coupons", "coupon.created", "coupon", "c10", json=coupon)


def _customers(rec: Recorded) -> None:
    customer = {"externalId": "acme", "name": "Acme", "currency": "USD"}
    rec("POST", "/customers", "customer.created", "customer", "acme", json=customer)
    entry = rec("PATCH", "/customers/acme", "customer.updated", "customer", "acme",
                json={"name": "Acme Inc"})  # fmt: skip
    applied = rec("POST", "/customers/acme/coupons", "customer.coupon_applied", "customer",
                  "acme", json={"couponCode": "c10"})  # fmt: skip
    rec("DELETE", f"/customers/acme/coupons/{applied['id']}", "customer.coupon_removed",
        "customer", "acme")  # fmt: skip
    rec.api.runtime.usage = InMemoryUsage()  # a termination may rate the period so far
    sub = {"customerId": "acme", "planCode": "basic", "startDate": "2026-10-01"}
    created = rec("POST", "/subscriptions", "subscription.created", "subscription", json=sub)
    rec("POST", f"/subscriptions/{created['id']}/terminate", "subscription.terminated",
        "subscription", created["id"])  # fmt: skip
    assert entry["name"] == "Acme Inc"


def _invoices(rec: Recorded) -> None:
    api = rec.api
    draft = api.draft("acme", "100.00")
    rec("POST", f"/invoices/{draft}/tax-override", "invoice.tax_overridden", "invoice", draft,
        json={"taxTotal": "5.00", "reason": "agreed"})  # fmt: skip
    rec("POST", f"/invoices/{draft}/finalize", "invoice.finalized", "invoice", draft)
    rec("POST", f"/invoices/{draft}/payments", "invoice.payment_recorded", "invoice", draft,
        json={"amount": "10.00", "reference": "wire-1"})  # fmt: skip
    note = {"invoiceId": draft, "amount": "5.00", "reason": "OTHER", "type": "offset"}
    created = rec("POST", "/credit-notes", "credit_note.created", "credit_note", json=note)
    rec("POST", f"/credit-notes/{created['id']}/issue", "credit_note.issued", "credit_note",
        created["id"])  # fmt: skip
    rec("POST", f"/credit-notes/{created['id']}/apply", "credit_note.applied", "credit_note",
        created["id"])  # fmt: skip
    second = rec("POST", "/credit-notes", "credit_note.created", "credit_note", json=note)
    rec("POST", f"/credit-notes/{second['id']}/void", "credit_note.voided", "credit_note",
        second["id"])  # fmt: skip
    other = api.draft("acme", "30.00", index=1)
    rec("POST", f"/invoices/{other}/finalize", "invoice.finalized", "invoice", other)
    rec("POST", f"/invoices/{other}/void", "invoice.voided", "invoice", other)
    regenerated = rec("POST", f"/invoices/{other}/regenerate", "invoice.regenerated", "invoice",
                      other)  # fmt: skip
    (entry,) = activity(api, action="invoice.regenerated")
    assert entry["changes"] == {"draftId": regenerated["id"]}


def _connections(rec: Recorded) -> None:
    stripe = {"provider": "stripe", "config": {"secretKey": STRIPE_KEY, "baseUrl": HOOK_URL}}
    provider = rec("POST", "/payment-providers", "payment_provider.connected",
                   "payment_provider", json=stripe)  # fmt: skip
    rec("PATCH", f"/payment-providers/{provider['id']}", "payment_provider.updated",
        "payment_provider", provider["id"], json={"config": stripe["config"]})  # fmt: skip
    rec("DELETE", f"/payment-providers/{provider['id']}", "payment_provider.disconnected",
        "payment_provider", provider["id"])  # fmt: skip
    hook = {"url": HOOK_URL, "secret": HOOK_SECRET, "events": ["invoice.finalized"]}
    endpoint = rec("POST", "/webhook-endpoints", "webhook_endpoint.created", "webhook_endpoint",
                   json=hook)  # fmt: skip
    rec("PATCH", f"/webhook-endpoints/{endpoint['id']}", "webhook_endpoint.updated",
        "webhook_endpoint", endpoint["id"], json={"secret": HOOK_SECRET + "2"})  # fmt: skip
    rec("DELETE", f"/webhook-endpoints/{endpoint['id']}", "webhook_endpoint.deleted",
        "webhook_endpoint", endpoint["id"])  # fmt: skip
    erp = {"provider": "custom_webhook", "config": {"url": HOOK_URL, "secret": ERP_SECRET}}
    connection = rec("POST", "/erp/connections", "erp_connection.created", "erp_connection",
                     json=erp)  # fmt: skip
    rec("DELETE", f"/erp/connections/{connection['id']}", "erp_connection.disconnected",
        "erp_connection", connection["id"])  # fmt: skip


def _settings(rec: Recorded) -> None:
    tenant = rec.api.tenant_id
    dunning = {"steps": [{"afterDays": d} for d in (1, 2, 3, 4, 5)], "uncollectibleAfterDays": 9}
    rec("PUT", "/dunning", "dunning_policy.updated", "dunning_policy", tenant, json=dunning)
    rec("PUT", "/settings", "settings.updated", "settings", tenant,
        json={"activityRetentionDays": 90})  # fmt: skip
    seller = {"legalName": "Seller GmbH", "addressLine1": "Hauptstr. 1", "city": "Berlin",
              "postalCode": "10115", "country": "DE"}  # fmt: skip
    rec("PUT", "/billing-entity", "billing_entity.updated", "billing_entity", tenant, json=seller)


def test_each_change_records_one_entry_of_the_requests_key(api: ApiClient) -> None:
    rec = Recorded(api)
    _catalog(rec)
    _customers(rec)
    _invoices(rec)
    _connections(rec)
    _settings(rec)
    assert rec.calls == 39 and len(activity(api)) == 39
    # reads record nothing
    api.ok("GET", "/customers/acme")
    api.ok("GET", "/invoices")
    assert len(activity(api)) == 39


def test_changes_hold_what_was_sent_and_never_a_credential(api: ApiClient) -> None:
    rec = Recorded(api)
    api.customer("acme")
    rec("PATCH", "/customers/acme", "customer.updated", "customer", "acme",
        json={"name": "Acme Inc", "email": "ap@acme.test"})  # fmt: skip
    _connections(rec)
    text = json.dumps(activity(api))
    for secret in (STRIPE_KEY, HOOK_SECRET, ERP_SECRET, "tokeninpath", "/hooks/"):
        assert secret not in text
    (updated,) = activity(api, action="customer.updated")
    assert updated["changes"] == {"name": "Acme Inc", "email": "ap@acme.test"}
    (connected,) = activity(api, action="payment_provider.connected")
    assert connected["changes"] == {
        "provider": "stripe",
        "config": {"secretKey": "[redacted]", "baseUrl": "[redacted]"},
    }
    (hook,) = activity(api, action="webhook_endpoint.created")
    assert hook["changes"] == {
        "url": "http://127.0.0.1:9",
        "secret": "[redacted]",
        "events": ["invoice.finalized"],
    }
    assert hook["requestId"].startswith("req_")


def test_a_refused_change_records_nothing(api: ApiClient) -> None:
    api.customer("acme")
    metric = {"code": "calls", "name": "Calls", "aggregation": "sum"}
    api.ok("POST", "/metrics", json=metric)
    draft = api.draft("acme")
    api.ok("POST", f"/invoices/{draft}/finalize")
    count = len(activity(api))

    api.error("POST", "/metrics", 409, json=metric)  # the domain refuses: rolled back
    api.error("POST", "/metrics", 422, json={"code": "x"})  # refused before the route
    api.error("POST", f"/invoices/{draft}/finalize", 409)  # inside runtime.session()
    api.error("POST", "/invoices/inv_nope/finalize", 404)
    api.error("POST", f"/invoices/{draft}/payments", 422, json={"amount": "100000.00"})
    api.error("PATCH", "/customers/nobody", 404, json={"name": "x"})
    api.error("PUT", "/settings", 422, json={"requestLogRetentionDays": 0})
    api.error("PUT", "/settings", 422, json={"activityRetentionDays": 3651})
    assert len(activity(api)) == count


def test_an_entry_rolls_back_with_its_change(api: ApiClient) -> None:
    # The recorder writes into the change's session: both go, or neither.
    actor = Actor("api_key", key_id(api))
    with pytest.raises(RuntimeError), transaction(api.runtime.sessions) as session:
        activity_log.record(session, api.tenant_id, actor, DEFAULT_NOW, "x.y", "x", "1")
        raise RuntimeError("the change failed")
    assert activity(api) == []


def test_filters_and_keyset_pages(api: ApiClient) -> None:
    for i in range(7):
        api.clock.advance(timedelta(hours=1))
        api.customer(f"c{i}")
    api.clock.advance(timedelta(hours=1))
    api.ok("PATCH", "/customers/c3", json={"name": "Three"})

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", "/activity", params=params)
        seen.extend(page["data"])
        cursor = page["nextCursor"]
        assert len(page["data"]) <= 3
        if cursor is None:
            break
    assert len(seen) == 8 and len({e["id"] for e in seen}) == 8
    assert [e["at"] for e in seen] == sorted((e["at"] for e in seen), reverse=True)
    assert seen[0]["action"] == "customer.updated"

    assert [e["action"] for e in activity(api, resourceType="customer", resourceId="c3")] == [
        "customer.updated",
        "customer.created",
    ]
    assert len(activity(api, action="customer.created")) == 7
    start = DEFAULT_NOW + timedelta(hours=3)
    end = DEFAULT_NOW + timedelta(hours=5)
    window = activity(api, **{"from": start.isoformat(), "to": end.isoformat()})
    assert [e["resourceId"] for e in window] == ["c4", "c3", "c2"]
    assert activity(api, resourceType="invoice") == []
    assert api.error("GET", "/activity", 422, params={"from": "yesterday"})["code"]
    assert api.error("GET", "/activity", 422, params={"cursor": "nope"})["code"]
    assert api.error("GET", "/activity", 422, params={"limit": 0})["code"]


def test_a_tenant_never_sees_another_tenants_entries(api: ApiClient, other: ApiClient) -> None:
    api.customer("acme")
    other.customer("globex")
    mine = activity(api)
    theirs = activity(other)
    assert [e["resourceId"] for e in mine] == ["acme"]
    assert [e["resourceId"] for e in theirs] == ["globex"]
    assert activity(other, resourceId="acme") == []
    assert theirs[0]["actor"]["id"] == key_id(other) != key_id(api)
    # A's key with B's tenant header is refused, not answered with either log.
    response = api.get("/activity", headers={"X-Tenant-Id": other.tenant_id})
    assert response.status_code == 403


def test_retention_purges_what_is_older_than_the_tenants_days(
    api: ApiClient, other: ApiClient
) -> None:
    api.customer("old")
    other.customer("theirs")
    api.ok("PUT", "/settings", json={"activityRetentionDays": 30})
    assert api.ok("GET", "/settings")["activityRetentionDays"] == 30
    assert other.ok("GET", "/settings")["activityRetentionDays"] == 365

    api.clock.advance(timedelta(days=20))
    api.customer("recent")
    sessions = api.runtime.sessions

    # 30 days after the first entries: nothing is older than 30 days yet
    at = DEFAULT_NOW + timedelta(days=30)
    assert purge_expired(sessions, at).activity == 0
    # a second later the first three (customer, settings.updated... of A) go
    gone = purge_expired(sessions, at + timedelta(seconds=1))
    assert gone.activity == 2
    assert purge_expired(sessions, at + timedelta(seconds=1)).activity == 0  # idempotent
    api.clock.set(at + timedelta(seconds=1))
    assert [e["resourceId"] for e in activity(api)] == ["recent"]
    # B keeps 365 days
    assert [e["resourceId"] for e in activity(other)] == ["theirs"]
    assert purge_expired(sessions, DEFAULT_NOW + timedelta(days=366)).activity == 2

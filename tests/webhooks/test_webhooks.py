"""Webhooks through the API against a real receiver on loopback, on SQLite and
PostgreSQL: endpoint CRUD and its refusals, the exact body and headers and a signature
that verifies, type filters, retries with backoff, a timeout, giving up, a manual
retry, a sender that dies mid-attempt, a slow endpoint that holds only its own share,
and tenant isolation."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from invoicing.models import WebhookEndpointRow
from invoicing.webhooks import deliveries
from invoicing.webhooks.signing import verify
from meterline import deliverers
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.ledger

SECRET = "whsec_test_0123456789"


def _endpoint(api: ApiClient, url: str, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = api.ok(
        "POST", "/webhook-endpoints", json={"url": url, "secret": SECRET, **fields}
    )
    return created


def _deliver(api: ApiClient) -> deliverers.DeliveryPass:
    return deliverers.deliver(api.runtime, api.clock.now())


def _log(api: ApiClient, endpoint_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.ok("GET", f"/webhook-endpoints/{endpoint_id}/deliveries")[
        "data"
    ]
    return data


def test_endpoint_crud_and_its_refusals(api: ApiClient, receiver: Receiver) -> None:
    response = api.post(
        "/webhook-endpoints",
        json={"url": receiver.url, "secret": SECRET, "events": ["invoice.paid"]},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"].startswith("we_")
    assert created["url"] == receiver.url and created["events"] == ["invoice.paid"]
    assert created["status"] == "enabled"
    assert "secret" not in created and SECRET not in response.text
    # sealed at rest
    with api.runtime.sessions() as session:
        stored = session.execute(select(WebhookEndpointRow.secret)).scalar_one()
    assert SECRET not in stored

    assert api.ok("GET", f"/webhook-endpoints/{created['id']}") == created
    assert api.ok("GET", "/webhook-endpoints")["data"] == [created]
    patched = api.ok(
        "PATCH", f"/webhook-endpoints/{created['id']}", json={"events": None, "status": "disabled"}
    )
    assert patched["events"] is None and patched["status"] == "disabled"
    assert patched["url"] == receiver.url

    for body, code in (
        ({"url": "ftp://x.test/h", "secret": SECRET}, "invalid_url"),
        ({"url": "not a url", "secret": SECRET}, "invalid_url"),
        ({"url": receiver.url, "secret": SECRET, "events": ["invoice.exploded"]},
         "unknown_event_type"),
        ({"url": receiver.url, "secret": "   "}, None),
        ({"url": receiver.url}, None),
        ({"url": receiver.url, "secret": SECRET, "filter": ["x"]}, None),
    ):  # fmt: skip
        error = api.error("POST", "/webhook-endpoints", 422, json=body)
        if code:
            assert error["code"] == code, error

    response = api.delete(f"/webhook-endpoints/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    api.error("GET", f"/webhook-endpoints/{created['id']}", 404)
    api.error("DELETE", f"/webhook-endpoints/{created['id']}", 404)
    assert api.ok("GET", "/webhook-endpoints")["data"] == []


def test_private_destinations_refused_when_configured(ledger_url: str, tmp_path: Path) -> None:
    with ledger_api(ledger_url, tmp_path, webhook_block_private=True) as api:
        for url in ("http://127.0.0.1:9/h", "http://localhost/h", "http://10.1.2.3/h",
                    "http://[::1]/h", "http://169.254.169.254/latest"):  # fmt: skip
            error = api.error("POST", "/webhook-endpoints", 422, json={"url": url, "secret": "s"})
            assert error["code"] == "private_destination", url


def test_a_delivery_is_the_signed_event_with_the_object_as_get_returns_it(
    api: ApiClient, receiver: Receiver
) -> None:
    endpoint = _endpoint(api, receiver.url)
    api.customer("acme")
    invoice = api.open_invoice("acme", "42.00")
    assert receiver.hits == []  # delivered by the deliverer, not inside the request
    assert _deliver(api).webhooks.succeeded == 1
    (hit,) = receiver.hits
    assert hit.path == "/hooks"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Meterline-Event"] == "invoice.finalized"
    assert verify(SECRET, hit.body, hit.headers["X-Meterline-Signature"])
    assert not verify(SECRET, hit.body + b" ", hit.headers["X-Meterline-Signature"])
    body = hit.json
    assert list(body) == ["id", "type", "createdAt", "data"]
    assert body["type"] == "invoice.finalized" and body["id"].startswith("evt_")
    assert body["createdAt"] == "2026-11-01T09:00:00Z"
    assert body["data"] == api.ok("GET", f"/invoices/{invoice['id']}")
    (delivery,) = _log(api, endpoint["id"])
    assert hit.headers["X-Meterline-Delivery"] == delivery["id"]
    assert delivery == {
        "id": delivery["id"], "endpointId": endpoint["id"], "eventId": body["id"],
        "type": "invoice.finalized", "status": "succeeded", "attempts": 1,
        "responseCode": 200, "lastAttemptAt": "2026-11-01T09:00:00Z", "nextAttemptAt": None,
        "lastError": None, "createdAt": "2026-11-01T09:00:00Z",
    }  # fmt: skip
    assert _deliver(api).webhooks.attempted == 0  # once


def test_type_filters_and_every_family(api: ApiClient, receiver: Receiver) -> None:
    with webhook_receiver() as notes:
        _endpoint(api, receiver.url)  # every type
        _endpoint(api, notes.url, events=["credit_note.issued", "payment.succeeded"])
        api.customer("acme")
        invoice = api.open_invoice("acme", "100.00")
        note = api.ok(
            "POST", "/credit-notes",
            json={"invoiceId": invoice["id"], "amount": "10.00", "reason": "OTHER"},
        )  # fmt: skip
        api.ok("POST", f"/credit-notes/{note['id']}/issue")
        payment = api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "5.00"})
        _deliver(api)
        # at least once, in no promised order (createdAt orders them)
        assert sorted(b["type"] for b in receiver.bodies()) == [
            "credit_note.created", "credit_note.issued", "invoice.finalized", "payment.succeeded",
        ]  # fmt: skip
        issued, paid = sorted(notes.bodies(), key=lambda b: str(b["type"]))
        assert [issued["type"], paid["type"]] == ["credit_note.issued", "payment.succeeded"]
        assert issued["data"]["id"] == note["id"] and issued["data"]["status"] == "ISSUED"
        assert paid["data"] == api.ok("GET", f"/payments/{payment['id']}")


def test_failures_are_retried_with_backoff_then_given_up(
    api: ApiClient, receiver: Receiver
) -> None:
    endpoint = _endpoint(api, receiver.url)
    receiver.answers = [500, 503, 200]
    api.customer("acme")
    api.open_invoice("acme", "10.00")
    assert _deliver(api).webhooks.retrying == 1
    (first,) = _log(api, endpoint["id"])
    assert (first["status"], first["responseCode"], first["lastError"]) == (
        "pending", 500, "HTTP 500",
    )  # fmt: skip
    retry_at = datetime.fromisoformat(first["nextAttemptAt"])
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    assert start + timedelta(seconds=6.4) <= retry_at <= start + timedelta(seconds=8)  # < 10 s
    assert _deliver(api).webhooks.attempted == 0  # not due yet
    api.clock.advance(timedelta(seconds=8))
    assert _deliver(api).webhooks.retrying == 1
    api.clock.advance(timedelta(seconds=16))
    assert _deliver(api).webhooks.succeeded == 1
    (done,) = _log(api, endpoint["id"])
    assert (done["status"], done["attempts"], done["responseCode"]) == ("succeeded", 3, 200)
    # every attempt carried the same event, the same body, the same signature
    assert len({h.body for h in receiver.hits}) == 1
    assert len({h.headers["X-Meterline-Signature"] for h in receiver.hits}) == 1

    # a receiver that never answers 2xx: eleven attempts over more than an hour, then failed
    receiver.answers = [410]
    api.open_invoice("acme", "10.00", index=1)
    began = api.clock.now()
    attempts = 0
    while True:
        attempts += _deliver(api).webhooks.attempted
        latest = _log(api, endpoint["id"])[0]
        if latest["status"] == "failed":
            break
        api.clock.set(datetime.fromisoformat(latest["nextAttemptAt"]))
    assert attempts == latest["attempts"] == 11
    assert datetime.fromisoformat(latest["lastAttemptAt"]) - began > timedelta(hours=1)

    # a manual retry is one more attempt, now
    receiver.answers = [200]
    response = api.post(f"/webhook-deliveries/{latest['id']}/retry")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert _deliver(api).webhooks.succeeded == 1
    assert _log(api, endpoint["id"])[0]["status"] == "succeeded"
    receiver.answers = [500]
    api.ok("POST", f"/webhook-deliveries/{latest['id']}/retry")
    assert _deliver(api).webhooks.failed == 1  # a manual retry's failure is final
    api.error("POST", "/webhook-deliveries/whd_nope/retry", 404)


def test_no_answer_in_ten_seconds_is_a_failure(tmp_path: Path) -> None:
    # The timeout is the sender's, not the ledger's: one backend is enough.
    from infra.migrate import migrate_ledger

    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrate_ledger(url)
    with webhook_receiver() as slow, ledger_api(url, tmp_path) as api:
        slow.gate = threading.Event()  # never released in time
        endpoint = _endpoint(api, slow.url)
        api.customer("acme")
        api.open_invoice("acme", "10.00")
        assert _deliver(api).webhooks.retrying == 1
        (delivery,) = _log(api, endpoint["id"])
        assert delivery["lastError"] == "no answer in 10 s" and delivery["responseCode"] is None


def test_a_sender_that_dies_mid_attempt_is_replaced_after_the_lease(
    api: ApiClient, receiver: Receiver
) -> None:
    endpoint = _endpoint(api, receiver.url)
    api.customer("acme")
    api.open_invoice("acme", "10.00")
    deliverers.deliver(api.runtime, api.clock.now(), webhooks_too=False)  # fanned out only
    runtime = api.runtime
    (attempt,) = deliveries.claim(runtime.sessions, runtime.settings.secrets, api.clock.now(), 10)
    # ... the process dies here: sent or not, nothing was recorded
    assert _deliver(api).webhooks.attempted == 0  # leased
    api.clock.advance(deliveries.LEASE)
    assert _deliver(api).webhooks.succeeded == 1
    (delivery,) = _log(api, endpoint["id"])
    assert delivery["id"] == attempt.delivery_id and delivery["attempts"] == 2


def test_a_slow_endpoint_holds_only_its_own_share(
    api: ApiClient, receiver: Receiver, ledger_backend: str
) -> None:
    with webhook_receiver() as slow:
        slow.gate = threading.Event()
        fast = _endpoint(api, receiver.url)
        _endpoint(api, slow.url)
        api.customer("acme")
        for index in range(20):
            api.open_invoice("acme", "1.00", index=index)
        deliverers.deliver(api.runtime, api.clock.now(), webhooks_too=False)

        async def run() -> None:
            sender = asyncio.create_task(deliverers.send_webhooks(api.runtime, 0.05))
            try:
                for _ in range(400):
                    if len(receiver.hits) == 20:
                        break
                    await asyncio.sleep(0.05)
                # every fast delivery arrived while the slow endpoint still holds its first
                assert len(receiver.hits) == 20
                assert len(slow.hits) == deliveries.PER_ENDPOINT
                slow.gate.set()
                for _ in range(400):
                    if len(slow.hits) == 20 and not _pending(api):
                        break
                    await asyncio.sleep(0.05)
            finally:
                sender.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sender

        asyncio.run(run())
        assert len(slow.hits) == 20
        assert {d["status"] for d in _log(api, fast["id"])} == {"succeeded"}


def _pending(api: ApiClient) -> int:
    from invoicing.models import WebhookDeliveryRow

    with api.runtime.sessions() as session:
        rows = session.execute(
            select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.status == "pending")
        ).all()
        return len(rows)


def test_another_tenant_sees_and_hears_none_of_it(api: ApiClient, receiver: Receiver) -> None:
    from invoicing.db import transaction
    from invoicing.tenants import create_tenant

    endpoint = _endpoint(api, receiver.url)
    with transaction(api.runtime.sessions) as session:
        creds = create_tenant(session, "other")
    with ApiClient(api.app, api.runtime, creds.tenant_id, creds.api_key) as other:
        other.customer("zed")
        other.open_invoice("zed", "10.00")
        _deliver(api)
        assert receiver.hits == []  # the other tenant's event is not ours
        api.customer("acme")
        api.open_invoice("acme", "10.00", index=1)
        _deliver(api)
        (delivery,) = _log(api, endpoint["id"])
        other.error("GET", f"/webhook-endpoints/{endpoint['id']}", 404)
        other.error("GET", f"/webhook-endpoints/{endpoint['id']}/deliveries", 404)
        other.error(
            "PATCH", f"/webhook-endpoints/{endpoint['id']}", 404, json={"status": "disabled"}
        )
        other.error("DELETE", f"/webhook-endpoints/{endpoint['id']}", 404)
        other.error("POST", f"/webhook-deliveries/{delivery['id']}/retry", 404)
        assert other.ok("GET", "/webhook-endpoints")["data"] == []
    assert orjson.loads(receiver.hits[0].body)["data"]["customerId"] == "acme"

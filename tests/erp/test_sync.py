"""ERP sync through the API, on SQLite and PostgreSQL, with the custom-webhook connector
against a real endpoint on loopback: connections (secrets sealed and masked, one at a
time unless multiErp), the document sent as signed with one Idempotency-Key per
invoice, 3 retries with backoff then `erp.sync_failed`, re-syncs that update the same
record, the sync log and its filters, a manual sync, disconnect, and tenant isolation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api import render
from invoicing.db import transaction
from invoicing.erp import sync
from invoicing.erp.base import Context
from invoicing.models import DomainEventRow, ErpConnectionRow, ErpSyncRow
from invoicing.tenants import create_tenant
from invoicing.webhooks.signing import verify
from meterline import deliverers
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.ledger

SECRET = "erp-hook-secret-7f3a9c"
START = datetime(2026, 11, 1, 9, tzinfo=UTC)


def _connect(api: ApiClient, url: str, **config: Any) -> dict[str, Any]:
    created: dict[str, Any] = api.ok(
        "POST",
        "/erp/connections",
        json={"provider": "custom_webhook", "config": {"url": url, "secret": SECRET, **config}},
    )
    return created


def _pass(api: ApiClient) -> sync.SyncReport:
    return deliverers.deliver(api.runtime, api.clock.now(), webhooks_too=False).erp


def _log(api: ApiClient, query: str = "") -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.ok("GET", f"/erp/sync-log{query}")["data"]
    return data


def test_a_connection_is_active_at_once_with_its_secret_sealed_and_masked(
    api: ApiClient, receiver: Receiver
) -> None:
    response = api.post(
        "/erp/connections",
        json={"provider": "custom_webhook", "config": {"url": receiver.url, "secret": SECRET}},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert SECRET not in response.text
    assert created["id"].startswith("erp_")
    assert created["provider"] == "custom_webhook" and created["status"] == "active"
    assert created["authorizeUrl"] is None and created["lastTest"] is None
    assert created["config"] == {"url": receiver.url, "secret": "…3a9c"}
    assert receiver.hits == []  # a custom webhook is not called on connect
    with api.runtime.sessions() as session:
        stored = session.execute(select(ErpConnectionRow.config)).scalar_one()
    assert SECRET not in json.dumps(stored)

    assert api.ok("GET", f"/erp/connections/{created['id']}") == created
    assert api.ok("GET", "/erp/connections")["data"] == [created]

    tested = api.ok("POST", f"/erp/connections/{created['id']}/test")
    (ping,) = receiver.hits
    assert ping.headers["X-Meterline-Event"] == "erp.test"
    assert verify(SECRET, ping.body, ping.headers["X-Meterline-Signature"])
    assert tested["lastTest"] == {
        "at": "2026-11-01T09:00:00Z", "status": "SUCCESS", "responseCode": 200, "error": None,
    }  # fmt: skip
    receiver.answers = [401]
    failed = api.ok("POST", f"/erp/connections/{created['id']}/test")["lastTest"]
    assert (failed["status"], failed["responseCode"]) == ("FAILED", 401)
    assert failed["error"] == "HTTP 401: ok"
    assert failed["status"] == "FAILED" and tested["status"] == "active"


def test_bad_connections_are_refused_with_what_is_wrong(api: ApiClient, receiver: Receiver) -> None:
    for body, needle in (
        ({"provider": "sap", "config": {}}, "provider"),
        ({"provider": "custom_webhook", "config": {"secret": SECRET}}, "config.url"),
        ({"provider": "custom_webhook", "config": {"url": "ftp://x.test", "secret": SECRET}},
         "config.url"),
        ({"provider": "custom_webhook", "config": {"url": receiver.url, "secret": SECRET,
                                                   "colour": "red"}}, "config.colour: unknown key"),
        ({"provider": "custom_webhook", "config": {"url": receiver.url, "secret": SECRET,
                                                   "template": {"a": "$.lines[?"}}},
         "config.template"),
        ({"provider": "custom_webhook"}, "config"),
    ):  # fmt: skip
        error = api.error("POST", "/erp/connections", 422, json=body)
        assert needle in json.dumps(error), (body, error)
    assert api.ok("GET", "/erp/connections")["data"] == []


def test_private_destinations_refused_when_configured(ledger_url: str, tmp_path: Path) -> None:
    with ledger_api(ledger_url, tmp_path, webhook_block_private=True) as api:
        error = api.error(
            "POST",
            "/erp/connections",
            422,
            json={
                "provider": "custom_webhook",
                "config": {"url": "http://127.0.0.1:9/erp", "secret": SECRET},
            },
        )
        assert error["code"] == "private_destination"


def test_a_finalized_invoice_goes_to_the_erp_as_get_returns_it(
    api: ApiClient, receiver: Receiver
) -> None:
    connection = _connect(api, receiver.url)
    api.customer("acme")
    invoice = api.open_invoice("acme", "42.17")
    assert receiver.hits == []  # synced by the deliverer, not inside the request
    assert _pass(api) == sync.SyncReport(synced=1)
    (hit,) = receiver.hits
    assert hit.path == "/erp"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Meterline-Event"] == "invoice.sync"
    assert hit.headers["Idempotency-Key"] == invoice["id"]
    assert verify(SECRET, hit.body, hit.headers["X-Meterline-Signature"])
    assert hit.json == api.ok("GET", f"/invoices/{invoice['id']}")
    assert hit.json["total"] == "42.17"

    (entry,) = _log(api)
    assert entry == {
        "id": entry["id"], "at": "2026-11-01T09:00:00Z", "invoiceId": invoice["id"],
        "connectionId": connection["id"], "provider": "custom_webhook", "status": "SUCCESS",
        "responseCode": 200, "error": None, "attempt": 1, "documentType": "invoice",
        "documentId": invoice["id"], "externalId": invoice["id"], "manual": False,
    }  # fmt: skip
    assert _pass(api).attempted == 0  # once


def test_a_template_maps_the_document(api: ApiClient, receiver: Receiver) -> None:
    template = {
        "number": "$.number",
        "customer": {"name": "$.customer.name", "ref": "$.customer.externalId"},
        "amounts": "$.lines[*].amount",
        "total": "$.total",
        "source": "meterline",
    }
    _connect(api, receiver.url, template=template)
    api.customer("acme", name="Acme Corp")
    invoice = api.open_invoice("acme", "99.99")
    _pass(api)
    (hit,) = receiver.hits
    assert hit.json == {
        "number": invoice["number"],
        "customer": {"name": "Acme Corp", "ref": "acme"},
        "amounts": ["99.99"],
        "total": "99.99",
        "source": "meterline",
    }
    assert verify(SECRET, hit.body, hit.headers["X-Meterline-Signature"])


def test_failures_are_retried_three_times_with_backoff_then_erp_sync_failed(
    api: ApiClient, receiver: Receiver
) -> None:
    with webhook_receiver() as hooks:
        api.ok(
            "POST",
            "/webhook-endpoints",
            json={"url": hooks.url, "secret": "s3", "events": ["erp.sync_failed"]},
        )
        connection = _connect(api, receiver.url)
        receiver.answers = [503]
        api.customer("acme")
        invoice = api.open_invoice("acme", "10.00")
        assert _pass(api) == sync.SyncReport(retrying=1)
        failed_at = api.clock.now()
        api.clock.advance(timedelta(seconds=7))
        assert _pass(api).attempted == 0  # 10 s less jitter (up to 20 %): not before 8 s
        waits = []
        for expected in (sync.SyncReport(retrying=1), sync.SyncReport(retrying=1),
                         sync.SyncReport(failed=1)):  # fmt: skip
            with api.runtime.sessions() as session:
                due = session.execute(select(ErpSyncRow.next_attempt_at)).scalar_one()
            waits.append((due - failed_at).total_seconds())
            api.clock.set(due)
            failed_at = due
            assert _pass(api) == expected
        assert _pass(api).attempted == 0
        for wait, full in zip(waits, (10, 20, 40), strict=True):
            assert full * 0.8 <= wait <= full, waits
        log = _log(api)
        assert [e["attempt"] for e in log] == [4, 3, 2, 1]  # newest first
        assert {(e["status"], e["responseCode"], e["error"]) for e in log} == {
            ("FAILED", 503, "HTTP 503: ok")
        }
        assert len(receiver.hits) == 4
        assert len({h.body for h in receiver.hits}) == 1  # the same document each time

        # the event goes out to whoever listens
        deliverers.deliver(api.runtime, api.clock.now())
        (event,) = hooks.bodies()
        assert event["type"] == "erp.sync_failed"
        assert event["data"] == {
            "connectionId": connection["id"], "provider": "custom_webhook",
            "invoiceId": invoice["id"], "documentType": "invoice", "documentId": invoice["id"],
            "attempts": 4, "responseCode": 503, "error": "HTTP 503: ok",
        }  # fmt: skip

        # a manual sync starts over and succeeds
        receiver.answers = [200]
        (entry,) = api.ok("POST", "/erp/sync", json={"invoiceId": invoice["id"]})["data"]
        assert (entry["status"], entry["attempt"], entry["manual"]) == ("SUCCESS", 1, True)


def test_unreachable_erp_is_a_failed_attempt_without_a_code(
    api: ApiClient, receiver: Receiver
) -> None:
    _connect(api, "http://127.0.0.1:9/erp")  # nothing listens on the discard port
    api.customer("acme")
    api.open_invoice("acme", "10.00")
    assert _pass(api) == sync.SyncReport(retrying=1)
    (entry,) = _log(api)
    assert entry["status"] == "FAILED" and entry["responseCode"] is None
    assert entry["error"].startswith("ConnectError")


def test_every_change_re_syncs_the_same_record(api: ApiClient, receiver: Receiver) -> None:
    receiver.reply = b'{"id": "ERP-1001"}'
    _connect(api, receiver.url)
    api.customer("acme")
    invoice = api.open_invoice("acme", "10.00")
    _pass(api)
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "10.00"})
    _pass(api)
    first, second = receiver.hits
    assert first.json["status"] == "OPEN" and second.json["status"] == "PAID"
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == invoice["id"]
    newer, older = _log(api)
    assert (older["externalId"], newer["externalId"]) == ("ERP-1001", "ERP-1001")
    assert (older["attempt"], newer["attempt"]) == (1, 1)
    with api.runtime.sessions() as session:
        (row,) = session.execute(select(ErpSyncRow)).scalars()
    assert (row.external_id, row.status, row.generation) == ("ERP-1001", "succeeded", 2)


def test_credit_notes_sync_with_their_invoice(api: ApiClient, receiver: Receiver) -> None:
    template = {"note": "$.number", "of": "$.invoice.number", "amount": "$.amount",
                "to": "$.customer.externalId"}  # fmt: skip
    _connect(api, receiver.url, template=template)
    api.customer("acme")
    invoice = api.open_invoice("acme", "100.00")
    note = api.ok(
        "POST", "/credit-notes",
        json={"invoiceId": invoice["id"], "amount": "10.00", "reason": "OTHER"},
    )  # fmt: skip
    _pass(api)
    assert len(receiver.hits) == 1  # a DRAFT credit note is not synced
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    _pass(api)
    hit = receiver.hits[-1]
    assert hit.headers["X-Meterline-Event"] == "credit_note.sync"
    assert hit.headers["Idempotency-Key"] == note["id"]
    issued = api.ok("GET", f"/credit-notes/{note['id']}")
    assert hit.json == {
        "note": issued["number"], "of": invoice["number"], "amount": "10.00", "to": "acme",
    }  # fmt: skip
    (entry,) = _log(api, "?invoiceId=" + invoice["id"] + "&status=SUCCESS")[:1]
    assert entry["documentType"] == "credit_note" and entry["documentId"] == note["id"]
    assert entry["invoiceId"] == invoice["id"]


def test_manual_sync_and_its_refusals(api: ApiClient, receiver: Receiver) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "10.00")
    draft = api.draft("acme", "5.00", index=1)
    error = api.error("POST", "/erp/sync", 409, json={"invoiceId": invoice["id"]})
    assert error["code"] == "no_erp_connection"
    connection = _connect(api, receiver.url)
    api.error("POST", "/erp/sync", 404, json={"invoiceId": "inv_nope"})
    assert api.error("POST", "/erp/sync", 409, json={"invoiceId": draft})["code"] == "invalid_state"
    api.error("POST", "/erp/sync", 422, json={})

    response = api.post("/erp/sync", json={"invoiceId": invoice["id"]})
    assert response.status_code == 200, response.text
    (entry,) = response.json()["data"]
    assert entry["connectionId"] == connection["id"] and entry["status"] == "SUCCESS"
    assert entry["manual"] is True and entry["attempt"] == 1
    (hit,) = receiver.hits  # synced in the request
    assert hit.json["id"] == invoice["id"]
    assert _log(api) == [entry]


def test_disconnect_stops_future_syncs_only(api: ApiClient, receiver: Receiver) -> None:
    connection = _connect(api, receiver.url)
    api.customer("acme")
    first = api.open_invoice("acme", "10.00")
    _pass(api)
    receiver.answers = [500]
    second = api.open_invoice("acme", "20.00", index=1)
    _pass(api)  # failed once, to be retried

    response = api.delete(f"/erp/connections/{connection['id']}")
    assert response.status_code == 204 and response.content == b""
    shown = api.ok("GET", f"/erp/connections/{connection['id']}")
    assert shown["status"] == "disconnected"
    assert shown["disconnectedAt"] == "2026-11-01T09:00:00Z"
    receiver.answers = [200]
    api.clock.advance(timedelta(minutes=5))
    api.open_invoice("acme", "30.00", index=2)
    assert _pass(api).attempted == 0  # neither the retry nor the new invoice
    assert len(receiver.hits) == 2
    assert [e["invoiceId"] for e in _log(api)] == [second["id"], first["id"]]  # kept
    assert api.error("POST", "/erp/sync", 409, json={"invoiceId": first["id"]})
    assert api.delete(f"/erp/connections/{connection['id']}").status_code == 204  # idempotent
    api.error("DELETE", "/erp/connections/erp_nope", 404)
    # connecting again is allowed once the other is gone
    assert _connect(api, receiver.url)["status"] == "active"


def test_one_erp_at_a_time_unless_multi_erp(api: ApiClient, receiver: Receiver) -> None:
    assert api.ok("GET", "/settings")["multiErp"] is False
    _connect(api, receiver.url)
    with webhook_receiver("/second") as other:
        error = api.error(
            "POST",
            "/erp/connections",
            409,
            json={"provider": "custom_webhook", "config": {"url": other.url, "secret": "x"}},
        )
        assert error["code"] == "erp_already_connected"
        assert "multiErp" in error["message"]
        api.error("PUT", "/settings", 422, json={"multiErp": "perhaps"})
        assert api.ok("PUT", "/settings", json={"multiErp": True})["multiErp"] is True
        assert api.ok("GET", "/settings")["multiErp"] is True
        second = _connect(api, other.url)
        api.customer("acme")
        invoice = api.open_invoice("acme", "10.00")
        assert _pass(api) == sync.SyncReport(synced=2)
        assert receiver.hits[0].json["id"] == other.hits[0].json["id"] == invoice["id"]
        assert {e["connectionId"] for e in _log(api)} >= {second["id"]}
        logged = api.ok("POST", "/erp/sync", json={"invoiceId": invoice["id"]})["data"]
        assert len(logged) == 2


def test_the_sync_log_filters_and_pages(api: ApiClient, receiver: Receiver) -> None:
    _connect(api, receiver.url)
    api.customer("acme")
    ids = []
    receiver.answers = [200, 200, 500]  # the last fails: its retry is not yet due
    for day in range(3):
        api.clock.set(START + timedelta(days=day))
        ids.append(api.open_invoice("acme", "10.00", index=day)["id"])
        _pass(api)
    assert [e["invoiceId"] for e in _log(api)] == ids[::-1]
    assert [e["invoiceId"] for e in _log(api, "?status=FAILED")] == [ids[2]]
    assert [e["invoiceId"] for e in _log(api, "?status=SUCCESS")] == [ids[1], ids[0]]
    assert [e["invoiceId"] for e in _log(api, f"?invoiceId={ids[2]}")] == [ids[2]]
    assert [e["invoiceId"] for e in _log(api, "?from=2026-11-02&to=2026-11-02")] == [ids[1]]
    assert [e["invoiceId"] for e in _log(api, "?from=2026-11-02T09:00:00Z")] == ids[:0:-1]
    assert [e["invoiceId"] for e in _log(api, "?to=2026-11-02T09:00:00Z")] == ids[1::-1]
    page = api.ok("GET", "/erp/sync-log?limit=2")
    assert [e["invoiceId"] for e in page["data"]] == [ids[2], ids[1]]
    rest = api.ok("GET", f"/erp/sync-log?limit=2&cursor={page['nextCursor']}")
    assert [e["invoiceId"] for e in rest["data"]] == [ids[0]] and rest["nextCursor"] is None
    for query in ("?status=OK", "?from=yesterday", "?limit=0", "?cursor=%%%"):
        api.error("GET", f"/erp/sync-log{query}", 422)


def test_a_change_while_an_attempt_is_in_flight_syncs_again(
    api: ApiClient, receiver: Receiver
) -> None:
    _connect(api, receiver.url)
    api.customer("acme")
    invoice = api.open_invoice("acme", "10.00")
    runtime = api.runtime
    deliverers.deliver(runtime, api.clock.now(), webhooks_too=False)  # synced once
    assert sync.claim(runtime.sessions, runtime.settings.secrets, api.clock.now(), 5) == []
    # start a new sync and lease it, as a worker would, then change the invoice
    with transaction(runtime.sessions) as session:
        row = session.execute(select(ErpSyncRow)).scalar_one()
        row.status, row.next_attempt_at = "pending", api.clock.now()
    (leased,) = sync.claim(runtime.sessions, runtime.settings.secrets, api.clock.now(), 5)
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "10.00"})
    deliverers.deliver(runtime, api.clock.now(), webhooks_too=False)  # fans out; leased
    context = Context(now=api.clock.now, redirect_uri="http://x.test/cb")
    outcome = sync.attempt(runtime.sessions, render.document, leased, context)
    report, _ = sync.record(runtime.sessions, [outcome], api.clock.now(), runtime.settings.secrets)
    assert report.attempted == 0  # the newer sync is still to run
    assert _pass(api) == sync.SyncReport(synced=1)
    assert receiver.hits[-1].json["status"] == "PAID"


def test_another_tenant_sees_and_reaches_none_of_it(api: ApiClient, receiver: Receiver) -> None:
    connection = _connect(api, receiver.url)
    api.customer("acme")
    invoice = api.open_invoice("acme", "10.00")
    _pass(api)
    with transaction(api.runtime.sessions) as session:
        creds = create_tenant(session, "other")
    with ApiClient(api.app, api.runtime, creds.tenant_id, creds.api_key) as other:
        assert other.ok("GET", "/erp/connections")["data"] == []
        other.error("GET", f"/erp/connections/{connection['id']}", 404)
        other.error("POST", f"/erp/connections/{connection['id']}/test", 404)
        other.error("DELETE", f"/erp/connections/{connection['id']}", 404)
        assert other.ok("GET", "/erp/sync-log")["data"] == []
        other.error("POST", "/erp/sync", 404, json={"invoiceId": invoice["id"]})
        assert other.ok("GET", "/settings")["multiErp"] is False
        other.ok("PUT", "/settings", json={"multiErp": True})
        # its own invoices never reach our ERP
        other.customer("zed")
        other.open_invoice("zed", "10.00")
        _pass(api)
        assert len(receiver.hits) == 1
    assert api.ok("GET", "/settings")["multiErp"] is False
    assert api.ok("GET", f"/erp/connections/{connection['id']}")["status"] == "active"
    with api.runtime.sessions() as session:
        events = session.execute(
            select(DomainEventRow.type).where(DomainEventRow.type == "erp.sync_failed")
        ).all()
    assert events == []


def test_a_lease_that_ran_out_is_taken_over_and_the_late_outcome_changes_nothing(
    api: ApiClient, receiver: Receiver
) -> None:
    _connect(api, receiver.url)
    api.customer("acme")
    api.open_invoice("acme", "10.00")
    runtime = api.runtime
    deliverers.deliver(runtime, api.clock.now(), webhooks_too=False)  # fans out and syncs
    with transaction(runtime.sessions) as session:
        row = session.execute(select(ErpSyncRow)).scalar_one()
        row.status, row.next_attempt_at = "pending", api.clock.now()
    (lost,) = sync.claim(runtime.sessions, runtime.settings.secrets, api.clock.now(), 5)
    assert sync.claim(runtime.sessions, runtime.settings.secrets, api.clock.now(), 5) == []
    api.clock.advance(sync.LEASE + timedelta(seconds=1))  # the worker never came back
    assert _pass(api) == sync.SyncReport(synced=1)
    context = Context(now=api.clock.now, redirect_uri="http://x.test/cb")
    late = sync.attempt(runtime.sessions, render.document, lost, context)
    report, logged = sync.record(
        runtime.sessions, [late], api.clock.now(), runtime.settings.secrets
    )
    assert report.attempted == 0 and len(logged) == 1  # logged, nothing rescheduled
    with runtime.sessions() as session:
        row = session.execute(select(ErpSyncRow)).scalar_one()
    assert (row.status, row.attempts) == ("succeeded", 3)  # 1 before, 2 lost, 3 took over

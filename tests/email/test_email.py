"""Email through a real SMTP server, on SQLite and PostgreSQL: the invoice at finalize
(PDF attached), the credit note at issue, a receipt per payment, sending again to other
recipients (Bcc only in the envelope), every refusal of the API, permanent and passing
SMTP failures, a server down and back, a login, and each email sent once however many
deliverers run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from meterline import deliverers
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.smtp_server import SmtpServer, smtp_server

pytestmark = pytest.mark.ledger


def _deliver(api: ApiClient) -> deliverers.DeliveryPass:
    return deliverers.deliver(api.runtime, api.clock.now())


def _emails(api: ApiClient, object_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.ok("GET", f"/email-deliveries?objectId={object_id}")["data"]
    return data


def _parts(message: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    attachments = [p for p in message.iter_attachments() if isinstance(p, EmailMessage)]
    # The labels are aligned in columns; the tests read the words.
    return " ".join(str(text.get_content()).split()), str(html.get_content()), attachments


def test_a_finalized_invoice_is_emailed_with_its_pdf(api: ApiClient, smtp: SmtpServer) -> None:
    api.ok("PUT", "/billing-entity", json={
        "legalName": "Seller GmbH", "addressLine1": "Hauptstr. 1", "city": "Berlin",
        "postalCode": "10115", "country": "DE", "email": "accounts@seller.test",
    })  # fmt: skip
    api.customer("acme", email="ap@acme.test", netPaymentTermDays=14)
    invoice = api.open_invoice("acme", "120.50")
    assert smtp.received == []  # queued in the ledger, sent by the deliverer

    assert _deliver(api).email.sent == 1
    (got,) = smtp.received
    message = got.message
    assert got.mail_from == "billing@meterline.test"
    assert got.rcpt_tos == ["ap@acme.test"]
    assert message["From"] == "Seller GmbH <billing@meterline.test>"
    assert message["Reply-To"] == "accounts@seller.test"
    assert message["To"] == "ap@acme.test"
    assert message["Subject"] == f"Invoice {invoice['number']} from Seller GmbH"
    text, html, attachments = _parts(message)
    assert f"invoice {invoice['number']}" in text
    assert "Amount due: USD 120.50" in text
    assert "Due: 15 November 2026" in text
    assert "<th" in html and "USD 120.50" in html
    (pdf,) = attachments
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == f"{invoice['number']}.pdf"
    assert pdf.get_content().startswith(b"%PDF-")

    (delivery,) = _emails(api, invoice["id"])
    assert delivery["kind"] == "invoice"
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 1
    assert delivery["to"] == ["ap@acme.test"] and delivery["cc"] == [] and delivery["bcc"] == []
    assert delivery["eventId"].startswith("evt_")
    assert delivery["subject"] == message["Subject"]
    assert delivery["messageId"] == message["Message-ID"]
    assert delivery["messageId"] == f"<{delivery['id']}@meterline.test>"
    assert delivery["sentAt"] == "2026-11-01T09:00:00Z"
    assert delivery["nextAttemptAt"] is None

    # Delivered once: another pass finds nothing to send.
    assert _deliver(api).email.attempted == 0
    assert len(smtp.received) == 1


def test_sending_again_to_other_recipients_keeps_bcc_out_of_the_headers(
    api: ApiClient, smtp: SmtpServer
) -> None:
    api.customer("acme", email="ap@acme.test")
    invoice = api.open_invoice("acme", "10.00")
    _deliver(api)
    response = api.post(
        f"/invoices/{invoice['id']}/email",
        json={"to": ["cfo@acme.test"], "cc": ["ap@acme.test"], "bcc": ["audit@seller.test"]},
    )
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "pending" and queued["attempts"] == 0
    assert queued["eventId"] is None and queued["kind"] == "invoice"
    assert queued["to"] == ["cfo@acme.test"] and queued["bcc"] == ["audit@seller.test"]
    _deliver(api)
    resent = smtp.received[-1]
    assert resent.rcpt_tos == ["cfo@acme.test", "ap@acme.test", "audit@seller.test"]
    assert resent.message["To"] == "cfo@acme.test"
    assert resent.message["Cc"] == "ap@acme.test"
    assert resent.message["Bcc"] is None
    assert b"audit@seller.test" not in resent.raw
    assert api.ok("GET", f"/email-deliveries/{queued['id']}")["status"] == "sent"
    # Without a body, the customer's address.
    again = api.ok("POST", f"/invoices/{invoice['id']}/email")
    assert again["to"] == ["ap@acme.test"]
    assert _emails(api, invoice["id"])[0]["id"] == again["id"]  # newest first


def test_credit_notes_and_receipts_are_emailed(api: ApiClient, smtp: SmtpServer) -> None:
    api.customer("acme", email="ap@acme.test")
    invoice = api.open_invoice("acme", "100.00")
    note = api.ok(
        "POST",
        "/credit-notes",
        json={"invoiceId": invoice["id"], "amount": "30.00", "reason": "OTHER"},
    )
    # A DRAFT note has no document yet.
    error = api.error("POST", f"/credit-notes/{note['id']}/email", 409)
    assert error["code"] == "credit_note_not_issued"
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    api.ok("POST", f"/credit-notes/{note['id']}/apply")
    payment = api.ok(
        "POST",
        f"/invoices/{invoice['id']}/payments",
        json={"amount": "50.00", "reference": "wire 7"},
    )
    assert _deliver(api).email.sent == 3  # invoice, credit note, receipt
    subjects = [r.message["Subject"] for r in smtp.received]
    assert subjects == [
        f"Invoice {invoice['number']} from test",
        f"Credit note {note['number']} from test",
        "Receipt from test: USD 50.00 received",
    ]
    text, _, attachments = _parts(smtp.received[1].message)
    assert "Amount credited: USD 30.00" in text
    assert f"For invoice: {invoice['number']}" in text
    assert attachments[0].get_filename() == f"{note['number']}.pdf"
    text, _, attachments = _parts(smtp.received[2].message)
    assert attachments == []
    assert "Reference: wire 7" in text
    assert "Still due on the invoice: USD 20.00" in text  # 100 − 30 credited − 50 paid
    (receipt,) = _emails(api, payment["id"])
    assert receipt["kind"] == "receipt" and receipt["status"] == "sent"


def test_refusals_of_the_api(api: ApiClient, smtp: SmtpServer) -> None:
    api.customer("acme")  # no email address
    draft = api.draft("acme", "10.00")
    assert api.error("POST", f"/invoices/{draft}/email", 409)["code"] == "invoice_not_finalized"
    invoice = api.open_invoice("acme", "10.00", index=1)
    assert _deliver(api).email.attempted == 0  # no address, no automatic email
    assert api.error("POST", f"/invoices/{invoice['id']}/email", 422)["code"] == "no_recipient"
    error = api.error(
        "POST", f"/invoices/{invoice['id']}/email", 422, json={"to": ["not-an-address"]}
    )
    assert "to[0]" in error["message"]
    header_injection = {"to": ["a@b.test\r\nBcc: victim@x.test"]}
    api.error("POST", f"/invoices/{invoice['id']}/email", 422, json=header_injection)
    api.error("POST", f"/invoices/{invoice['id']}/email", 422, json={"too": ["a@b.test"]})
    api.error("POST", "/invoices/inv_nope/email", 404, json={"to": ["a@b.test"]})
    api.error("POST", "/payments/pay_nope/email", 404, json={"to": ["a@b.test"]})
    api.error("GET", "/email-deliveries/eml_nope", 404)
    api.error("GET", "/email-deliveries?status=lost", 422)
    assert smtp.received == []


def test_without_smtp_there_is_no_email(ledger_url: str, tmp_path: Path) -> None:
    with ledger_api(ledger_url, tmp_path) as api:
        api.customer("acme", email="ap@acme.test")
        invoice = api.open_invoice("acme", "10.00")
        assert _deliver(api).dispatched == 1  # the outbox moves on, nothing is queued
        assert _emails(api, invoice["id"]) == []
        error = api.error("POST", f"/invoices/{invoice['id']}/email", 409)
        assert error["code"] == "email_not_configured"


def test_a_permanent_refusal_fails_at_once_and_a_passing_one_is_retried(
    api: ApiClient, smtp: SmtpServer
) -> None:
    api.customer("acme", email="gone@acme.test")
    api.customer("beta", email="busy@beta.test")
    smtp.mailbox.refuse = {
        "gone@acme.test": "550 5.1.1 No such user",
        "busy@beta.test": "451 4.3.0 Try again later",
    }
    gone = api.open_invoice("acme", "10.00")
    busy = api.open_invoice("beta", "20.00", index=1)
    report = _deliver(api).email
    assert (report.sent, report.retrying, report.failed) == (0, 1, 1)
    (failed,) = _emails(api, gone["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert "550 5.1.1 No such user" in failed["lastError"]
    (waiting,) = _emails(api, busy["id"])
    assert waiting["status"] == "pending" and "451" in waiting["lastError"]
    # Retried after a minute, less at most 20 % jitter.
    retry_at = datetime.fromisoformat(waiting["nextAttemptAt"])
    assert datetime(2026, 11, 1, 9, 0, 48, tzinfo=UTC) <= retry_at
    assert retry_at <= datetime(2026, 11, 1, 9, 1, tzinfo=UTC)
    assert _deliver(api).email.attempted == 0  # not due yet

    smtp.mailbox.refuse = {}
    api.clock.advance(timedelta(minutes=1))
    assert _deliver(api).email.sent == 1
    (sent,) = _emails(api, busy["id"])
    assert sent["status"] == "sent" and sent["attempts"] == 2 and sent["lastError"] is None
    assert [r.rcpt_tos for r in smtp.received] == [["busy@beta.test"]]


def test_six_deferred_attempts_then_failed(api: ApiClient, smtp: SmtpServer) -> None:
    api.customer("acme", email="busy@acme.test")
    smtp.mailbox.refuse = {"busy@acme.test": "452 4.2.2 Mailbox full"}
    invoice = api.open_invoice("acme", "10.00")
    waits = []
    for _ in range(6):
        _deliver(api)
        (delivery,) = _emails(api, invoice["id"])
        if delivery["status"] == "failed":
            break
        waits.append(delivery["nextAttemptAt"])
        api.clock.advance(timedelta(hours=1))
    assert delivery["status"] == "failed" and delivery["attempts"] == 6
    assert len(waits) == 5
    assert smtp.received == []


def test_a_server_down_loses_nothing(ledger_url: str, tmp_path: Path) -> None:
    server = SmtpServer()
    server.start()
    server.stop()  # its port, now closed
    with ledger_api(ledger_url, tmp_path, **server.settings()) as api:
        api.customer("acme", email="ap@acme.test")
        invoice = api.open_invoice("acme", "10.00")
        assert _deliver(api).email.retrying == 1
        (delivery,) = _emails(api, invoice["id"])
        assert delivery["status"] == "pending"
        assert "ConnectionRefusedError" in delivery["lastError"]
        server.start()
        try:
            api.clock.advance(timedelta(minutes=2))
            assert _deliver(api).email.sent == 1
            assert server.received[0].message["Subject"] == f"Invoice {invoice['number']} from test"
        finally:
            server.stop()


def test_login(ledger_url: str, tmp_path: Path) -> None:
    with smtp_server(user=("billing", "s3cret")) as server:
        good = {**server.settings(), "smtp_username": "billing", "smtp_password": "s3cret"}
        with ledger_api(ledger_url, tmp_path / "a", **good) as api:
            api.customer("acme", email="ap@acme.test")
            api.open_invoice("acme", "10.00")
            assert _deliver(api).email.sent == 1
        bad = {**good, "smtp_password": "wrong"}
        with ledger_api(ledger_url, tmp_path / "b", **bad) as api:
            api.customer("acme", email="ap@acme.test")
            invoice = api.open_invoice("acme", "10.00")
            assert _deliver(api).email.retrying == 1
            (delivery,) = _emails(api, invoice["id"])
            assert delivery["lastError"].startswith("login refused: 535")
        assert server.mailbox.logins == [("billing", "s3cret"), ("billing", "wrong")]
        assert len(server.received) == 1


def test_each_email_is_sent_once_by_concurrent_deliverers(api: ApiClient, smtp: SmtpServer) -> None:
    for index in range(12):
        api.customer(f"c{index}", email=f"ap@c{index}.test")
        api.open_invoice(f"c{index}", "10.00", index=index)
    with ThreadPoolExecutor(4) as pool:
        passes = list(pool.map(lambda _: _deliver(api), range(4)))
    assert sum(p.email.sent for p in passes) == 12
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted(
        f"ap@c{i}.test" for i in range(12)
    )


def test_a_redispatched_event_queues_no_second_email(api: ApiClient, smtp: SmtpServer) -> None:
    from sqlalchemy import update

    from invoicing.models import DomainEventRow

    api.customer("acme", email="ap@acme.test")
    invoice = api.open_invoice("acme", "10.00")
    _deliver(api)
    with api.runtime.sessions() as session, session.begin():
        session.execute(update(DomainEventRow).values(dispatched_at=None))
    assert _deliver(api).dispatched >= 1
    assert len(_emails(api, invoice["id"])) == 1
    assert len(smtp.received) == 1


def test_another_tenant_sees_none_of_it(api: ApiClient, smtp: SmtpServer, ledger_url: str) -> None:
    from invoicing.db import transaction
    from invoicing.tenants import create_tenant
    from tests.helpers.ledger_api import ApiClient as Client

    api.customer("acme", email="ap@acme.test")
    invoice = api.open_invoice("acme", "10.00")
    _deliver(api)
    (delivery,) = _emails(api, invoice["id"])
    with transaction(api.runtime.sessions) as session:
        creds = create_tenant(session, "other")
    with Client(api.app, api.runtime, creds.tenant_id, creds.api_key) as other:
        other.error("GET", f"/email-deliveries/{delivery['id']}", 404)
        assert other.ok("GET", "/email-deliveries")["data"] == []
        other.error("POST", f"/invoices/{invoice['id']}/email", 404, json={"to": ["x@y.test"]})


def test_the_running_server_delivers_without_a_scheduler_pass(
    ledger_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    import asyncio

    settings = {**smtp.settings(), "delivery_interval_seconds": 0.05}
    with ledger_api(ledger_url, tmp_path, **settings) as api:
        api.customer("acme", email="ap@acme.test")
        api.open_invoice("acme", "10.00")

        async def serve_a_while() -> None:
            api.runtime.start_deliverers()
            try:
                for _ in range(200):
                    if smtp.received:
                        return
                    await asyncio.sleep(0.05)
            finally:
                api.runtime.deliverer_task.cancel()

        asyncio.run(serve_a_while())
        assert [r.rcpt_tos for r in smtp.received] == [["ap@acme.test"]]

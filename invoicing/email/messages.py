"""The messages themselves: a plain-text body and its HTML twin, the document's PDF
attached, and headers that make a resent attempt recognisable (`Message-ID` is the
delivery's, the same on every attempt).

Bcc recipients are never written into the headers: they are only in the envelope
(`invoicing.email.smtp.send`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape

from invoicing.documents.model import Document, long_date
from invoicing.email.smtp import SmtpConfig
from rating.money import format_money


@dataclass(frozen=True)
class Envelope:
    """Who a delivery goes to and when it is written."""

    delivery_id: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    now: datetime

    @property
    def recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]


@dataclass(frozen=True)
class Receipt:
    """What a payment receipt says."""

    seller: str
    seller_email: str | None
    buyer: str
    amount: str
    currency: str
    paid_at: datetime
    invoice_number: str | None
    reference: str | None
    amount_due: str


def document_message(
    config: SmtpConfig, envelope: Envelope, document: Document, pdf: bytes
) -> EmailMessage:
    """An invoice or a credit note, its PDF attached."""
    cur = document.currency
    totals = document.totals
    if document.kind == "credit_note":
        subject = f"Credit note {document.number} from {document.seller.name}"
        facts = [("Credit note", document.number), ("Amount credited", _money(totals.total, cur))]
        if document.refers_to is not None:
            facts.append(("For invoice", document.refers_to.number))
        intro = f"{document.seller.name} has issued credit note {document.number} to you."
    else:
        subject = f"Invoice {document.number} from {document.seller.name}"
        facts = [("Invoice", document.number), ("Total", _money(totals.total, cur))]
        facts.append(("Amount due", _money(totals.amount_due, cur)))
        if document.due_date is not None and totals.amount_due > 0:
            facts.append(("Due", long_date(document.due_date)))
        intro = f"{document.seller.name} has sent you invoice {document.number}."
    facts.append(("Issued", long_date(document.issue_date)))
    message = _message(config, envelope, subject, document.seller.name, document.seller.email)
    _bodies(message, document.buyer.name, intro, facts, "The document is attached as a PDF.")
    message.add_attachment(
        pdf, maintype="application", subtype="pdf", filename=f"{document.number}.pdf"
    )
    return message


def receipt_message(config: SmtpConfig, envelope: Envelope, receipt: Receipt) -> EmailMessage:
    """A payment receipt: what was received, for which invoice, and what is still due."""
    amount = f"{receipt.currency} {receipt.amount}"
    subject = f"Receipt from {receipt.seller}: {amount} received"
    facts = [("Amount received", amount), ("Date", long_date(receipt.paid_at.date()))]
    if receipt.invoice_number:
        facts.append(("Invoice", receipt.invoice_number))
    if receipt.reference:
        facts.append(("Reference", receipt.reference))
    facts.append(("Still due on the invoice", f"{receipt.currency} {receipt.amount_due}"))
    intro = f"{receipt.seller} has received your payment. Thank you."
    message = _message(config, envelope, subject, receipt.seller, receipt.seller_email)
    _bodies(message, receipt.buyer, intro, facts, "Keep this email as your receipt.")
    return message


def _message(
    config: SmtpConfig, envelope: Envelope, subject: str, seller: str, reply_to: str | None
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    local, _, domain = config.sender.rpartition("@")
    message["From"] = Address(display_name=seller, username=local, domain=domain)
    message["To"] = ", ".join(envelope.to)
    if envelope.cc:
        message["Cc"] = ", ".join(envelope.cc)
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = format_datetime(envelope.now)
    message["Message-ID"] = f"<{envelope.delivery_id}@{config.sender_domain}>"
    return message


def _bodies(
    message: EmailMessage,
    buyer: str,
    intro: str,
    facts: list[tuple[str, str]],
    outro: str,
) -> None:
    width = max(len(label) for label, _ in facts) + 2
    text = "\n".join(
        [
            f"Dear {buyer},",
            "",
            intro,
            "",
            *(f"{label + ':':<{width}}{value}" for label, value in facts),
            "",
            outro,
            "",
        ]
    )
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 16px 2px 0">{escape(label)}</th>'
        f"<td>{escape(value)}</td></tr>"
        for label, value in facts
    )
    html = (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<p>Dear {escape(buyer)},</p><p>{escape(intro)}</p>"
        f"<table>{rows}</table><p>{escape(outro)}</p></body></html>"
    )
    message.set_content(text)
    message.add_alternative(html, subtype="html")


def _money(amount: Decimal, currency: str) -> str:
    return f"{currency} {format_money(amount, currency)}"

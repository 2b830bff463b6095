"""Hosted payment pages (`POST /invoices/{id}/payment-url`): a page at the customer's
payment provider where what an OPEN or OVERDUE invoice still owes is paid by hand.

A link is an attempt (`status: link`) under the key `<invoice id>/link-<n>`. The key goes
to the provider twice: as its idempotency key (a retry, or two calls at once, make one
page) and as the merchant reference its payment notification echoes back, which is how
`notifications` finds the invoice. Like a charge, it is made in three short steps and
no ledger lock is held while the provider answers:

1. read the invoice: collectable, a provider connected, no direct debit of it being
   collected (`processing`: a page could collect twice); the latest link answered again
   while it is open, unexpired for a while yet, and for the amount still due;
2. outside: ask the provider for the page;
3. store the link (a concurrent call that stored the same key first wins; its link is
   the same page, made under the same key).

A link lives `LINK_LIFETIME` (23 hours: Stripe Checkout allows at most 24, and the
hour is room for clocks that differ; every other provider allows longer). A payment on
a link after the invoice was paid otherwise still reaches the attempt, which says it
was charged but not applied: a person refunds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, InvalidInput
from invoicing import invoices
from invoicing.models import PaymentAttemptRow, new_id
from invoicing.payments import providers
from invoicing.payments.base import LinkRequest, PaymentLink
from invoicing.payments.providers import GatewayFactory
from rating.money import ZERO

LINK_LIFETIME = timedelta(hours=23)
# A link this close to its end is not handed out again: the payer needs time to pay.
REUSE_MARGIN = timedelta(minutes=30)


@dataclass(frozen=True)
class IssuedLink:
    attempt: PaymentAttemptRow
    created: bool  # False: an open link answered again


@dataclass(frozen=True)
class _Ask:
    provider: str
    config: dict[str, Any]
    request: LinkRequest


def payment_link(
    sessions: sessionmaker[Session],
    tenant_id: str,
    invoice_id: str,
    now: datetime,
    gateways: GatewayFactory,
    *,
    success_url: str | None = None,
    cancel_url: str | None = None,
) -> IssuedLink:
    with sessions() as session, session.begin():
        found = _begin(session, tenant_id, invoice_id, now, success_url, cancel_url)
        if isinstance(found, PaymentAttemptRow):
            session.expunge(found)
            return IssuedLink(found, created=False)
    gateway = gateways(found.provider, found.config)
    try:
        link = gateway.payment_link(found.request)
    finally:
        gateway.close()
    return IssuedLink(_store(sessions, tenant_id, found, link, now), created=True)


def _begin(
    session: Session,
    tenant_id: str,
    invoice_id: str,
    now: datetime,
    success_url: str | None,
    cancel_url: str | None,
) -> PaymentAttemptRow | _Ask:
    invoice = invoices.get_invoice(session, tenant_id, invoice_id)
    if invoice.status not in ("OPEN", "OVERDUE"):
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; a payment page needs an OPEN or "
            "OVERDUE invoice",
            code="illegal_transition",
            details={"status": invoice.status},
        )
    if invoice.amount_due <= ZERO:
        raise Conflict(f"invoice {invoice.id} has nothing due", code="nothing_due")
    customer = invoice.customer
    if not customer.payment_provider:
        raise InvalidInput(
            f"customer {customer.external_id!r} has no paymentProvider; set one to make a "
            "payment page",
            code="no_payment_provider",
        )
    connection = providers.find(session, tenant_id, customer.payment_provider)
    if connection is None:
        raise InvalidInput(
            f"payment provider {customer.payment_provider!r} is not connected for this tenant",
            code="provider_not_connected",
        )
    processing = session.execute(
        select(PaymentAttemptRow.id).where(
            PaymentAttemptRow.tenant_id == tenant_id,
            PaymentAttemptRow.invoice_id == invoice.id,
            PaymentAttemptRow.status == "processing",
        )
    ).first()
    if processing is not None:
        raise Conflict(
            f"a payment of invoice {invoice.id} is being collected ({processing[0]}); its "
            "result comes from the provider, and a page now could collect twice",
            code="payment_processing",
        )
    links = PaymentAttemptRow.idempotency_key.like(f"{invoice.id}/link-%")
    latest = session.execute(
        select(PaymentAttemptRow)
        .where(PaymentAttemptRow.tenant_id == tenant_id, links)
        .order_by(PaymentAttemptRow.created_at.desc(), PaymentAttemptRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if (
        latest is not None
        and latest.status == "link"
        and latest.provider == connection.provider
        and Decimal(latest.amount) == invoice.amount_due
        and latest.expires_at is not None
        and latest.expires_at > now + REUSE_MARGIN
    ):
        return latest
    count = session.execute(
        select(func.count())
        .select_from(PaymentAttemptRow)
        .where(PaymentAttemptRow.tenant_id == tenant_id, links)
    ).scalar_one()
    return _Ask(
        connection.provider,
        dict(connection.config),
        LinkRequest(
            tenant_id=tenant_id,
            invoice_id=invoice.id,
            invoice_number=invoice.number,
            amount=invoice.amount_due,
            currency=invoice.currency,
            idempotency_key=f"{invoice.id}/link-{count + 1}",
            expires_at=now + LINK_LIFETIME,
            customer_reference=customer.payment_provider_customer_id,
            customer_email=customer.email,
            customer_name=customer.name,
            success_url=success_url,
            cancel_url=cancel_url,
            requested_at=now,
        ),
    )


def _store(
    sessions: sessionmaker[Session], tenant_id: str, ask: _Ask, link: PaymentLink, now: datetime
) -> PaymentAttemptRow:
    request = ask.request
    row = PaymentAttemptRow(
        id=new_id("att"),
        tenant_id=tenant_id,
        invoice_id=request.invoice_id,
        provider=ask.provider,
        amount=request.amount,
        currency=request.currency,
        idempotency_key=request.idempotency_key,
        status="link",
        provider_reference=link.reference,
        url=link.url,
        expires_at=link.expires_at or request.expires_at,
        created_at=now,
        updated_at=now,
    )
    try:
        with sessions() as session, session.begin():
            session.add(row)
        return row
    except IntegrityError:  # a concurrent call stored this key first: the same page
        with sessions() as session:
            stored = session.execute(
                select(PaymentAttemptRow).where(
                    PaymentAttemptRow.tenant_id == tenant_id,
                    PaymentAttemptRow.idempotency_key == request.idempotency_key,
                )
            ).scalar_one()
            session.expunge(stored)
            return stored

"""Hosted payment pages (`POST /invoices/{id}/payment-url`): a page at the customer's
payment provider where what an OPEN or OVERDUE invoice still owes is paid by hand.

A link is an attempt (`status: link`) under the key `<invoice id>/link-<n>`. The key goes
to the provider twice: as its idempotency key (a retry, or two calls at once, make one
page) and as the merchant reference its payment notification echoes back, which is how
`notifications` finds the invoice. Like a charge, it is made in three short steps and
no ledger lock is held while the provider answers:

1. lock the invoice: collectable, a provider connected, no charge of it in flight or
   being collected (`pending`, `processing`: a page could collect twice), no page being
   made; the latest page answered again while it is open, unexpired for a while yet,
   and for the amount still due; else an attempt reserved under the next key;
2. outside: ask the provider for the page;
3. store the page on the attempt, which step 1 reserved under its key (a refusal or a
   lost answer fails the attempt; the key is not used again).

A link lives `LINK_LIFETIME` (23 hours: Stripe Checkout allows at most 24, and the
hour is room for clocks that differ; every other provider allows longer). A payment on
a link after the invoice was paid otherwise still reaches the attempt, which says it
was charged but not applied: a person refunds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, DomainError, InvalidInput
from invoicing import invoices
from invoicing.models import PaymentAttemptRow, new_id
from invoicing.payments import providers
from invoicing.payments.base import LinkRequest, PaymentLink
from invoicing.payments.providers import GatewayFactory
from rating.money import ZERO

LINK_LIFETIME = timedelta(hours=23)
# A page reserved this long ago with no answer was lost with its process: not waited for.
IN_FLIGHT = timedelta(minutes=2)
# A link this close to its end is not handed out again: the payer needs time to pay.
REUSE_MARGIN = timedelta(minutes=30)


@dataclass(frozen=True)
class IssuedLink:
    attempt: PaymentAttemptRow
    created: bool  # False: an open link answered again


@dataclass(frozen=True)
class _Ask:
    attempt_id: str
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
    gateway = None
    try:
        gateway = gateways(found.provider, found.config)
        link = gateway.payment_link(found.request)
    except Exception as exc:
        message = exc.message if isinstance(exc, DomainError) else repr(exc)
        _abandon(sessions, found.attempt_id, message, now)
        raise
    finally:
        if gateway is not None:
            gateway.close()
    return IssuedLink(_complete(sessions, found.attempt_id, link, now), created=True)


def _begin(
    session: Session,
    tenant_id: str,
    invoice_id: str,
    now: datetime,
    success_url: str | None,
    cancel_url: str | None,
) -> PaymentAttemptRow | _Ask:
    # Locked: two asks at once are taken in turn, so they never share a key.
    invoice = invoices.get_invoice(session, tenant_id, invoice_id, lock=True)
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
    busy = session.execute(
        select(PaymentAttemptRow.id, PaymentAttemptRow.status).where(
            PaymentAttemptRow.tenant_id == tenant_id,
            PaymentAttemptRow.invoice_id == invoice.id,
            or_(
                PaymentAttemptRow.status.in_(("processing", "pending")),
                and_(
                    PaymentAttemptRow.status == "link",
                    PaymentAttemptRow.url.is_(None),
                    PaymentAttemptRow.created_at > now - IN_FLIGHT,
                ),
            ),
        )
    ).first()
    if busy is not None:
        attempt_id, status = busy
        if status == "link":
            raise Conflict(
                f"a payment page of invoice {invoice.id} is being made ({attempt_id}); ask "
                "again in a moment",
                code="payment_page_in_progress",
            )
        raise Conflict(
            f"a payment of invoice {invoice.id} is being collected ({attempt_id}, {status}); "
            "its result comes from the provider, and a page now could collect twice",
            code="payment_processing",
        )
    links = PaymentAttemptRow.idempotency_key.startswith(f"{invoice.id}/link-", autoescape=True)
    latest = session.execute(
        select(PaymentAttemptRow)
        .where(PaymentAttemptRow.tenant_id == tenant_id, links)
        .order_by(PaymentAttemptRow.created_at.desc(), PaymentAttemptRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if (
        latest is not None
        and latest.status == "link"
        and latest.url is not None
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
    request = LinkRequest(
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
    )
    # Reserved before the provider is asked: the key is never handed out twice, even
    # when the provider's answer is lost (that page is never shown, nor paid).
    reserved = PaymentAttemptRow(
        id=new_id("att"),
        tenant_id=tenant_id,
        invoice_id=invoice.id,
        provider=connection.provider,
        amount=request.amount,
        currency=request.currency,
        idempotency_key=request.idempotency_key,
        status="link",
        expires_at=request.expires_at,
        created_at=now,
        updated_at=now,
    )
    session.add(reserved)
    return _Ask(reserved.id, connection.provider, dict(connection.config), request)


def _complete(
    sessions: sessionmaker[Session], attempt_id: str, link: PaymentLink, now: datetime
) -> PaymentAttemptRow:
    with sessions() as session, session.begin():
        row = session.execute(
            select(PaymentAttemptRow).where(PaymentAttemptRow.id == attempt_id).with_for_update()
        ).scalar_one()
        ends = link.expires_at or row.expires_at
        if ends is not None and ends.tzinfo is None:
            ends = ends.replace(tzinfo=UTC)
        row.url, row.provider_reference = link.url, link.reference[:200]
        row.expires_at, row.updated_at = ends, now
        session.flush()
        session.expunge(row)
        return row


def _abandon(sessions: sessionmaker[Session], attempt_id: str, error: str, now: datetime) -> None:
    """The provider made no page (it refused, or could not be reached): the reserved
    attempt is failed with why, and its key is not used again."""
    with sessions() as session, session.begin():
        row = session.get(PaymentAttemptRow, attempt_id)
        if row is not None:
            row.status, row.error, row.updated_at = "failed", error[:2000], now

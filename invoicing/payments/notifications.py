"""Notifications a payment provider posts to us (`POST /payment-providers/{id}/webhooks`):
how a charge that ended later (a direct debit, a hosted payment page, a 3-D Secure
challenge) or a refund reaches the ledger.

A post is checked first and acted on after, all or nothing:

1. the connection is found by its id alone (a provider cannot send our API key), and
   its module's `verify_webhook` checks the provider's signature over the raw body with
   the connection's opened config: anything else is `WebhookRejected`, nothing stored;
2. a success reported by a provider whose signature does not cover the body
   (Flutterwave) is asked of the provider's API (`ConfirmsNotifications`); one it does
   not confirm has no effect, and one it cannot be asked about fails the post (503:
   the provider delivers it again);
3. in one transaction, each result is stored once per (connection, event id); a
   redelivery finds its row and is a `duplicate` with no effect, so a provider that
   retries (they all do, until they get a 2xx) never pays an invoice twice;
4. a result's effect, by what it is about:
   - a charge attempt of ours (found by the provider's charge id, else by our
     idempotency key echoed back, which is how a hosted-link payment finds its invoice):
     a final success of a pending, processing, failed or link attempt records the
     payment (PAID when covered); a final failure of a processing attempt records
     `payment.failed` and dunning goes on; anything else (a failure after success, a
     late repeat of what we know) changes nothing;
   - a refund of a credit note (found by the refund's id): its `refundStatus`;
   - a payment method saved on a checkout page (`kind: method`): stored on its
     customer (checkout.py);
   - anything unknown (not ours, another tenant's, a step on the way) is `ignored`.

Every stored notification names what it did (`effect`, `detail`), so an operator can see
why a post changed nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import NotFound
from invoicing.models import (
    CreditNoteRow,
    PaymentAttemptRow,
    PaymentNotificationRow,
    PaymentProviderRow,
    new_id,
)
from invoicing.payments import checkout, collection, providers
from invoicing.payments.base import ConfirmsNotifications, WebhookResult, checkout_customer
from invoicing.payments.providers import GatewayFactory
from invoicing.secrets import SecretBox

log = logging.getLogger(__name__)

# Attempts a final success still applies to: `failed` covers a charge that needed the
# customer (3-D Secure) and was completed by them later.
PAYABLE = frozenset({"pending", "processing", "failed", "link"})


@dataclass(frozen=True)
class Receipt:
    received: int
    applied: int
    ignored: int
    duplicates: int


def receive(
    sessions: sessionmaker[Session],
    provider_id: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    box: SecretBox,
    gateways: GatewayFactory | None = None,
) -> Receipt:
    """Check a notification posted for the connection `provider_id` and apply what it
    says; `WebhookRejected` when it is not the provider's, NotFound for no connection."""
    with sessions() as session:
        connection = session.get(PaymentProviderRow, provider_id)
        if connection is None:
            raise NotFound(f"payment provider {provider_id!r} not found")
        tenant_id, provider = connection.tenant_id, connection.provider
        stored = dict(connection.config)
        config = providers.opened(stored, box)
    results = providers.verify_notifications(provider, config, headers, body, now)
    results = _confirmed(provider, stored, results, gateways or providers.gateways(box))
    applied = ignored = duplicates = 0
    with sessions() as session, session.begin():
        for result in results:
            effect = _store(session, tenant_id, provider_id, provider, result, now)
            if effect == "applied":
                applied += 1
            elif effect == "duplicate":
                duplicates += 1
            else:
                ignored += 1
    return Receipt(len(results), applied, ignored, duplicates)


def _confirmed(
    provider: str,
    config: Mapping[str, Any],
    results: Sequence[WebhookResult],
    gateways: GatewayFactory,
) -> Sequence[WebhookResult]:
    """The results as the provider's API confirms them, for a provider whose signature
    does not cover the body; the others' as they are."""
    if not results or not providers.confirms(provider):
        return results
    gateway = gateways(provider, config)
    try:
        if not isinstance(gateway, ConfirmsNotifications):
            return results
        return [gateway.confirm(result) for result in results]
    finally:
        gateway.close()


def _store(
    session: Session,
    tenant_id: str,
    provider_id: str,
    provider: str,
    result: WebhookResult,
    now: datetime,
) -> str:
    row = PaymentNotificationRow(
        id=new_id("pn"),
        tenant_id=tenant_id,
        provider_id=provider_id,
        provider=provider,
        event_id=result.event_id[:255],
        kind=result.kind,
        reference=result.reference[:255],
        succeeded=result.succeeded,
        final=result.final,
        effect="ignored",
        received_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # this event id was stored before: a redelivery
        return "duplicate"
    if not result.final:
        row.detail = "not final yet"
    elif result.kind == "method":
        checkout.record(session, tenant_id, provider, result, row, now)
    elif result.kind == "refund":
        _refund(session, tenant_id, result, row)
    elif checkout_customer(result.ours) is not None:
        # The zero-value check a checkout page makes (Adyen): no invoice is paid by it.
        row.detail = "a payment method check of a checkout page, not a charge"
    else:
        _charge(session, tenant_id, provider, result, row, now)
    return row.effect


def _charge(
    session: Session,
    tenant_id: str,
    provider: str,
    result: WebhookResult,
    row: PaymentNotificationRow,
    now: datetime,
) -> None:
    attempt = _attempt(session, tenant_id, provider, result)
    if attempt is None:
        # Perhaps ours all the same: a provider may notify before its answer to the
        # charge reached us. Kept `unmatched`; the attempt, once it learns this
        # reference, applies it (collection.apply_parked).
        row.effect = "unmatched" if result.final else "ignored"
        row.detail = "no attempt of ours has this reference (yet)"
        return
    row.invoice_id = attempt.invoice_id
    short = collection.short_payment(attempt, result)
    if not result.final:
        if attempt.status == "link":
            # Paid on the page by a slow method (a bank debit): collected later. No
            # charge of the invoice meanwhile, as for a processing debit of ours.
            attempt.status, attempt.updated_at = "processing", now
            attempt.provider_reference = result.reference[:200]
            row.effect, row.detail = "applied", "payment on its way"
        else:
            row.detail = "not final yet"
    elif result.succeeded and short is not None:
        attempt.error = short
        row.detail = short
        log.warning("payment attempt %s: %s", attempt.id, short)
    elif result.succeeded and attempt.status in PAYABLE:
        collection.apply_success(session, tenant_id, attempt, result.reference, now)
        row.effect, row.detail = "applied", attempt.error or "payment recorded"
    elif not result.succeeded and attempt.status in ("processing", "pending"):
        attempt.provider_reference = attempt.provider_reference or result.reference[:200]
        attempt.error = "the provider reported the payment failed"
        collection.record_failure(session, tenant_id, attempt, now)
        row.effect, row.detail = "applied", "payment failed"
    else:
        row.detail = f"the attempt is {attempt.status} already"
        if not result.succeeded and attempt.status == "succeeded":
            # A chargeback or a late bounce: the invoice stays PAID; the notification is
            # kept, and a person decides (a credit note, a new invoice).
            log.warning("payment attempt %s failed after it succeeded", attempt.id)


def _attempt(
    session: Session, tenant_id: str, provider: str, result: WebhookResult
) -> PaymentAttemptRow | None:
    matches = [PaymentAttemptRow.provider_reference == result.reference]
    if result.ours:
        matches.append(PaymentAttemptRow.idempotency_key == result.ours)
    found = list(
        session.execute(
            select(PaymentAttemptRow)
            .where(
                PaymentAttemptRow.tenant_id == tenant_id,
                PaymentAttemptRow.provider == provider,
                or_(*matches),
            )
            .with_for_update()
        ).scalars()
    )
    # The provider's id of the charge is signed by every provider; our key echoed back
    # is not always (Tap's metadata): when both name an attempt, the signed one wins.
    by_reference = [a for a in found if a.provider_reference == result.reference]
    chosen = by_reference or found
    return chosen[0] if chosen else None


def _refund(
    session: Session, tenant_id: str, result: WebhookResult, row: PaymentNotificationRow
) -> None:
    note = session.execute(
        select(CreditNoteRow)
        .where(
            CreditNoteRow.tenant_id == tenant_id,
            CreditNoteRow.refund_reference == result.reference,
        )
        .order_by(CreditNoteRow.id)
        .limit(1)
        .with_for_update(of=CreditNoteRow)  # not the eagerly joined customer
    ).scalar_one_or_none()
    if note is None:
        row.detail = "no credit note refund has this reference"
        return
    row.invoice_id = note.invoice_id
    status = "succeeded" if result.succeeded else "failed"
    if note.refund_status in (status, "failed"):
        # Failed is where a refund ends: a success told after it (events out of order)
        # does not bring it back; a person looks at the provider's dashboard.
        row.detail = f"the refund is {note.refund_status} already"
        return
    note.refund_status = status
    row.effect, row.detail = "applied", f"refund {status}"


def recent(
    session: Session, tenant_id: str, provider_id: str, limit: int = 100
) -> list[PaymentNotificationRow]:
    """A connection's latest notifications, newest first (for operators)."""
    return list(
        session.execute(
            select(PaymentNotificationRow)
            .where(
                PaymentNotificationRow.tenant_id == tenant_id,
                PaymentNotificationRow.provider_id == provider_id,
            )
            .order_by(PaymentNotificationRow.received_at.desc(), PaymentNotificationRow.id.desc())
            .limit(limit)
        ).scalars()
    )

"""One attempt to collect an invoice through its customer's payment provider.

An attempt is made at finalize and at each dunning step, under the idempotency key
`<invoice id>/<purpose>` (`finalize`, `dunning-3`). It runs in three short steps so
that no ledger lock is held while the provider answers:

1. in a transaction: check the invoice is collectable, write the attempt `pending`
   (unique per key: a second pass at the same moment finds it and changes nothing);
2. outside: ask the provider (its adapter retries with the same key);
3. in a transaction: `succeeded` records the payment (PAID when it covers what is due,
   `payment.succeeded`), `failed` records `payment.failed`; the invoice stays OPEN or
   OVERDUE and dunning tries again. A charge the provider accepted but collects later
   (a direct debit) is `processing`: nothing is recorded until its webhook says how it
   ended (`invoicing.payments.notifications`), and no other charge of the invoice is
   made meanwhile, so a slow debit is never doubled by a dunning step.

An attempt left `pending` by a crash between 1 and 3 is sent again with its own key by
the next call for the same purpose: the provider answers the first result, so the
customer is charged at most once and the ledger learns what happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, DomainError, ValidationFailed
from invoicing import events, invoices
from invoicing.models import PaymentAttemptRow, PaymentNotificationRow, new_id
from invoicing.payments import providers
from invoicing.payments.base import ChargeRequest, Outcome, WebhookResult
from invoicing.payments.providers import GatewayFactory
from rating.money import ZERO, format_money

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptResult:
    attempt_id: str
    status: str  # succeeded | failed
    error: str | None


@dataclass(frozen=True)
class _Pending:
    attempt_id: str
    provider: str
    config: dict[str, Any]
    request: ChargeRequest


def collect(
    sessions: sessionmaker[Session],
    tenant_id: str,
    invoice_id: str,
    purpose: str,
    now: datetime,
    gateways: GatewayFactory,
) -> AttemptResult | None:
    """Try to collect what `invoice_id` still owes; None when there is nothing to try
    (no provider for the customer, nothing due, not OPEN/OVERDUE)."""
    with sessions() as session, session.begin():
        found = _begin(session, tenant_id, invoice_id, purpose, now)
    if isinstance(found, AttemptResult) or found is None:
        return found
    gateway = None
    try:
        gateway = gateways(found.provider, found.config)
        outcome = gateway.charge(found.request)
    except DomainError as exc:  # unavailable after retries, or a config the adapter refused
        outcome = Outcome(False, error=exc.message)
    except Exception as exc:  # an adapter bug must not lose the attempt
        log.exception("payment attempt %s failed unexpectedly", found.attempt_id)
        outcome = Outcome(False, error=f"unexpected error: {exc!r}")
    finally:
        if gateway is not None:
            gateway.close()
    with sessions() as session, session.begin():
        return _finish(session, tenant_id, found.attempt_id, outcome, now)


def _begin(
    session: Session, tenant_id: str, invoice_id: str, purpose: str, now: datetime
) -> _Pending | AttemptResult | None:
    invoice = invoices.get_invoice(session, tenant_id, invoice_id, lock=True)
    key = f"{invoice.id}/{purpose}"
    attempt = session.execute(
        select(PaymentAttemptRow).where(
            PaymentAttemptRow.tenant_id == tenant_id, PaymentAttemptRow.idempotency_key == key
        )
    ).scalar_one_or_none()
    if attempt is not None and attempt.status != "pending":
        return AttemptResult(attempt.id, attempt.status, attempt.error)
    customer = invoice.customer
    if attempt is None:
        processing = _processing(session, tenant_id, invoice.id)
        if processing is not None:
            return AttemptResult(processing.id, processing.status, processing.error)
        if invoice.status not in ("OPEN", "OVERDUE") or invoice.amount_due <= ZERO:
            return None
        if not customer.payment_provider:
            return None
        attempt = PaymentAttemptRow(
            id=new_id("att"),
            tenant_id=tenant_id,
            invoice_id=invoice.id,
            provider=customer.payment_provider,
            amount=invoice.amount_due,
            currency=invoice.currency,
            idempotency_key=key,
            status="pending",
            created_at=now,
        )
        session.add(attempt)
        session.flush()
    connection = providers.find(session, tenant_id, attempt.provider)
    # A method saved on a checkout page counts at the provider that saved it only.
    saved = None
    if customer.payment_method_provider == attempt.provider:
        saved = customer.payment_method_id
    problem = None
    if connection is None:
        problem = f"payment provider {attempt.provider!r} is not connected for this tenant"
    elif not customer.payment_provider_customer_id and not saved:
        problem = f"the customer has no {attempt.provider} customer id (paymentProviderCustomerId)"
    if problem is not None or connection is None:
        return _finish(session, tenant_id, attempt.id, Outcome(False, error=problem), now)
    return _Pending(
        attempt.id,
        attempt.provider,
        dict(connection.config),
        ChargeRequest(
            tenant_id=tenant_id,
            invoice_id=invoice.id,
            invoice_number=invoice.number,
            customer_reference=customer.payment_provider_customer_id or "",
            amount=Decimal(attempt.amount),
            currency=attempt.currency,
            idempotency_key=key,
            customer_email=customer.email,
            payment_method=saved,
        ),
    )


def _finish(
    session: Session, tenant_id: str, attempt_id: str, outcome: Outcome, now: datetime
) -> AttemptResult:
    attempt = session.execute(
        select(PaymentAttemptRow).where(PaymentAttemptRow.id == attempt_id).with_for_update()
    ).scalar_one()
    if attempt.status != "pending":  # a concurrent pass finished it first
        return AttemptResult(attempt.id, attempt.status, attempt.error)
    attempt.provider_reference = outcome.reference
    attempt.error = outcome.error
    attempt.updated_at = now
    if outcome.pending and not outcome.succeeded:
        attempt.status = "processing"
        apply_parked(session, tenant_id, attempt, now)
        return AttemptResult(attempt.id, attempt.status, attempt.error)
    if outcome.succeeded:
        apply_success(session, tenant_id, attempt, outcome.reference, now)
    else:
        record_failure(session, tenant_id, attempt, now)
        apply_parked(session, tenant_id, attempt, now)
    return AttemptResult(attempt.id, attempt.status, attempt.error)


def short_payment(attempt: PaymentAttemptRow, result: WebhookResult) -> str | None:
    """Why a success the provider reports does not pay `attempt`: another currency, or
    less than the attempt asked; None when it does (or the provider says no amount)."""
    if result.currency and result.currency.upper() != attempt.currency.upper():
        return (
            f"paid in {result.currency.upper()}, the attempt is in {attempt.currency}: "
            "not applied to the invoice"
        )
    if result.amount is not None and result.amount < Decimal(attempt.amount):
        return (
            f"paid {result.amount} {attempt.currency}, the attempt asked "
            f"{format_money(attempt.amount, attempt.currency)}: not applied to the invoice"
        )
    return None


def apply_parked(
    session: Session, tenant_id: str, attempt: PaymentAttemptRow, now: datetime
) -> None:
    """Results the provider notified about this attempt's charge before its answer to
    the charge reached us (kept `unmatched` by the webhook): applied now, in order."""
    if not attempt.provider_reference:
        return
    parked = session.execute(
        select(PaymentNotificationRow)
        .where(
            PaymentNotificationRow.tenant_id == tenant_id,
            PaymentNotificationRow.provider == attempt.provider,
            PaymentNotificationRow.reference == attempt.provider_reference,
            PaymentNotificationRow.kind == "charge",
            PaymentNotificationRow.effect == "unmatched",
        )
        .order_by(PaymentNotificationRow.received_at, PaymentNotificationRow.id)
        .with_for_update()
    ).scalars()
    for row in list(parked):
        row.invoice_id = attempt.invoice_id
        if row.succeeded and attempt.status in ("processing", "failed", "pending"):
            apply_success(session, tenant_id, attempt, row.reference, now)
            row.effect = "applied"
            row.detail = attempt.error or "payment recorded (matched late)"
        elif not row.succeeded and attempt.status == "processing":
            attempt.error = "the provider reported the payment failed"
            record_failure(session, tenant_id, attempt, now)
            row.effect, row.detail = "applied", "payment failed (matched late)"
        else:
            row.effect, row.detail = "ignored", f"the attempt is {attempt.status} already"


def apply_success(
    session: Session,
    tenant_id: str,
    attempt: PaymentAttemptRow,
    reference: str | None,
    now: datetime,
) -> None:
    """The provider collected `attempt` (its charge `reference`): record the payment on
    the invoice. When the invoice changed meanwhile (voided, paid by hand) the money
    moved all the same: the attempt says so and a person refunds it."""
    attempt.status = "succeeded"
    attempt.provider_reference = reference[:200] if reference else reference
    attempt.error = None
    attempt.updated_at = now
    try:
        with session.begin_nested():
            invoices.record_payment(
                session,
                tenant_id,
                attempt.invoice_id,
                attempt.amount,
                reference,
                now,
                provider=attempt.provider,
            )
    except (Conflict, ValidationFailed) as exc:
        attempt.error = f"charged, but not applied to the invoice: {exc.message}"
        log.warning("payment attempt %s: %s", attempt.id, attempt.error)


def record_failure(
    session: Session, tenant_id: str, attempt: PaymentAttemptRow, now: datetime
) -> None:
    """`attempt` ended without money: the attempt says why and `payment.failed` is
    recorded; the invoice stays OPEN or OVERDUE for dunning to try again."""
    attempt.status = "failed"
    attempt.updated_at = now
    events.record(
        session,
        tenant_id,
        "payment.failed",
        attempt.id,
        {
            "id": attempt.id,
            "invoiceId": attempt.invoice_id,
            "provider": attempt.provider,
            "amount": format_money(attempt.amount, attempt.currency),
            "currency": attempt.currency,
            "error": attempt.error,
            "createdAt": now.isoformat().replace("+00:00", "Z"),
        },
        now,
    )


def _processing(session: Session, tenant_id: str, invoice_id: str) -> PaymentAttemptRow | None:
    return session.execute(
        select(PaymentAttemptRow)
        .where(
            PaymentAttemptRow.tenant_id == tenant_id,
            PaymentAttemptRow.invoice_id == invoice_id,
            PaymentAttemptRow.status == "processing",
        )
        .limit(1)
    ).scalar_one_or_none()


def attempts_of(session: Session, tenant_id: str, invoice_id: str) -> list[PaymentAttemptRow]:
    return list(
        session.execute(
            select(PaymentAttemptRow)
            .where(
                PaymentAttemptRow.tenant_id == tenant_id,
                PaymentAttemptRow.invoice_id == invoice_id,
            )
            .order_by(PaymentAttemptRow.created_at, PaymentAttemptRow.id)
        ).scalars()
    )

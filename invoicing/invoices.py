"""Invoices and their lifecycle.

    DRAFT → OPEN → PAID
             ↘ OVERDUE → UNCOLLECTIBLE
             ↘ VOID

Numbers are assigned at finalize from the sequence row of the invoice's billing entity
(its prefix; docs/billing-entities.md), locked for update, so concurrent finalizations
can neither skip nor repeat a number.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing import events
from invoicing.billing_entities import invoice_entity
from invoicing.custom_sections import copy_onto
from invoicing.models import (
    CustomerRow,
    InvoiceNumberSequence,
    InvoiceRow,
    InvoiceSequence,
    PaymentRow,
    new_id,
)
from invoicing.pages import Page, keyset_page
from invoicing.specs import TaxOverrideSpec
from rating.money import ZERO, format_money, round_money, to_decimal
from rating.totals import totals

TRANSITIONS: dict[str, set[str]] = {
    "DRAFT": {"OPEN"},
    "OPEN": {"PAID", "OVERDUE", "VOID"},
    "OVERDUE": {"PAID", "UNCOLLECTIBLE", "VOID"},
    "PAID": set(),
    "VOID": set(),
    "UNCOLLECTIBLE": set(),
}


# The event each state's arrival records (the outbox of invoicing.events).
ARRIVAL_EVENTS = {
    "PAID": "invoice.paid",
    "OVERDUE": "invoice.overdue",
    "UNCOLLECTIBLE": "invoice.uncollectible",
    "VOID": "invoice.voided",
}


def _transition(
    session: Session, tenant_id: str, invoice: InvoiceRow, target: str, now: datetime
) -> None:
    """Move `invoice` to `target` at `now` (409 naming both states when the machine
    forbids it), stamp when it got there, and record the state's domain event."""
    if target not in TRANSITIONS[invoice.status]:
        allowed = ", ".join(sorted(TRANSITIONS[invoice.status])) or "none"
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; it cannot become {target} "
            f"(from {invoice.status}: {allowed})",
            code="illegal_transition",
            details={"status": invoice.status, "target": target},
        )
    invoice.status = target
    stamp = {"PAID": "paid_at", "OVERDUE": "overdue_at", "UNCOLLECTIBLE": "uncollectible_at"}
    if target in stamp:
        setattr(invoice, stamp[target], now)
    elif target == "VOID":
        invoice.voided_at = now
    if target in ARRIVAL_EVENTS:
        events.record(
            session,
            tenant_id,
            ARRIVAL_EVENTS[target],
            invoice.id,
            events.invoice_data(invoice),
            now,
        )
    if invoice.type == "credit" and target in ("PAID", "VOID"):
        from invoicing import wallets

        # A wallet top-up's invoice: paid credits settle, or are cancelled.
        if target == "PAID":
            wallets.invoice_paid(session, tenant_id, invoice, now)
        else:
            wallets.invoice_voided(session, invoice)


def get_invoice(
    session: Session, tenant_id: str, invoice_id: str, *, lock: bool = False
) -> InvoiceRow:
    query = select(InvoiceRow).where(InvoiceRow.id == invoice_id, InvoiceRow.tenant_id == tenant_id)
    if lock:
        # Lock the invoice row only: PostgreSQL refuses FOR UPDATE on the outer-joined customer.
        query = query.with_for_update(of=InvoiceRow)
    row = session.execute(query).unique().scalar_one_or_none()
    if row is None:
        raise NotFound(f"invoice {invoice_id!r} not found")
    return row


def list_invoices(
    session: Session,
    tenant_id: str,
    *,
    customer_external_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[InvoiceRow]:
    """The tenant's invoices (of one customer, in one status), newest first, one page."""
    if status is not None and status.upper() not in TRANSITIONS:
        raise ValidationFailed(f"status must be one of {', '.join(TRANSITIONS)}")
    query = select(InvoiceRow).where(InvoiceRow.tenant_id == tenant_id)
    if customer_external_id is not None:
        query = query.join(CustomerRow, CustomerRow.id == InvoiceRow.customer_id).where(
            CustomerRow.external_id == customer_external_id
        )
    if status is not None:
        query = query.where(InvoiceRow.status == status.upper())
    return keyset_page(session, query, InvoiceRow, limit, cursor)


def next_number(session: Session, tenant_id: str, prefix: str = "INV") -> str:
    """Take the next number of the prefix's sequence: `INV` is the tenant's own
    (InvoiceSequence), any other a billing entity's (InvoiceNumberSequence, created with
    the entity). The UPDATE row-locks the sequence until commit on PostgreSQL; SQLite
    serializes writers with BEGIN IMMEDIATE."""
    if prefix != "INV":
        taken = session.execute(
            update(InvoiceNumberSequence)
            .where(
                InvoiceNumberSequence.tenant_id == tenant_id,
                InvoiceNumberSequence.prefix == prefix,
            )
            .values(next_value=InvoiceNumberSequence.next_value + 1)
            .returning(InvoiceNumberSequence.next_value)
        ).first()
        if taken is None:
            session.add(InvoiceNumberSequence(tenant_id=tenant_id, prefix=prefix, next_value=2))
            return f"{prefix}-{1:06d}"
        return f"{prefix}-{int(taken[0]) - 1:06d}"
    result = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.tenant_id == tenant_id)
        .values(next_value=InvoiceSequence.next_value + 1)
        .returning(InvoiceSequence.next_value)
    ).first()
    if result is None:
        session.add(InvoiceSequence(tenant_id=tenant_id, next_value=2))
        value = 1
    else:
        value = int(result[0]) - 1
    return f"INV-{value:06d}"


def finalize(
    session: Session, tenant_id: str, invoice_id: str, due_days: int, now: datetime
) -> InvoiceRow:
    """DRAFT → OPEN at `now`: the next gap-free number, due after the customer's net
    payment terms (`due_days`, the process's default, when the customer has none)."""
    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    if invoice.status != "DRAFT":
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; only a DRAFT can be finalized",
            code="illegal_transition",
            details={"status": invoice.status, "target": "OPEN"},
        )
    # The custom sections as they are now: this copy is the one the invoice keeps.
    copy_onto(session, invoice)
    invoice.status = "OPEN"
    # The seller is fixed here: the customer's entity, numbered from its own sequence.
    entity = invoice_entity(session, invoice)
    invoice.billing_entity = entity
    invoice.number = next_number(session, tenant_id, entity.invoice_prefix if entity else "INV")
    invoice.issued_at = now
    invoice.finalized_at = now
    terms = invoice.customer.net_payment_term_days
    invoice.due_at = now + timedelta(days=due_days if terms is None else terms)
    from invoicing.credit_notes import use_balance

    # The customer's credit balance (from `credit` notes) pays first.
    use_balance(session, tenant_id, invoice, now)
    data = events.invoice_data(invoice)
    events.record(session, tenant_id, "invoice.finalized", invoice.id, data, now)
    settle_if_covered(session, tenant_id, invoice, now)
    return invoice


def void(session: Session, tenant_id: str, invoice_id: str, now: datetime) -> InvoiceRow:
    """OPEN or OVERDUE → VOID: the invoice is cancelled before it was collected."""
    from invoicing.credit_notes import give_back_balance
    from invoicing.wallets import refund_invoice

    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    _transition(session, tenant_id, invoice, "VOID", now)
    # Prepaid credits the invoice consumed go back to their wallets.
    refund_invoice(session, tenant_id, invoice.id)
    # So do the credit balances it used.
    give_back_balance(session, tenant_id, invoice.id)
    return invoice


def record_payment(
    session: Session,
    tenant_id: str,
    invoice_id: str,
    amount: object,
    reference: str | None,
    now: datetime,
    *,
    provider: str | None = None,
) -> PaymentRow:
    """Record a payment of an OPEN or OVERDUE invoice, at most what is due; 0 due is
    PAID. Records `payment.succeeded` (and `invoice.paid` when it settles)."""
    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    if invoice.status not in ("OPEN", "OVERDUE"):
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; payments need an OPEN or OVERDUE invoice",
            code="illegal_transition",
            details={"status": invoice.status},
        )
    value = to_decimal(amount, what="amount")
    if value <= 0:
        raise ValidationFailed("amount must be positive")
    if value != round_money(value, invoice.currency):
        raise ValidationFailed(f"amount has more decimals than {invoice.currency} allows")
    if value > invoice.amount_due:
        raise ValidationFailed(
            f"amount {value} exceeds the amount due {invoice.amount_due}",
            code="exceeds_amount_due",
        )
    payment = PaymentRow(
        id=new_id("pay"),
        tenant_id=tenant_id,
        invoice_id=invoice.id,
        amount=value,
        currency=invoice.currency,
        reference=reference,
        provider=provider,
        created_at=now,
    )
    session.add(payment)
    invoice.amount_paid = invoice.amount_paid + value
    recompute_totals(invoice)
    events.record(session, tenant_id, "payment.succeeded", payment.id, payment_data(payment), now)
    settle_if_covered(session, tenant_id, invoice, now)
    return payment


def payment_data(payment: PaymentRow) -> dict[str, object]:
    """A payment as `GET /payments/{id}` shows it (the `data` of its events)."""
    currency = payment.currency or ""
    return {
        "id": payment.id,
        "invoiceId": payment.invoice_id,
        "amount": format_money(payment.amount, currency) if currency else str(payment.amount),
        "currency": payment.currency,
        "reference": payment.reference,
        "provider": payment.provider,
        "createdAt": payment.created_at.isoformat().replace("+00:00", "Z"),
    }


def get_payment(session: Session, tenant_id: str, payment_id: str) -> PaymentRow:
    row = session.execute(
        select(PaymentRow).where(PaymentRow.id == payment_id, PaymentRow.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"payment {payment_id!r} not found")
    return row


def list_payments(
    session: Session,
    tenant_id: str,
    *,
    invoice_id: str | None = None,
    customer_external_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[PaymentRow]:
    """The tenant's payments (of one invoice, of one customer), newest first."""
    query = select(PaymentRow).where(PaymentRow.tenant_id == tenant_id)
    if invoice_id is not None:
        query = query.where(PaymentRow.invoice_id == invoice_id)
    if customer_external_id is not None:
        query = (
            query.join(InvoiceRow, InvoiceRow.id == PaymentRow.invoice_id)
            .join(CustomerRow, CustomerRow.id == InvoiceRow.customer_id)
            .where(CustomerRow.external_id == customer_external_id)
        )
    return keyset_page(session, query, PaymentRow, limit, cursor)


def mark_overdue(session: Session, tenant_id: str, invoice: InvoiceRow, now: datetime) -> None:
    """OPEN → OVERDUE (the scheduler, once `dueAt` has passed)."""
    _transition(session, tenant_id, invoice, "OVERDUE", now)


def mark_uncollectible(
    session: Session, tenant_id: str, invoice: InvoiceRow, now: datetime
) -> None:
    """OVERDUE → UNCOLLECTIBLE (the scheduler, after the dunning schedule)."""
    _transition(session, tenant_id, invoice, "UNCOLLECTIBLE", now)


def settle_if_covered(session: Session, tenant_id: str, invoice: InvoiceRow, now: datetime) -> None:
    if invoice.status in ("OPEN", "OVERDUE") and invoice.amount_due <= ZERO:
        _transition(session, tenant_id, invoice, "PAID", now)


def recompute_totals(invoice: InvoiceRow) -> None:
    """Store the totals of the invoice's lines (`rating.totals`, the rule Settle uses),
    with the wallet credits it holds (capped at the total) and its payments."""
    result = totals(invoice.lines, credits=invoice.credit_total, paid=invoice.amount_paid)
    invoice.subtotal = result.subtotal
    invoice.discount_total = result.discount_total
    invoice.tax_total = result.tax_total
    invoice.total = result.total
    invoice.credit_total = result.credit_total
    invoice.amount_due = result.amount_due


def override_tax(
    session: Session, tenant_id: str, invoice_id: str, spec: TaxOverrideSpec
) -> InvoiceRow:
    """A manual tax override on a DRAFT: per line (`lines: [{id, taxAmount}]`) and/or a
    new invoice tax total (`taxTotal`), the difference shown as a TAX_ADJUSTMENT line."""
    from invoicing.models import InvoiceLineRow

    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    if invoice.status != "DRAFT":
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; taxes can be overridden only on a DRAFT",
            code="illegal_transition",
        )

    def money(value: object, what: str) -> Decimal:
        number = to_decimal(value, what=what)
        if number != round_money(number, invoice.currency):
            raise ValidationFailed(f"{what} has more decimals than {invoice.currency} allows")
        return number

    by_id = {ln.id: ln for ln in invoice.lines}
    for index, entry in enumerate(spec.lines):
        line = by_id.get(entry.line_id)
        if line is None or line.type in ("DISCOUNT", "CREDIT", "TAX_ADJUSTMENT"):
            raise ValidationFailed(f"lines[{index}].id is not a taxable line of this invoice")
        line.tax_amount = money(entry.tax_amount, f"lines[{index}].taxAmount")
    invoice.lines = [ln for ln in invoice.lines if ln.type != "TAX_ADJUSTMENT"]
    if spec.tax_total is not None:
        target = money(spec.tax_total, "taxTotal")
        current = totals(invoice.lines).tax_total
        if target != current:
            invoice.lines.append(
                InvoiceLineRow(
                    id=new_id("il"),
                    position=len(invoice.lines),
                    type="TAX_ADJUSTMENT",
                    description=spec.reason or "Manual tax adjustment",
                    quantity=Decimal(1),
                    unit_amount=ZERO,
                    amount=ZERO,
                    discount_amount=ZERO,
                    tax_rate=ZERO,
                    tax_amount=target - current,
                    group={},
                )
            )
    paid_by_wallets = invoice.credit_total
    recompute_totals(invoice)
    if invoice.credit_total < paid_by_wallets:
        # The total went below what wallets paid: give the difference back to them, or
        # the credits would leave the wallets without paying anything (bug fix).
        from invoicing.wallets import refund_excess

        refund_excess(session, tenant_id, invoice.id, paid_by_wallets - invoice.credit_total)
    return invoice


def finalize_all(
    session: Session, tenant_id: str, due_days: int, now: datetime
) -> list[InvoiceRow]:
    """Finalize every DRAFT whose customer grace period (days after period end) is over
    (one-off invoices excepted: they are finalized explicitly)."""
    drafts = (
        session.execute(
            select(InvoiceRow)
            .where(
                InvoiceRow.tenant_id == tenant_id,
                InvoiceRow.status == "DRAFT",
                # One-off invoices wait for their explicit finalize (docs/one-off-invoices.md).
                InvoiceRow.type != "one_off",
            )
            .order_by(InvoiceRow.period_end, InvoiceRow.created_at, InvoiceRow.id)
        )
        .unique()
        .scalars()
        .all()
    )
    done = []
    for draft in drafts:
        if draft.period_end + timedelta(days=draft.customer.invoice_grace_days) > now:
            continue
        done.append(finalize(session, tenant_id, draft.id, due_days, now))
    return done


def regenerate(session: Session, tenant_id: str, invoice_id: str, now: datetime) -> InvoiceRow:
    """A new DRAFT from a VOID invoice: the same customer, subscription, period and
    lines (without the credits it held), the next revision of its period; refresh and
    adjust it, then finalize it under a new number. Once per voided invoice."""
    from invoicing.models import InvoiceLineRow

    source = get_invoice(session, tenant_id, invoice_id, lock=True)
    if source.status != "VOID":
        raise Conflict(
            f"invoice {source.id} is {source.status}; only a VOID invoice can be regenerated",
            code="illegal_transition",
            details={"status": source.status},
        )
    taken = session.execute(
        select(InvoiceRow.id).where(
            InvoiceRow.tenant_id == tenant_id, InvoiceRow.regenerated_from == source.id
        )
    ).scalar_one_or_none()
    if taken is not None:
        raise Conflict(
            f"invoice {source.id} was already regenerated as {taken}",
            code="already_regenerated",
            details={"invoiceId": taken},
        )
    revision = session.execute(
        select(func.max(InvoiceRow.revision)).where(
            InvoiceRow.tenant_id == tenant_id,
            InvoiceRow.subscription_id == source.subscription_id,
            InvoiceRow.period_start == source.period_start,
            InvoiceRow.period_end == source.period_end,
        )
    ).scalar()
    invoice = InvoiceRow(
        id=new_id("inv"),
        tenant_id=tenant_id,
        customer_id=source.customer_id,
        subscription_id=source.subscription_id,
        bill_run_id=source.bill_run_id,
        status="DRAFT",
        currency=source.currency,
        period_start=source.period_start,
        period_end=source.period_end,
        type=source.type,
        revision=int(revision or 0) + 1,
        regenerated_from=source.id,
        credit_total=ZERO,
        amount_paid=ZERO,
        created_at=now,
        updated_at=now,
    )
    kept = [ln for ln in source.lines if ln.type != "CREDIT"]
    invoice.lines = [
        InvoiceLineRow(
            id=new_id("il"),
            position=position,
            type=ln.type,
            description=ln.description,
            metric=ln.metric,
            group=dict(ln.group or {}),
            charge_id=ln.charge_id,
            quantity=ln.quantity,
            unit_amount=ln.unit_amount,
            amount=ln.amount,
            discount_amount=ln.discount_amount,
            tax_rate=ln.tax_rate,
            tax_amount=ln.tax_amount,
            period_start=ln.period_start,
            period_end=ln.period_end,
            prior_invoice_id=ln.prior_invoice_id,
            late_through=ln.late_through,
        )
        for position, ln in enumerate(kept)
    ]
    recompute_totals(invoice)
    session.add(invoice)
    copy_onto(session, invoice)
    session.flush()
    events.record(
        session, tenant_id, "invoice.created", invoice.id, events.invoice_data(invoice), now
    )
    return invoice

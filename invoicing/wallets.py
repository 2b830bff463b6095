"""Wallets: prepaid credits, their top-ups and the deductions that invoices make.

Amounts are kept in the wallet's currency, exact to its minor unit; a credit is worth
`rate_amount` of it, so a top-up of c credits adds round_half_up(c × rate) (docs/wallets.md).
Granted credits are usable at once; paid credits wait, `pending`, for their `credit`
invoice to be paid. Deductions consume the settled top-ups oldest first; each records
which top-ups funded it, so the ledger shows where every credit went, both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing import events
from invoicing.catalog import get_customer, non_negative
from invoicing.custom_sections import copy_onto
from invoicing.models import (
    CustomerRow,
    InvoiceLineRow,
    InvoiceRow,
    WalletRow,
    WalletTransactionRow,
    new_id,
)
from invoicing.pages import Page, whole
from invoicing.specs import WalletPatch, WalletSpec
from rating.context import WalletBalance, WalletDebit
from rating.model import LineType
from rating.money import ZERO, format_decimal, round_money

FEE_TYPES = {t.value for t in LineType}
INBOUND = ("top_up", "refund")
OUTBOUND = ("deduction", "forfeit", "expiry")
CREDIT_INVOICE = "credit"
MAX_RATE_DECIMALS = 12


def credit_value(credits: Decimal, rate: Decimal, currency: str) -> Decimal:
    """What `credits` are worth in the currency: credits × rate, rounded once, half up."""
    return round_money(credits * rate, currency)


def credits_of(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """An amount of the wallet's currency in credits, to the currency's decimals (display)."""
    return round_money(amount / rate, currency)


def _credits(value: Decimal, currency: str, what: str) -> Decimal:
    checked = non_negative(value, what) or ZERO
    if checked != round_money(checked, currency):
        raise ValidationFailed(f"{what} has more decimals than {currency} allows")
    return checked


def _rate(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValidationFailed("rateAmount must be positive")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_RATE_DECIMALS:
        raise ValidationFailed(f"rateAmount has more than {MAX_RATE_DECIMALS} decimals")
    return value


def _fee_types(values: Sequence[str]) -> list[str]:
    fee_types = [t.upper() for t in values]
    if unknown := [t for t in fee_types if t not in FEE_TYPES]:
        raise ValidationFailed(f"scope.feeTypes: unknown {unknown}; use {sorted(FEE_TYPES)}")
    return fee_types


def _priority(value: int) -> int:
    if not 1 <= value <= 100:
        raise ValidationFailed("priority must be an integer from 1 (first) to 100")
    return value


def create_wallet(
    session: Session,
    tenant_id: str,
    spec: WalletSpec,
    *,
    now: datetime | None = None,
    due_days: int = 30,
) -> WalletRow:
    """Open a wallet in the customer's currency, funded with its initial credits
    (`credits` and `grantedCredits` granted, `paidCredits` invoiced)."""
    from invoicing.wallet_rules import rules_json

    customer = get_customer(session, tenant_id, spec.customer_id)
    currency = (spec.currency or customer.currency).upper()
    if currency != customer.currency:
        raise ValidationFailed(f"the wallet must be in the customer's currency {customer.currency}")
    rate = _rate(spec.rate_amount)
    granted = _credits(spec.credits, currency, "credits") + _credits(
        spec.granted_credits, currency, "grantedCredits"
    )
    paid = _credits(spec.paid_credits, currency, "paidCredits")
    wallet = WalletRow(
        id=new_id("wal"),
        tenant_id=tenant_id,
        customer_id=customer.id,
        name=spec.name,
        currency=currency,
        balance=ZERO,
        priority=_priority(spec.priority),
        expires_at=spec.expires_at,
        scope_metrics=list(spec.scope_metrics),
        scope_fee_types=_fee_types(spec.scope_fee_types),
        status="active",
        rate_amount=rate,
        recurring_rules=rules_json(spec.rules, currency, now),
    )
    if now is not None:
        wallet.created_at = now
    session.add(wallet)
    session.flush()
    if granted > 0 or paid > 0:
        fund(session, tenant_id, wallet.id, paid=paid, granted=granted, now=now, due_days=due_days)
    return wallet


def update_wallet(
    session: Session, tenant_id: str, wallet_id: str, patch: WalletPatch, now: datetime
) -> WalletRow:
    """Change an active wallet's name, priority, expiry, scope or rules (409 otherwise)."""
    from invoicing.wallet_rules import rules_json

    wallet = get_wallet(session, tenant_id, wallet_id, lock=True)
    if wallet.status != "active":
        raise Conflict(f"wallet {wallet_id} is {wallet.status}", code="illegal_transition")
    if "name" in patch.sent:
        wallet.name = patch.name
    if patch.priority is not None:
        wallet.priority = _priority(patch.priority)
    if "expires_at" in patch.sent:
        if patch.expires_at is not None and patch.expires_at <= now:
            raise ValidationFailed("expiresAt must be in the future (terminate to end it now)")
        wallet.expires_at = patch.expires_at
    if patch.scope_metrics is not None:
        wallet.scope_metrics = list(patch.scope_metrics)
    if patch.scope_fee_types is not None:
        wallet.scope_fee_types = _fee_types(patch.scope_fee_types)
    if patch.rules is not None:
        wallet.recurring_rules = rules_json(patch.rules, wallet.currency, now)
    session.flush()
    return wallet


def list_wallets(
    session: Session, tenant_id: str, customer_external_id: str | None = None
) -> Page[WalletRow]:
    """The tenant's wallets (of one customer, if given), newest first (one page)."""
    query = select(WalletRow).where(WalletRow.tenant_id == tenant_id)
    if customer_external_id is not None:
        customer = get_customer(session, tenant_id, customer_external_id)
        query = query.where(WalletRow.customer_id == customer.id)
    return whole(list(session.execute(query.order_by(WalletRow.created_at.desc())).scalars()))


def get_wallet(
    session: Session, tenant_id: str, wallet_id: str, *, lock: bool = False
) -> WalletRow:
    """The tenant's wallet of that id (row-locked with `lock`), or NotFound."""
    query = select(WalletRow).where(WalletRow.id == wallet_id, WalletRow.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"wallet {wallet_id!r} not found")
    return row


def fund(
    session: Session,
    tenant_id: str,
    wallet_id: str,
    *,
    paid: Decimal = ZERO,
    granted: Decimal = ZERO,
    now: datetime | None,
    due_days: int = 30,
    source: str = "manual",
) -> list[WalletTransactionRow]:
    """Top up an active wallet: granted credits settle at once; paid credits are a
    pending top-up and a finalized `credit` invoice, settled when that is paid."""
    wallet = get_wallet(session, tenant_id, wallet_id, lock=True)
    if wallet.status != "active":
        raise Conflict(f"wallet {wallet_id} is {wallet.status}", code="illegal_transition")
    paid = _credits(paid, wallet.currency, "paidCredits")
    granted = _credits(granted, wallet.currency, "grantedCredits")
    if paid <= 0 and granted <= 0:
        raise ValidationFailed("a top-up needs paidCredits or grantedCredits above 0")
    made = []
    for grant, credits in (("granted", granted), ("paid", paid)):
        if credits <= 0:
            continue
        amount = credit_value(credits, wallet.rate_amount, wallet.currency)
        if amount <= 0:
            raise ValidationFailed(
                f"{credits} credits at {format_decimal(wallet.rate_amount)} are worth less "
                f"than the smallest amount of {wallet.currency}"
            )
        row = WalletTransactionRow(
            id=new_id("wtx"),
            tenant_id=tenant_id,
            wallet_id=wallet.id,
            kind="top_up",
            amount=amount,
            remaining=amount if grant == "granted" else ZERO,
            funding=[],
            status="settled" if grant == "granted" else "pending",
            grant=grant,
            credits=credits,
            source=source,
        )
        if now is not None:
            row.created_at = now
        if grant == "granted":
            wallet.balance = wallet.balance + amount
        else:
            if now is None:
                raise ValueError("a paid top-up needs the time of its invoice")
            row.invoice_id = _credit_invoice(session, tenant_id, wallet, credits, amount, now).id
        session.add(row)
        made.append(row)
    session.flush()
    for row in made:
        if row.grant == "paid" and row.invoice_id is not None:
            _finalize_credit_invoice(session, tenant_id, row.invoice_id, due_days, now)
    return made


def _credit_invoice(
    session: Session,
    tenant_id: str,
    wallet: WalletRow,
    credits: Decimal,
    amount: Decimal,
    now: datetime,
) -> InvoiceRow:
    # Buying credits is not taxed here: tax applies when the credits pay for fees.
    invoice = InvoiceRow(
        id=new_id("inv"),
        tenant_id=tenant_id,
        customer_id=wallet.customer_id,
        subscription_id=None,
        bill_run_id=None,
        number=None,
        status="DRAFT",
        type=CREDIT_INVOICE,
        currency=wallet.currency,
        period_start=now,
        period_end=now,
        subtotal=amount,
        discount_total=ZERO,
        tax_total=ZERO,
        credit_total=ZERO,
        total=amount,
        amount_paid=ZERO,
        amount_due=amount,
        created_at=now,
        updated_at=now,
    )
    invoice.lines.append(
        InvoiceLineRow(
            id=new_id("il"),
            position=0,
            type=LineType.CHARGE.value,
            description=f"Prepaid credits: wallet {wallet.name or wallet.id}",
            metric=None,
            group={},
            charge_id=None,
            quantity=credits,
            unit_amount=wallet.rate_amount,
            amount=amount,
            discount_amount=ZERO,
            tax_rate=ZERO,
            tax_amount=ZERO,
            period_start=now,
            period_end=now,
        )
    )
    session.add(invoice)
    copy_onto(session, invoice)
    session.flush()
    return invoice


def _finalize_credit_invoice(
    session: Session, tenant_id: str, invoice_id: str, due_days: int, now: datetime | None
) -> None:
    from invoicing import invoices

    assert now is not None
    invoice = invoices.get_invoice(session, tenant_id, invoice_id)
    events.record(
        session, tenant_id, "invoice.created", invoice.id, events.invoice_data(invoice), now
    )
    invoices.finalize(session, tenant_id, invoice_id, due_days, now)


def _pending_of(session: Session, invoice: InvoiceRow) -> list[WalletTransactionRow]:
    return list(
        session.execute(
            select(WalletTransactionRow).where(
                WalletTransactionRow.tenant_id == invoice.tenant_id,
                WalletTransactionRow.invoice_id == invoice.id,
                WalletTransactionRow.kind == "top_up",
                WalletTransactionRow.status == "pending",
            )
        ).scalars()
    )


def invoice_paid(session: Session, tenant_id: str, invoice: InvoiceRow, now: datetime) -> None:
    """A `credit` invoice is PAID: its pending top-up settles and its credits are usable
    (forfeited at once if the wallet ended meanwhile)."""
    from invoicing.wallet_rules import after_balance_change

    for row in _pending_of(session, invoice):
        wallet = get_wallet(session, tenant_id, row.wallet_id, lock=True)
        row.status = "settled"
        if wallet.status != "active":
            continue  # nothing to add to a closed wallet: the money stays paid, see docs
        row.remaining = row.amount
        wallet.balance = wallet.balance + row.amount
        session.flush()
        after_balance_change(session, tenant_id, [wallet.id], now)


def invoice_voided(session: Session, invoice: InvoiceRow) -> None:
    """A `credit` invoice is VOID: its pending top-up is cancelled, no credits come."""
    for row in _pending_of(session, invoice):
        row.status = "cancelled"


def close_wallet(
    session: Session, tenant_id: str, wallet_id: str, now: datetime, *, reason: str = "forfeit"
) -> WalletRow:
    """End an active wallet: the balance is forfeited as one outbound transaction (kind
    `forfeit` when terminated, `expiry` when it expired) funded by what was left of its
    top-ups, pending paid top-ups are cancelled and their open invoices voided."""
    from invoicing import invoices

    wallet = get_wallet(session, tenant_id, wallet_id, lock=True)
    if wallet.status != "active":
        raise Conflict(f"wallet {wallet_id} is {wallet.status}", code="illegal_transition")
    if wallet.balance > 0:
        sources = session.execute(
            select(WalletTransactionRow)
            .where(
                WalletTransactionRow.wallet_id == wallet.id,
                WalletTransactionRow.kind.in_(INBOUND),
                WalletTransactionRow.remaining > 0,
            )
            .order_by(WalletTransactionRow.created_at, WalletTransactionRow.id)
        ).scalars()
        funding = []
        for source in sources:
            funding.append({"transactionId": source.id, "amount": format(source.remaining, "f")})
            source.remaining = ZERO
        session.add(
            WalletTransactionRow(
                id=new_id("wtx"),
                tenant_id=tenant_id,
                wallet_id=wallet.id,
                kind=reason,
                amount=wallet.balance,
                remaining=ZERO,
                funding=funding,
                created_at=now,
                status="settled",
                credits=credits_of(wallet.balance, wallet.rate_amount, wallet.currency),
            )
        )
        wallet.balance = ZERO
    pending = session.execute(
        select(WalletTransactionRow).where(
            WalletTransactionRow.wallet_id == wallet.id,
            WalletTransactionRow.status == "pending",
        )
    ).scalars()
    for row in list(pending):
        row.status = "cancelled"
        if row.invoice_id is not None:
            invoice = invoices.get_invoice(session, tenant_id, row.invoice_id)
            if invoice.status in ("OPEN", "OVERDUE"):
                invoices.void(session, tenant_id, invoice.id, now)
    wallet.status = "terminated" if reason == "forfeit" else "expired"
    wallet.terminated_at = now
    session.flush()
    return wallet


def expire_due(session: Session, now: datetime) -> int:
    """Close every active wallet (of every tenant) whose expiresAt has come: its credits
    are forfeited as an `expiry` transaction. Idempotent: an expired wallet is not active."""
    due = session.execute(
        select(WalletRow.tenant_id, WalletRow.id)
        .where(
            WalletRow.status == "active",
            WalletRow.expires_at.is_not(None),
            WalletRow.expires_at <= now,
        )
        .order_by(WalletRow.id)
    ).all()
    for tenant_id, wallet_id in due:
        close_wallet(session, tenant_id, wallet_id, now, reason="expiry")
    return len(due)


def wallet_data(wallet: WalletRow, customer_external_id: str) -> dict[str, object]:
    """A wallet's fields for a domain event (the money fields as GET shows them)."""
    return {
        "id": wallet.id,
        "customerId": customer_external_id,
        "currency": wallet.currency,
        "balance": format(round_money(wallet.balance, wallet.currency), "f"),
        "credits": format(credits_of(wallet.balance, wallet.rate_amount, wallet.currency), "f"),
        "status": wallet.status,
    }


def record_depleted(
    session: Session, tenant_id: str, wallet_ids: Sequence[str], now: datetime
) -> int:
    """`wallet.depleted` for each of these wallets whose balance is now 0 (the caller
    debited them: they held credits before), in the caller's transaction."""
    rows = session.execute(
        select(WalletRow, CustomerRow.external_id)
        .join(CustomerRow, CustomerRow.id == WalletRow.customer_id)
        .where(
            WalletRow.tenant_id == tenant_id,
            WalletRow.id.in_(sorted(wallet_ids)),
        )
        .execution_options(populate_existing=True)
    ).all()
    # Compared here: SQLite keeps money as text, where `balance <= 0` is never true.
    empty = [(wallet, external_id) for wallet, external_id in rows if wallet.balance <= 0]
    for wallet, external_id in empty:
        events.record(
            session, tenant_id, "wallet.depleted", wallet.id, wallet_data(wallet, external_id), now
        )
    return len(empty)


def get_transaction(session: Session, tenant_id: str, transaction_id: str) -> WalletTransactionRow:
    """The tenant's wallet transaction of that id, or NotFound."""
    row = session.execute(
        select(WalletTransactionRow).where(
            WalletTransactionRow.id == transaction_id,
            WalletTransactionRow.tenant_id == tenant_id,
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"wallet transaction {transaction_id!r} not found")
    return row


def consumers(session: Session, wallet_id: str) -> dict[str, list[tuple[str, Decimal]]]:
    """Per inbound transaction of the wallet: the outbound ones it funded and how much
    each took (the other way of `funding`)."""
    out: dict[str, list[tuple[str, Decimal]]] = {}
    rows = session.execute(
        select(WalletTransactionRow.id, WalletTransactionRow.funding)
        .where(
            WalletTransactionRow.wallet_id == wallet_id,
            WalletTransactionRow.kind.in_(OUTBOUND),
        )
        .order_by(WalletTransactionRow.created_at, WalletTransactionRow.id)
    )
    for outbound_id, funding in rows:
        for part in funding or []:
            out.setdefault(part["transactionId"], []).append((outbound_id, Decimal(part["amount"])))
    return out


def list_transactions(
    session: Session,
    tenant_id: str,
    wallet_id: str,
    *,
    direction: str | None = None,
    status: str | None = None,
) -> list[WalletTransactionRow]:
    """A wallet's ledger, oldest first, optionally only inbound/outbound or of a status."""
    get_wallet(session, tenant_id, wallet_id)
    query = select(WalletTransactionRow).where(WalletTransactionRow.wallet_id == wallet_id)
    if direction is not None:
        kinds = {"inbound": INBOUND, "outbound": OUTBOUND}.get(direction)
        if kinds is None:
            raise ValidationFailed("type must be inbound or outbound")
        query = query.where(WalletTransactionRow.kind.in_(kinds))
    if status is not None:
        if status not in ("pending", "settled", "cancelled"):
            raise ValidationFailed("status must be pending, settled or cancelled")
        query = query.where(WalletTransactionRow.status == status)
    return list(
        session.execute(
            query.order_by(WalletTransactionRow.created_at, WalletTransactionRow.id)
        ).scalars()
    )


def transactions(session: Session, tenant_id: str, wallet_id: str) -> list[WalletTransactionRow]:
    """A wallet's ledger, oldest first."""
    get_wallet(session, tenant_id, wallet_id)
    return list(
        session.execute(
            select(WalletTransactionRow)
            .where(WalletTransactionRow.wallet_id == wallet_id)
            .order_by(WalletTransactionRow.created_at, WalletTransactionRow.id)
        ).scalars()
    )


def wallets_by_customer(session: Session, tenant_id: str) -> dict[str, list[WalletRow]]:
    rows = session.execute(
        select(WalletRow).where(
            WalletRow.tenant_id == tenant_id, WalletRow.status == "active", WalletRow.balance > 0
        )
    ).scalars()
    result: dict[str, list[WalletRow]] = {}
    for row in rows:
        result.setdefault(row.customer_id, []).append(row)
    return result


def wallet_domain(row: WalletRow) -> WalletBalance:
    return WalletBalance(
        id=row.id,
        priority=row.priority,
        balance=row.balance,
        expires_at=row.expires_at,
        metric_codes=tuple(row.scope_metrics or ()),
        fee_types=tuple(row.scope_fee_types or ()),
    )


def deduct(
    session: Session, tenant_id: str, invoice_id: str, debits: Sequence[WalletDebit]
) -> None:
    """Debit wallets for an invoice, funding each deduction from top-ups oldest first."""
    for debit in debits:
        wallet = get_wallet(session, tenant_id, debit.wallet_id, lock=True)
        if debit.amount > wallet.balance:
            raise Conflict(f"wallet {wallet.id} no longer holds {debit.amount}")
        left = debit.amount
        funding = []
        top_ups = session.execute(
            select(WalletTransactionRow)
            .where(
                WalletTransactionRow.wallet_id == wallet.id,
                WalletTransactionRow.kind.in_(("top_up", "refund")),
                WalletTransactionRow.remaining > 0,
            )
            .order_by(WalletTransactionRow.created_at, WalletTransactionRow.id)
        ).scalars()
        for source in top_ups:
            if left <= 0:
                break
            take = min(left, source.remaining)
            source.remaining = source.remaining - take
            left -= take
            funding.append({"transactionId": source.id, "amount": format(take, "f")})
        wallet.balance = wallet.balance - debit.amount
        session.add(
            WalletTransactionRow(
                id=new_id("wtx"),
                tenant_id=tenant_id,
                wallet_id=wallet.id,
                kind="deduction",
                amount=debit.amount,
                remaining=ZERO,
                invoice_id=invoice_id,
                funding=funding,
            )
        )


def refund_invoice(session: Session, tenant_id: str, invoice_id: str) -> None:
    """Undo an invoice's deductions: the top-ups that funded them get their credits back."""
    deductions = (
        session.execute(
            select(WalletTransactionRow).where(
                WalletTransactionRow.invoice_id == invoice_id,
                WalletTransactionRow.kind == "deduction",
            )
        )
        .scalars()
        .all()
    )
    for deduction in deductions:
        wallet = get_wallet(session, tenant_id, deduction.wallet_id, lock=True)
        for part in deduction.funding or []:
            source = session.get(WalletTransactionRow, part["transactionId"])
            if source is not None:
                source.remaining = source.remaining + Decimal(part["amount"])
        wallet.balance = wallet.balance + deduction.amount
        session.delete(deduction)


def refund_excess(session: Session, tenant_id: str, invoice_id: str, excess: Decimal) -> None:
    """Give back `excess` of what wallets paid for an invoice whose total went down (a
    manual tax override on a draft): the latest deductions shrink first, and each gives
    its credits back to the top-ups that funded it, latest first."""
    left = excess
    deductions = session.execute(
        select(WalletTransactionRow)
        .where(
            WalletTransactionRow.invoice_id == invoice_id,
            WalletTransactionRow.kind == "deduction",
        )
        .order_by(WalletTransactionRow.created_at.desc(), WalletTransactionRow.id.desc())
    ).scalars()
    for deduction in list(deductions):
        if left <= 0:
            break
        back = min(left, deduction.amount)
        left -= back
        wallet = get_wallet(session, tenant_id, deduction.wallet_id, lock=True)
        wallet.balance = wallet.balance + back
        funding = [dict(part) for part in deduction.funding or []]
        rest = back
        for part in reversed(funding):
            if rest <= 0:
                break
            give = min(rest, Decimal(part["amount"]))
            rest -= give
            source = session.get(WalletTransactionRow, part["transactionId"])
            if source is not None:
                source.remaining = source.remaining + give
            part["amount"] = format(Decimal(part["amount"]) - give, "f")
        deduction.funding = [p for p in funding if Decimal(p["amount"]) > 0]
        deduction.amount = deduction.amount - back
        if deduction.amount <= 0:
            session.delete(deduction)


def customer_row_id(session: Session, tenant_id: str, external_id: str) -> str:
    row = session.execute(
        select(CustomerRow.id).where(
            CustomerRow.tenant_id == tenant_id,
            CustomerRow.external_id == external_id,
            CustomerRow.deleted_at.is_(None),
        )
    ).first()
    if row is None:
        raise NotFound(f"customer {external_id!r} not found")
    return str(row[0])

"""Wallets: prepaid credits, their top-ups and the deductions that invoices make.

Deductions consume the wallet's top-ups oldest first; each deduction records which
top-ups funded it, so the ledger shows where every credit went.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing.catalog import get_customer, non_negative
from invoicing.models import CustomerRow, WalletRow, WalletTransactionRow, new_id
from invoicing.pages import Page, whole
from invoicing.specs import WalletSpec
from rating.context import WalletBalance, WalletDebit
from rating.model import LineType
from rating.money import ZERO, round_money

FEE_TYPES = {t.value for t in LineType}


def create_wallet(session: Session, tenant_id: str, spec: WalletSpec) -> WalletRow:
    """Open a wallet in the customer's currency, topped up with its initial credits."""
    customer = get_customer(session, tenant_id, spec.customer_id)
    currency = (spec.currency or customer.currency).upper()
    if currency != customer.currency:
        raise ValidationFailed(f"the wallet must be in the customer's currency {customer.currency}")
    credits = non_negative(spec.credits, "credits") or ZERO
    if credits != round_money(credits, currency):
        raise ValidationFailed(f"credits has more decimals than {currency} allows")
    if not 1 <= spec.priority <= 100:
        raise ValidationFailed("priority must be an integer from 1 (first) to 100")
    fee_types = [t.upper() for t in spec.scope_fee_types]
    if unknown := [t for t in fee_types if t not in FEE_TYPES]:
        raise ValidationFailed(f"scope.feeTypes: unknown {unknown}; use {sorted(FEE_TYPES)}")
    wallet = WalletRow(
        id=new_id("wal"),
        tenant_id=tenant_id,
        customer_id=customer.id,
        name=spec.name,
        currency=currency,
        balance=ZERO,
        priority=spec.priority,
        expires_at=spec.expires_at,
        scope_metrics=list(spec.scope_metrics),
        scope_fee_types=fee_types,
        status="active",
    )
    session.add(wallet)
    session.flush()
    if credits > 0:
        top_up(session, tenant_id, wallet.id, credits)
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
        query = query.with_for_update()
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound(f"wallet {wallet_id!r} not found")
    return row


def top_up(
    session: Session, tenant_id: str, wallet_id: str, credits: Decimal
) -> WalletTransactionRow:
    """Add credits to an active wallet, as a top-up that later deductions draw on."""
    wallet = get_wallet(session, tenant_id, wallet_id, lock=True)
    if wallet.status != "active":
        raise Conflict(f"wallet {wallet_id} is {wallet.status}", code="illegal_transition")
    if credits <= 0:
        raise ValidationFailed("credits must be positive")
    if credits != round_money(credits, wallet.currency):
        raise ValidationFailed(f"credits has more decimals than {wallet.currency} allows")
    row = WalletTransactionRow(
        id=new_id("wtx"),
        tenant_id=tenant_id,
        wallet_id=wallet.id,
        kind="top_up",
        amount=credits,
        remaining=credits,
        funding=[],
    )
    wallet.balance = wallet.balance + credits
    session.add(row)
    session.flush()
    return row


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
            CustomerRow.tenant_id == tenant_id, CustomerRow.external_id == external_id
        )
    ).first()
    if row is None:
        raise NotFound(f"customer {external_id!r} not found")
    return str(row[0])

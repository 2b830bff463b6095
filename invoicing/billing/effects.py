"""What invoices do to the ledger besides their rows: coupon uses, wallet debits and
rollover buckets, written in the transaction of the invoices they belong to.

`apply_effects` writes the effects of many invoices at once (a few statements per
kind for a whole batch); `revert_effects` gives back what one invoice took (before a
draft is re-rated). The rules are those of `invoicing.coupons` and `invoicing.wallets`:
a deduction is funded by the wallet's top-ups oldest first, and a coupon's use changes
what is left of it by its frequency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from core.errors import Conflict
from invoicing.alerts import record_wallet_triggers
from invoicing.billing.contexts import CouponBalance, batches
from invoicing.coupons import revert_uses
from invoicing.models import (
    AppliedCouponRow,
    CouponRow,
    CouponUsageRow,
    RolloverBucketRow,
    WalletRow,
    WalletTransactionRow,
    new_id,
)
from invoicing.wallet_rules import after_balance_change
from invoicing.wallets import record_depleted, refund_invoice
from rating.money import ZERO
from rating.pipeline import RatingResult


@dataclass(frozen=True)
class Settled:
    """A written invoice and the rating result whose effects it carries."""

    invoice_id: str
    subscription_id: str
    result: RatingResult


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def apply_effects(
    session: Session, tenant_id: str, settled: Sequence[Settled], now: datetime
) -> None:
    """Record the coupon uses, wallet debits and rollover of the invoices, in order.

    Raises Conflict when the ledger no longer holds what an invoice was rated with (a
    coupon removed meanwhile, a wallet emptied): the caller's transaction rolls back."""
    _record_coupon_uses(session, tenant_id, settled, now)
    _deduct_wallets(session, tenant_id, settled, now)
    _store_rollover(session, tenant_id, settled)


def _record_coupon_uses(
    session: Session, tenant_id: str, settled: Sequence[Settled], now: datetime
) -> None:
    uses = [(s.invoice_id, use) for s in settled for use in s.result.coupon_uses]
    if not uses:
        return
    ids = sorted({use.coupon_id for _, use in uses})
    balances: dict[str, CouponBalance] = {}
    for chunk in batches(ids):
        query = (
            select(
                AppliedCouponRow.id,
                AppliedCouponRow.status,
                AppliedCouponRow.amount_remaining,
                AppliedCouponRow.periods_remaining,
                CouponRow.kind,
                func.coalesce(AppliedCouponRow.frequency, CouponRow.frequency),
            )
            .join(CouponRow, CouponRow.id == AppliedCouponRow.coupon_id)
            .where(AppliedCouponRow.id.in_(list(chunk)))
        )
        if _locks(session):
            query = query.with_for_update(of=AppliedCouponRow)
        for cid, status, amount, periods, kind, frequency in session.execute(query):
            balances[cid] = CouponBalance(kind, frequency, amount, periods, status == "active")
    usages = []
    for invoice_id, use in uses:
        balance = balances.get(use.coupon_id)
        if balance is None:
            continue
        if not balance.active:
            raise Conflict(f"applied coupon {use.coupon_id} is no longer active")
        usages.append(
            {
                "id": new_id("cuse"),
                "tenant_id": tenant_id,
                "applied_coupon_id": use.coupon_id,
                "invoice_id": invoice_id,
                "amount": use.amount,
                "created_at": now,
            }
        )
        balance.use(use.remaining)
    if not usages:
        return
    connection = session.connection()
    connection.execute(insert(_table(CouponUsageRow)), usages)
    applied = _table(AppliedCouponRow)
    used = {use.coupon_id for _, use in uses if use.coupon_id in balances}
    connection.execute(
        update(applied)
        .where(applied.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            amount_remaining=bindparam("b_amount"),
            periods_remaining=bindparam("b_periods"),
        ),
        [
            {
                "b_id": cid,
                "b_status": "active" if balances[cid].active else "terminated",
                "b_amount": balances[cid].amount_remaining,
                "b_periods": balances[cid].periods_remaining,
            }
            for cid in sorted(used)
        ],
    )


def _locks(session: Session) -> bool:
    """Whether rows read for an update are locked (PostgreSQL; SQLite serializes writers)."""
    return session.get_bind().dialect.name == "postgresql"


def _deduct_wallets(
    session: Session, tenant_id: str, settled: Sequence[Settled], now: datetime
) -> None:
    debits = [(s.invoice_id, d) for s in settled for d in s.result.wallet_debits]
    if not debits:
        return
    ids = sorted({d.wallet_id for _, d in debits})
    balances: dict[str, Decimal] = {}
    sources: dict[str, list[list[Any]]] = {}  # per wallet: [id, remaining, changed]
    for chunk in batches(ids):
        query = select(WalletRow.id, WalletRow.balance).where(
            WalletRow.tenant_id == tenant_id, WalletRow.id.in_(list(chunk))
        )
        if _locks(session):
            query = query.with_for_update()
        balances.update({wid: balance for wid, balance in session.execute(query)})
        for wallet_id, source_id, remaining in session.execute(
            select(
                WalletTransactionRow.wallet_id,
                WalletTransactionRow.id,
                WalletTransactionRow.remaining,
            )
            .where(
                WalletTransactionRow.wallet_id.in_(list(chunk)),
                WalletTransactionRow.kind.in_(("top_up", "refund")),
                WalletTransactionRow.remaining > 0,
            )
            .order_by(WalletTransactionRow.created_at, WalletTransactionRow.id)
        ):
            sources.setdefault(wallet_id, []).append([source_id, remaining, False])
    deductions = []
    for invoice_id, debit in debits:
        balance = balances.get(debit.wallet_id)
        if balance is None or debit.amount > balance:
            raise Conflict(f"wallet {debit.wallet_id} no longer holds {debit.amount}")
        left = debit.amount
        funding = []
        for source in sources.get(debit.wallet_id, ()):
            if left <= 0:
                break
            if source[1] <= 0:
                continue
            take = min(left, source[1])
            source[1] -= take
            source[2] = True
            left -= take
            funding.append({"transactionId": source[0], "amount": format(take, "f")})
        balances[debit.wallet_id] = balance - debit.amount
        deductions.append(
            {
                "id": new_id("wtx"),
                "tenant_id": tenant_id,
                "wallet_id": debit.wallet_id,
                "kind": "deduction",
                "amount": debit.amount,
                "remaining": ZERO,
                "invoice_id": invoice_id,
                "funding": funding,
                "created_at": now,
            }
        )
    connection = session.connection()
    transactions = _table(WalletTransactionRow)
    connection.execute(insert(transactions), deductions)
    funded = [
        {"b_id": s[0], "b_remaining": s[1]} for rows in sources.values() for s in rows if s[2]
    ]
    if funded:
        connection.execute(
            update(transactions)
            .where(transactions.c.id == bindparam("b_id"))
            .values(remaining=bindparam("b_remaining")),
            funded,
        )
    wallets = _table(WalletRow)
    connection.execute(
        update(wallets)
        .where(wallets.c.id == bindparam("b_id"))
        .values(balance=bindparam("b_balance")),
        [{"b_id": wid, "b_balance": balances[wid]} for wid in ids],
    )
    # Balances that fell: their wallet-balance alerts, in this transaction.
    record_wallet_triggers(session, tenant_id, {wid: balances[wid] for wid in ids}, now)
    # Emptied wallets say so, then their auto top-up rules: at or below a threshold,
    # one top-up.
    record_depleted(session, tenant_id, ids, now)
    after_balance_change(session, tenant_id, ids, now)


def _store_rollover(session: Session, tenant_id: str, settled: Sequence[Settled]) -> None:
    rolling = [s for s in settled if s.result.rollover_out]
    if not rolling:
        return
    buckets = _table(RolloverBucketRow)
    connection = session.connection()
    # In invoice order: a later invoice of the same subscription consumes what an
    # earlier one of the batch stored.
    for s in rolling:
        connection.execute(
            update(buckets)
            .where(buckets.c.subscription_id == s.subscription_id, buckets.c.consumed_by.is_(None))
            .values(consumed_by=s.invoice_id)
        )
        rows = [
            {
                "id": new_id("rob"),
                "tenant_id": tenant_id,
                "subscription_id": s.subscription_id,
                "charge_id": charge_id,
                "quantity": bucket.quantity,
                "expires_at": bucket.expires_at,
                "invoice_id": s.invoice_id,
                "consumed_by": None,
                "position": position,
            }
            for charge_id, out in s.result.rollover_out.items()
            for position, bucket in enumerate(out)
        ]
        if rows:
            connection.execute(insert(buckets), rows)


def revert_effects(session: Session, tenant_id: str, invoice_id: str) -> None:
    """Give back what an invoice took (coupons, wallets, rollover), e.g. before a refresh."""
    revert_uses(session, invoice_id)
    refund_invoice(session, tenant_id, invoice_id)
    session.flush()
    buckets = _table(RolloverBucketRow)
    session.execute(delete(buckets).where(buckets.c.invoice_id == invoice_id))
    session.execute(
        update(buckets).where(buckets.c.consumed_by == invoice_id).values(consumed_by=None)
    )

"""Coupons and the coupons applied to customers.

A coupon is `percentage` or `fixed`, used `once`, `recurring` for N invoices, or
`forever`, optionally scoped to plans or metrics. What an invoice takes is recorded
per invoice (`coupon_usages`), so refreshing a draft can give it back exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing.catalog import get_customer, insert_unique, non_negative
from invoicing.models import AppliedCouponRow, CouponRow, CouponUsageRow, new_id
from invoicing.pages import Page, whole
from invoicing.specs import AppliedCouponSpec, CouponSpec
from rating.context import AppliedCoupon, CouponUse
from rating.money import CURRENCIES, ZERO

KINDS = {"percentage": "percentage", "fixed": "fixed", "fixed_amount": "fixed"}
FREQUENCIES = {"once", "recurring", "forever"}


def create_coupon(session: Session, tenant_id: str, spec: CouponSpec) -> CouponRow:
    """Add a coupon; a code the tenant already has is a Conflict."""
    kind = KINDS.get(spec.kind)
    if kind is None:
        raise ValidationFailed("type must be 'percentage' or 'fixed'")
    if spec.frequency not in FREQUENCIES:
        raise ValidationFailed("frequency must be one of once, recurring, forever")
    duration = spec.frequency_duration
    if spec.frequency == "recurring":
        if duration is None or duration < 1:
            raise ValidationFailed("a recurring coupon needs frequencyDuration (invoices), >= 1")
    else:
        duration = None
    percentage = amount = None
    currency = None
    if kind == "percentage":
        percentage = spec.percentage
        if percentage is None:
            raise ValidationFailed("percentage is required")
        if not 0 < percentage <= 100:
            raise ValidationFailed("percentage must be greater than 0 and at most 100")
    else:
        amount = non_negative(spec.amount, "amount")
        if amount is None:
            raise ValidationFailed("amount is required")
        if not amount:
            raise ValidationFailed("a fixed coupon needs a positive amount")
        currency = (spec.currency or "").upper()
        if currency not in CURRENCIES:
            raise ValidationFailed("a fixed coupon needs its currency (ISO 4217)")
    row = CouponRow(
        id=new_id("cou"),
        tenant_id=tenant_id,
        code=spec.code,
        name=spec.name or spec.code,
        kind=kind,
        percentage=percentage,
        amount=amount,
        currency=currency,
        frequency=spec.frequency,
        frequency_duration=duration,
        plan_codes=list(spec.plan_codes),
        metric_codes=list(spec.metric_codes),
        expires_at=spec.expires_at,
    )
    insert_unique(session, row, f"a coupon with code {row.code!r} already exists")
    return row


def get_coupon(session: Session, tenant_id: str, code: str) -> CouponRow:
    """The tenant's coupon of that code, or NotFound."""
    row = session.execute(
        select(CouponRow).where(CouponRow.tenant_id == tenant_id, CouponRow.code == code)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"coupon {code!r} not found")
    return row


def list_coupons(session: Session, tenant_id: str) -> Page[CouponRow]:
    """The tenant's coupons, newest first (one page)."""
    rows = session.execute(
        select(CouponRow)
        .where(CouponRow.tenant_id == tenant_id)
        .order_by(CouponRow.created_at.desc())
    ).scalars()
    return whole(list(rows))


def apply_coupon(
    session: Session, tenant_id: str, external_id: str, spec: AppliedCouponSpec
) -> AppliedCouponRow:
    """Apply a coupon to a customer; one active application per coupon and customer."""
    customer = get_customer(session, tenant_id, external_id)
    code = spec.coupon_code
    try:
        coupon = get_coupon(session, tenant_id, code)
    except NotFound as exc:
        raise ValidationFailed(exc.message) from None
    if coupon.kind == "fixed" and coupon.currency != customer.currency:
        raise ValidationFailed(
            f"coupon {code!r} is in {coupon.currency}; the customer pays in {customer.currency}"
        )
    active = session.execute(
        select(AppliedCouponRow).where(
            AppliedCouponRow.customer_id == customer.id,
            AppliedCouponRow.coupon_id == coupon.id,
            AppliedCouponRow.status == "active",
        )
    ).first()
    if active is not None:
        raise Conflict(f"coupon {code!r} is already applied to {external_id!r}", code="duplicate")
    amount = non_negative(spec.amount, "amount") if coupon.kind == "fixed" else None
    row = AppliedCouponRow(
        id=new_id("acou"),
        tenant_id=tenant_id,
        coupon_id=coupon.id,
        customer_id=customer.id,
        status="active",
        amount_remaining=amount if amount is not None else coupon.amount,
        periods_remaining=coupon.frequency_duration if coupon.frequency == "recurring" else None,
    )
    session.add(row)
    session.flush()
    return row


def applied_coupons(session: Session, tenant_id: str, external_id: str) -> Page[AppliedCouponRow]:
    """The coupons applied to a customer, newest first, whatever their status (one page)."""
    customer = get_customer(session, tenant_id, external_id)
    rows = (
        session.execute(
            select(AppliedCouponRow)
            .where(AppliedCouponRow.customer_id == customer.id)
            .order_by(AppliedCouponRow.created_at.desc())
        )
        .unique()
        .scalars()
    )
    return whole(list(rows))


def remove_applied_coupon(
    session: Session, tenant_id: str, external_id: str, applied_id: str
) -> None:
    customer = get_customer(session, tenant_id, external_id)
    row = session.get(AppliedCouponRow, applied_id)
    if row is None or row.tenant_id != tenant_id or row.customer_id != customer.id:
        raise NotFound(f"applied coupon {applied_id!r} not found")
    # "removed" (by the user) differs from "terminated" (used up): refreshing a draft
    # gives back what the draft used, but never revives a coupon the user removed.
    row.status = "removed"


def active_coupons(session: Session, tenant_id: str) -> dict[str, list[AppliedCouponRow]]:
    """Active applied coupons by customer row id, oldest first (the order they apply in)."""
    rows = (
        session.execute(
            select(AppliedCouponRow)
            .where(AppliedCouponRow.tenant_id == tenant_id, AppliedCouponRow.status == "active")
            .order_by(AppliedCouponRow.created_at, AppliedCouponRow.id)
        )
        .unique()
        .scalars()
    )
    result: dict[str, list[AppliedCouponRow]] = {}
    for row in rows:
        result.setdefault(row.customer_id, []).append(row)
    return result


def coupon_domain(row: AppliedCouponRow) -> AppliedCoupon:
    coupon = row.coupon
    return AppliedCoupon(
        id=row.id,
        code=coupon.code,
        kind=coupon.kind,
        percentage=coupon.percentage or ZERO,
        amount_remaining=row.amount_remaining or ZERO,
        plan_codes=tuple(coupon.plan_codes or ()),
        metric_codes=tuple(coupon.metric_codes or ()),
    )


def record_uses(
    session: Session, tenant_id: str, invoice_id: str, uses: Sequence[CouponUse]
) -> None:
    """Consume the coupons an invoice used: remaining amounts and invoice counts."""
    for use in uses:
        row = session.get(AppliedCouponRow, use.coupon_id)
        if row is None:
            continue
        coupon = row.coupon
        session.add(
            CouponUsageRow(
                id=new_id("cuse"),
                tenant_id=tenant_id,
                applied_coupon_id=row.id,
                invoice_id=invoice_id,
                amount=use.amount,
            )
        )
        if coupon.frequency == "once":
            # A fixed coupon used once keeps its remainder for the next invoice.
            if coupon.kind == "fixed":
                row.amount_remaining = use.remaining
            if coupon.kind == "percentage" or use.remaining <= 0:
                row.status = "terminated"
        elif coupon.frequency == "recurring":
            row.periods_remaining = (row.periods_remaining or 1) - 1
            if row.periods_remaining <= 0:
                row.status = "terminated"
        # A recurring or forever fixed coupon takes up to its amount from *each* invoice
        # of its periods (Lago's fixed_amount coupons): amount_remaining stays that
        # per-invoice amount. (Bug fix: it used to be spent down like a `once` coupon, so
        # a recurring coupon ended after its first invoice and a forever one gave nothing
        # once its amount had been used.)


def revert_uses(session: Session, invoice_id: str) -> None:
    """Give back what an invoice took from coupons (before its draft is re-rated)."""
    usages = (
        session.execute(select(CouponUsageRow).where(CouponUsageRow.invoice_id == invoice_id))
        .scalars()
        .all()
    )
    for usage in usages:
        row = session.get(AppliedCouponRow, usage.applied_coupon_id)
        if row is not None:
            coupon = row.coupon
            if coupon.kind == "fixed" and coupon.frequency == "once":
                row.amount_remaining = (row.amount_remaining or ZERO) + usage.amount
            if coupon.frequency == "recurring":
                row.periods_remaining = (row.periods_remaining or 0) + 1
            if row.status == "terminated":
                row.status = "active"
        session.delete(usage)

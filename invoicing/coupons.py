"""Coupons and the coupons applied to customers.

A coupon is `percentage` or `fixed`, used `once`, `recurring` for N invoices, or
`forever`, optionally scoped to plans or metrics. What an invoice takes is recorded
per invoice (`coupon_usages`), so refreshing a draft can give it back exactly.

An application copies the coupon's terms (percentage, amount, frequency, duration),
which `POST /customers/{id}/coupons` may override for that customer; a later change of
the coupon never reaches it. docs/coupons-taxes-customers.md has the lifecycle: update,
deactivate, delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing.catalog import get_customer, insert_unique, non_negative
from invoicing.models import AppliedCouponRow, CouponRow, CouponUsageRow, CustomerRow, new_id
from invoicing.pages import Page, whole
from invoicing.specs import AppliedCouponSpec, CouponSpec
from rating.context import AppliedCoupon, CouponUse
from rating.money import CURRENCIES, ZERO

KINDS = {"percentage": "percentage", "fixed": "fixed", "fixed_amount": "fixed"}
FREQUENCIES = {"once", "recurring", "forever"}


@dataclass(frozen=True)
class CouponTerms:
    """What a coupon (or one application of it) gives: checked by `_checked_terms`."""

    percentage: Decimal | None
    amount: Decimal | None
    frequency: str
    frequency_duration: int | None


def _checked_terms(kind: str, terms: CouponTerms) -> CouponTerms:
    """The terms with the rules of their kind and frequency enforced."""
    if terms.frequency not in FREQUENCIES:
        raise ValidationFailed("frequency must be one of once, recurring, forever")
    duration = terms.frequency_duration
    if terms.frequency == "recurring":
        if duration is None or duration < 1:
            raise ValidationFailed("a recurring coupon needs frequencyDuration (invoices), >= 1")
    else:
        duration = None
    percentage = amount = None
    if kind == "percentage":
        percentage = terms.percentage
        if terms.amount is not None:
            raise ValidationFailed("a percentage coupon takes a percentage, not an amount")
        if percentage is None:
            raise ValidationFailed("percentage is required")
        if not 0 < percentage <= 100:
            raise ValidationFailed("percentage must be greater than 0 and at most 100")
    else:
        if terms.percentage is not None:
            raise ValidationFailed("a fixed coupon takes an amount, not a percentage")
        amount = non_negative(terms.amount, "amount")
        if amount is None:
            raise ValidationFailed("amount is required")
        if not amount:
            raise ValidationFailed("a fixed coupon needs a positive amount")
    return CouponTerms(percentage, amount, terms.frequency, duration)


def create_coupon(session: Session, tenant_id: str, spec: CouponSpec) -> CouponRow:
    """Add a coupon; a code the tenant already has (even deleted) is a Conflict."""
    kind = KINDS.get(spec.kind)
    if kind is None:
        raise ValidationFailed("type must be 'percentage' or 'fixed'")
    terms = _checked_terms(
        kind,
        CouponTerms(
            spec.percentage if kind == "percentage" else None,
            spec.amount if kind == "fixed" else None,
            spec.frequency,
            spec.frequency_duration,
        ),
    )
    currency = None
    if kind == "fixed":
        currency = (spec.currency or "").upper()
        if currency not in CURRENCIES:
            raise ValidationFailed("a fixed coupon needs its currency (ISO 4217)")
    row = CouponRow(
        id=new_id("cou"),
        tenant_id=tenant_id,
        code=spec.code,
        name=spec.name or spec.code,
        description=spec.description,
        kind=kind,
        percentage=terms.percentage,
        amount=terms.amount,
        currency=currency,
        frequency=terms.frequency,
        frequency_duration=terms.frequency_duration,
        plan_codes=list(spec.plan_codes),
        metric_codes=list(spec.metric_codes),
        expires_at=spec.expires_at,
        status="active",
    )
    insert_unique(session, row, f"a coupon with code {row.code!r} already exists")
    return row


def get_coupon(session: Session, tenant_id: str, code: str) -> CouponRow:
    """The tenant's coupon of that code (not deleted), or NotFound."""
    row = session.execute(
        select(CouponRow).where(
            CouponRow.tenant_id == tenant_id,
            CouponRow.code == code,
            CouponRow.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"coupon {code!r} not found")
    return row


STATUSES = ("active", "inactive")


def list_coupons(
    session: Session,
    tenant_id: str,
    *,
    status: str | None = None,
    kind: str | None = None,
    frequency: str | None = None,
) -> Page[CouponRow]:
    """The tenant's coupons (deleted ones never), newest first (one page), filtered."""
    query = select(CouponRow).where(
        CouponRow.tenant_id == tenant_id, CouponRow.deleted_at.is_(None)
    )
    if status is not None:
        query = query.where(CouponRow.status == status)
    if kind is not None:
        query = query.where(CouponRow.kind == KINDS.get(kind, kind))
    if frequency is not None:
        query = query.where(CouponRow.frequency == frequency)
    rows = session.execute(query.order_by(CouponRow.created_at.desc(), CouponRow.id.desc()))
    return whole(list(rows.scalars()))


@dataclass(frozen=True)
class CouponPatch:
    """What `PATCH /coupons/{code}` changes; only the fields in `sent` (null clears the
    nullable ones: description, expiresAt)."""

    name: str | None = None
    description: str | None = None
    expires_at: datetime | None = None
    status: str | None = None
    percentage: Decimal | None = None
    amount: Decimal | None = None
    frequency: str | None = None
    frequency_duration: int | None = None
    plan_codes: tuple[str, ...] | None = None
    metric_codes: tuple[str, ...] | None = None
    sent: frozenset[str] = frozenset()


# The terms an application copies or reads from its coupon: once the coupon has been
# applied they are frozen (Lago refuses these edits too), so what a customer was
# promised never changes under them.
TERM_FIELDS = frozenset(
    {"percentage", "amount", "frequency", "frequency_duration", "plan_codes", "metric_codes"}
)


def was_applied(session: Session, coupon: CouponRow) -> bool:
    """Whether any customer ever had the coupon applied (whatever its status now)."""
    return (
        session.execute(
            select(AppliedCouponRow.id).where(AppliedCouponRow.coupon_id == coupon.id).limit(1)
        ).first()
        is not None
    )


def update_coupon(session: Session, tenant_id: str, code: str, patch: CouponPatch) -> CouponRow:
    """Change a coupon: name, description, expiry and status always; its terms only
    while it was never applied (409 `coupon_applied`)."""
    row = get_coupon(session, tenant_id, code)
    terms = patch.sent & TERM_FIELDS
    if terms and was_applied(session, row):
        raise Conflict(
            f"coupon {code!r} has been applied: its {', '.join(sorted(terms))} can no longer "
            "change (create a new coupon)",
            code="coupon_applied",
        )
    if "name" in patch.sent:
        if not (patch.name or "").strip():
            raise ValidationFailed("name must not be empty")
        row.name = patch.name or row.name
    if "description" in patch.sent:
        row.description = patch.description
    if "expires_at" in patch.sent:
        row.expires_at = patch.expires_at
    if "status" in patch.sent:
        if patch.status is None or patch.status not in STATUSES:
            raise ValidationFailed("status must be 'active' or 'inactive'")
        row.status = patch.status
    if terms - {"plan_codes", "metric_codes"}:
        checked = _checked_terms(
            row.kind,
            CouponTerms(
                patch.percentage if "percentage" in patch.sent else row.percentage,
                patch.amount if "amount" in patch.sent else row.amount,
                patch.frequency or row.frequency,
                patch.frequency_duration
                if "frequency_duration" in patch.sent
                else row.frequency_duration,
            ),
        )
        row.percentage, row.amount = checked.percentage, checked.amount
        row.frequency, row.frequency_duration = checked.frequency, checked.frequency_duration
    if patch.plan_codes is not None:
        row.plan_codes = list(patch.plan_codes)
    if patch.metric_codes is not None:
        row.metric_codes = list(patch.metric_codes)
    session.flush()
    return row


def delete_coupon(session: Session, tenant_id: str, code: str, now: datetime) -> int:
    """Delete a coupon (soft: its row and history stay, its code stays taken) and
    terminate its active applications; returns how many it terminated. What invoices
    already took from it stays on them."""
    row = get_coupon(session, tenant_id, code)
    row.deleted_at = now
    row.status = "inactive"
    applied = (
        session.execute(
            select(AppliedCouponRow).where(
                AppliedCouponRow.coupon_id == row.id, AppliedCouponRow.status == "active"
            )
        )
        .unique()
        .scalars()
        .all()
    )
    for application in applied:
        application.status = "terminated"
    session.flush()
    return len(applied)


def apply_coupon(
    session: Session,
    tenant_id: str,
    external_id: str,
    spec: AppliedCouponSpec,
    now: datetime,
) -> AppliedCouponRow:
    """Apply a coupon to a customer, with its terms or the spec's overrides of them; one
    active application per coupon and customer; an inactive or expired coupon is a 409."""
    customer = get_customer(session, tenant_id, external_id)
    code = spec.coupon_code
    try:
        coupon = get_coupon(session, tenant_id, code)
    except NotFound as exc:
        raise ValidationFailed(exc.message) from None
    if coupon.status != "active":
        raise Conflict(
            f"coupon {code!r} is inactive: it takes no new customers", code="coupon_inactive"
        )
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise Conflict(
            f"coupon {code!r} expired at {coupon.expires_at.isoformat()}", code="coupon_expired"
        )
    if coupon.kind == "fixed" and coupon.currency != customer.currency:
        raise ValidationFailed(
            f"coupon {code!r} is in {coupon.currency}; the customer pays in {customer.currency}"
        )
    frequency = spec.frequency or coupon.frequency
    duration = spec.frequency_duration
    if duration is None and frequency == coupon.frequency:
        duration = coupon.frequency_duration
    terms = _checked_terms(
        coupon.kind,
        CouponTerms(
            spec.percentage
            if spec.percentage is not None or coupon.kind == "fixed"
            else coupon.percentage,
            spec.amount
            if spec.amount is not None or coupon.kind == "percentage"
            else coupon.amount,
            frequency,
            duration,
        ),
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
    row = AppliedCouponRow(
        id=new_id("acou"),
        tenant_id=tenant_id,
        coupon_id=coupon.id,
        customer_id=customer.id,
        status="active",
        percentage=terms.percentage,
        amount=terms.amount,
        frequency=terms.frequency,
        frequency_duration=terms.frequency_duration,
        amount_remaining=terms.amount,
        periods_remaining=terms.frequency_duration,
    )
    session.add(row)
    session.flush()
    return row


def frequency_of(row: AppliedCouponRow) -> str:
    """The application's frequency (rows applied before 0020 carry none: the coupon's)."""
    return row.frequency or row.coupon.frequency


def percentage_of(row: AppliedCouponRow) -> Decimal | None:
    return row.percentage if row.percentage is not None else row.coupon.percentage


APPLIED_STATUSES = ("active", "terminated", "removed")


def list_applied(
    session: Session,
    tenant_id: str,
    *,
    customer_external_id: str | None = None,
    coupon_code: str | None = None,
    status: str | None = None,
) -> Page[tuple[AppliedCouponRow, str]]:
    """The tenant's applied coupons with their customer's externalId, newest first (one
    page), filtered; deleted customers' too (their history stays)."""
    query = (
        select(AppliedCouponRow, CustomerRow.external_id)
        .join(CouponRow, CouponRow.id == AppliedCouponRow.coupon_id)
        .join(CustomerRow, CustomerRow.id == AppliedCouponRow.customer_id)
        .where(AppliedCouponRow.tenant_id == tenant_id)
    )
    if customer_external_id is not None:
        query = query.where(CustomerRow.external_id == customer_external_id)
    if coupon_code is not None:
        query = query.where(CouponRow.code == coupon_code)
    if status is not None:
        query = query.where(AppliedCouponRow.status == status)
    ordered = query.order_by(AppliedCouponRow.created_at.desc(), AppliedCouponRow.id.desc())
    return whole([(row, external_id) for row, external_id in session.execute(ordered).unique()])


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
        percentage=percentage_of(row) or ZERO,
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
        frequency = frequency_of(row)
        if frequency == "once":
            # A fixed coupon used once keeps its remainder for the next invoice.
            if coupon.kind == "fixed":
                row.amount_remaining = use.remaining
            if coupon.kind == "percentage" or use.remaining <= 0:
                row.status = "terminated"
        elif frequency == "recurring":
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
            frequency = frequency_of(row)
            if coupon.kind == "fixed" and frequency == "once":
                row.amount_remaining = (row.amount_remaining or ZERO) + usage.amount
            if frequency == "recurring":
                row.periods_remaining = (row.periods_remaining or 0) + 1
            # A deleted coupon's applications stay terminated (delete_coupon).
            if row.status == "terminated" and coupon.deleted_at is None:
                row.status = "active"
        session.delete(usage)

"""The local tax table of a tenant (the default tax provider's data).

A rate's change applies to what is rated from then on (bill runs, draft refreshes,
one-off invoices); issued invoices keep the rate copied on their lines. A rate in use
cannot be deleted (docs/coupons-taxes-customers.md says what "in use" means).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing.catalog import country_code, insert_unique, non_negative
from invoicing.models import AddOnRow, BillingEntityRow, CustomerRow, TaxRow, new_id
from invoicing.pages import Page, whole
from invoicing.specs import TaxSpec
from rating.context import TaxRate
from rating.model import Customer
from rating.stages.tax import applicable_rates


def _rate(value: Decimal | None) -> Decimal:
    rate = non_negative(value, "rate")
    if rate is None:
        raise ValidationFailed("rate is required")
    if rate > 100:
        raise ValidationFailed("rate is a percentage between 0 and 100")
    return rate


def create_tax(session: Session, tenant_id: str, spec: TaxSpec) -> TaxRow:
    """Add a rate to the tenant's tax table; a code it already has is a Conflict."""
    rate = _rate(spec.rate)
    if spec.region is not None and spec.country is None:
        raise ValidationFailed("a region needs its country")
    row = TaxRow(
        id=new_id("tax"),
        tenant_id=tenant_id,
        code=spec.code,
        name=spec.name,
        rate=rate,
        country=country_code(spec.country),
        region=spec.region,
        description=spec.description,
    )
    insert_unique(session, row, f"a tax with code {row.code!r} already exists")
    return row


def get_tax(session: Session, tenant_id: str, code: str) -> TaxRow:
    """The tenant's tax of that code, or NotFound."""
    row = session.execute(
        select(TaxRow).where(TaxRow.tenant_id == tenant_id, TaxRow.code == code)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"tax {code!r} not found")
    return row


def list_taxes(session: Session, tenant_id: str) -> Page[TaxRow]:
    """The tenant's tax table, newest first (one page)."""
    rows = session.execute(
        select(TaxRow).where(TaxRow.tenant_id == tenant_id).order_by(TaxRow.created_at.desc())
    ).scalars()
    return whole(list(rows))


@dataclass(frozen=True)
class TaxPatch:
    """What `PATCH /taxes/{code}` changes: only the fields in `sent` (null clears
    description, country and region)."""

    name: str | None = None
    rate: Decimal | None = None
    description: str | None = None
    country: str | None = None
    region: str | None = None
    sent: frozenset[str] = frozenset()


def update_tax(session: Session, tenant_id: str, code: str, patch: TaxPatch) -> TaxRow:
    """Change a rate of the table; invoices rated from then on take the new values."""
    row = get_tax(session, tenant_id, code)
    if "name" in patch.sent:
        if not (patch.name or "").strip():
            raise ValidationFailed("name must not be empty")
        row.name = patch.name or row.name
    if "rate" in patch.sent:
        row.rate = _rate(patch.rate)
    if "description" in patch.sent:
        row.description = patch.description
    if "country" in patch.sent:
        row.country = country_code(patch.country)
    if "region" in patch.sent:
        row.region = patch.region
    if row.region is not None and row.country is None:
        raise ValidationFailed("a region needs its country")
    session.flush()
    return row


def uses_of(session: Session, tenant_id: str, row: TaxRow) -> list[str]:
    """What keeps a rate in use: add-ons and billing entities naming it, and live
    customers the table gives it to (issued invoices carry their own copy of the rate
    and never count)."""
    uses = [
        f"add-on {code!r}"
        for code, codes in session.execute(
            select(AddOnRow.code, AddOnRow.tax_codes).where(AddOnRow.tenant_id == tenant_id)
        )
        if row.code in (codes or ())
    ]
    uses += [
        f"billing entity {code!r}"
        for code, codes in session.execute(
            select(BillingEntityRow.code, BillingEntityRow.tax_codes).where(
                BillingEntityRow.tenant_id == tenant_id
            )
        )
        if row.code in (codes or ())
    ]
    rates = tax_rates(session, tenant_id)
    places = session.execute(
        select(CustomerRow.country, CustomerRow.region)
        .where(
            CustomerRow.tenant_id == tenant_id,
            CustomerRow.deleted_at.is_(None),
            CustomerRow.tax_exempt.is_(False),
        )
        .distinct()
    )
    for country, region in places:
        customer = Customer("", "", "", country=country, region=region)
        if any(rate.code == row.code for rate in applicable_rates(customer, rates)):
            where = "/".join(part for part in (country, region) if part) or "no country"
            uses.append(f"customers in {where}")
    return uses


def delete_tax(session: Session, tenant_id: str, code: str) -> None:
    """Remove a rate from the tenant's tax table; a rate in use is a Conflict
    (`tax_in_use`): deleting it would silently change what those customers pay."""
    row = get_tax(session, tenant_id, code)
    uses = uses_of(session, tenant_id, row)
    if uses:
        raise Conflict(
            f"tax {code!r} is in use ({'; '.join(sorted(uses))}): take it off the add-ons, "
            "or change its rate instead",
            code="tax_in_use",
            details={"usedBy": sorted(uses)},
        )
    session.delete(row)


def tax_rates(session: Session, tenant_id: str) -> tuple[TaxRate, ...]:
    """The tenant's rates as the Tax stage takes them."""
    rows = session.execute(select(TaxRow).where(TaxRow.tenant_id == tenant_id)).scalars()
    return tuple(
        TaxRate(code=r.code, name=r.name, rate=r.rate, country=r.country, region=r.region)
        for r in rows
    )

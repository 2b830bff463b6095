"""The local tax table of a tenant (the default tax provider's data)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from invoicing.catalog import country_code, insert_unique, non_negative
from invoicing.models import TaxRow, new_id
from invoicing.pages import Page, whole
from invoicing.specs import TaxSpec
from rating.context import TaxRate


def create_tax(session: Session, tenant_id: str, spec: TaxSpec) -> TaxRow:
    """Add a rate to the tenant's tax table; a code it already has is a Conflict."""
    rate = non_negative(spec.rate, "rate")
    assert rate is not None
    if rate > 100:
        raise ValidationFailed("rate is a percentage between 0 and 100")
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


def delete_tax(session: Session, tenant_id: str, code: str) -> None:
    """Remove a rate from the tenant's tax table."""
    session.delete(get_tax(session, tenant_id, code))


def tax_rates(session: Session, tenant_id: str) -> tuple[TaxRate, ...]:
    """The tenant's rates as the Tax stage takes them."""
    rows = session.execute(select(TaxRow).where(TaxRow.tenant_id == tenant_id)).scalars()
    return tuple(
        TaxRate(code=r.code, name=r.name, rate=r.rate, country=r.country, region=r.region)
        for r in rows
    )

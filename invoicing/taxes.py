"""The local tax table of a tenant (the default tax provider's data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from invoicing.catalog import insert_unique, parse_decimal
from invoicing.models import TaxRow, new_id
from rating.context import TaxRate


def create_tax(session: Session, tenant_id: str, data: Mapping[str, Any]) -> TaxRow:
    rate = parse_decimal(data.get("rate"), "rate", allow_none=False)
    assert rate is not None
    if rate > 100:
        raise ValidationFailed("rate is a percentage between 0 and 100")
    country = data.get("country")
    if country is not None and (not isinstance(country, str) or len(country) != 2):
        raise ValidationFailed("country must be an ISO 3166-1 alpha-2 code such as 'US'")
    region = data.get("region")
    if region is not None and country is None:
        raise ValidationFailed("a region needs its country")
    row = TaxRow(
        id=new_id("tax"),
        tenant_id=tenant_id,
        code=data["code"],
        name=data["name"],
        rate=rate,
        country=country.upper() if country else None,
        region=region,
    )
    insert_unique(session, row, f"a tax with code {row.code!r} already exists")
    return row


def get_tax(session: Session, tenant_id: str, code: str) -> TaxRow:
    row = session.execute(
        select(TaxRow).where(TaxRow.tenant_id == tenant_id, TaxRow.code == code)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"tax {code!r} not found")
    return row


def tax_rates(session: Session, tenant_id: str) -> tuple[TaxRate, ...]:
    """The tenant's rates as the Tax stage takes them."""
    rows = session.execute(select(TaxRow).where(TaxRow.tenant_id == tenant_id)).scalars()
    return tuple(
        TaxRate(code=r.code, name=r.name, rate=r.rate, country=r.country, region=r.region)
        for r in rows
    )

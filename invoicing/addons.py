"""Add-ons: catalog products billed once, on one-off invoices (`POST /api/v1/invoices`).

An add-on has a name, a unit amount in one currency and, optionally, its own taxes
(`tax_codes`, codes of the tenant's tax table): a line of an add-on that names taxes is
taxed at those rates instead of the customer's location rates (invoicing/one_off.py).
A one-off line copies the add-on's name and amount, so changing or deleting an add-on
never changes an invoice already made from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from invoicing.catalog import currency_code, insert_unique
from invoicing.models import AddOnRow, TaxRow, new_id
from invoicing.pages import Page, keyset_page
from rating.context import TaxRate
from rating.money import MAX_UNIT_PRICE_DECIMALS, to_decimal

# An amount fits the ledger's NUMERIC(38, 12) however many units a line bills.
MAX_AMOUNT = Decimal(10) ** 12


@dataclass(frozen=True)
class AddOnSpec:
    code: str
    name: str
    amount: object  # parsed here, exactly (a decimal string or a number)
    currency: str
    description: str | None = None
    tax_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddOnPatch:
    """What a PATCH carries; `sent` names the fields it sent (null clears description)."""

    name: str | None = None
    amount: object = None
    currency: str | None = None
    description: str | None = None
    tax_codes: tuple[str, ...] | None = None
    sent: frozenset[str] = field(default_factory=frozenset)


def unit_price(value: object, what: str) -> Decimal:
    """A unit price: exact, at least 0, below 10^12, at most 12 decimals."""
    number = to_decimal(value, what=what)
    if number < 0:
        raise ValidationFailed(f"{what} must not be negative")
    if number >= MAX_AMOUNT:
        raise ValidationFailed(f"{what} must be below {MAX_AMOUNT:f}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_UNIT_PRICE_DECIMALS:
        raise ValidationFailed(f"{what} has more than {MAX_UNIT_PRICE_DECIMALS} decimals")
    return number


def _tax_codes(session: Session, tenant_id: str, codes: Sequence[str]) -> list[str]:
    """The codes as stored: each names a tax of the tenant's table (else a 422)."""
    wanted = list(dict.fromkeys(codes))
    if not wanted:
        return []
    known = set(
        session.execute(
            select(TaxRow.code).where(TaxRow.tenant_id == tenant_id, TaxRow.code.in_(wanted))
        ).scalars()
    )
    if unknown := [c for c in wanted if c not in known]:
        raise ValidationFailed(
            f"taxCodes: unknown tax {', '.join(repr(c) for c in unknown)}; create it with "
            "POST /api/v1/taxes first"
        )
    return wanted


def create_add_on(session: Session, tenant_id: str, spec: AddOnSpec, now: datetime) -> AddOnRow:
    """Add an add-on to the catalog; a code the tenant already has is a Conflict."""
    row = AddOnRow(
        id=new_id("addon"),
        tenant_id=tenant_id,
        code=spec.code,
        name=spec.name,
        description=spec.description,
        amount=unit_price(spec.amount, "amount"),
        currency=currency_code(spec.currency),
        tax_codes=_tax_codes(session, tenant_id, spec.tax_codes),
        created_at=now,
        updated_at=now,
    )
    insert_unique(session, row, f"an add-on with code {row.code!r} already exists")
    return row


def get_add_on(session: Session, tenant_id: str, code: str) -> AddOnRow:
    """The tenant's add-on of that code, or NotFound."""
    row = session.execute(
        select(AddOnRow).where(AddOnRow.tenant_id == tenant_id, AddOnRow.code == code)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"add-on {code!r} not found")
    return row


def list_add_ons(
    session: Session, tenant_id: str, *, limit: int, cursor: str | None = None
) -> Page[AddOnRow]:
    """The tenant's add-ons, newest first, one page."""
    query = select(AddOnRow).where(AddOnRow.tenant_id == tenant_id)
    return keyset_page(session, query, AddOnRow, limit, cursor)


def update_add_on(
    session: Session, tenant_id: str, code: str, patch: AddOnPatch, now: datetime
) -> AddOnRow:
    """Change what the patch carries, under the rules of creation (invoices keep what
    they copied)."""
    row = get_add_on(session, tenant_id, code)
    if patch.name is not None:
        row.name = patch.name
    if "description" in patch.sent:
        row.description = patch.description
    if patch.amount is not None:
        row.amount = unit_price(patch.amount, "amount")
    if patch.currency is not None:
        row.currency = currency_code(patch.currency)
    if patch.tax_codes is not None:
        row.tax_codes = _tax_codes(session, tenant_id, patch.tax_codes)
    row.updated_at = now
    return row


def delete_add_on(session: Session, tenant_id: str, code: str) -> None:
    """Remove an add-on from the catalog (one-off lines made from it keep their copy)."""
    session.delete(get_add_on(session, tenant_id, code))


def add_on_taxes(session: Session, tenant_id: str, add_on: AddOnRow) -> tuple[TaxRate, ...]:
    """The taxes an add-on names, as the Tax stage takes them; a code deleted from the
    tax table since is a ValidationFailed (the add-on must be fixed first)."""
    codes = list(add_on.tax_codes or [])
    if not codes:
        return ()
    rows = {
        r.code: r
        for r in session.execute(
            select(TaxRow).where(TaxRow.tenant_id == tenant_id, TaxRow.code.in_(codes))
        ).scalars()
    }
    if missing := [c for c in codes if c not in rows]:
        raise ValidationFailed(
            f"add-on {add_on.code!r} names tax {', '.join(repr(c) for c in missing)}, "
            "which the tax table no longer has"
        )
    return tuple(
        TaxRate(code=r.code, name=r.name, rate=r.rate, country=r.country, region=r.region)
        for r in (rows[c] for c in codes)
    )

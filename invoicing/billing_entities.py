"""Billing entities: the sellers of a tenant's invoices (docs/billing-entities.md).

A tenant has none, or several, one of them the default. Each has a code, the seller's
legal name, address, tax id and bank account as the documents show them, its own
invoice prefix (and so its own gap-free number sequence, `invoices.next_number`) and
the tax codes its customers pay where their place has no rate of its own. Customers
belong to one; an invoice records its customer's at finalize.

`GET/PUT /billing-entity` read and write the default one, as before there were several.
Without any, documents name the tenant and carry no seller address (docs/documents.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing.countries import iso_country
from invoicing.models import (
    BillingEntityRow,
    CustomerRow,
    InvoiceNumberSequence,
    InvoiceRow,
    TaxRow,
    new_id,
)
from invoicing.pages import Page, keyset_page
from invoicing.specs import BillingEntitySpec
from rating.context import TaxRate

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_PREFIX = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")

# The prefix of a tenant's numbers before it had entities, and of the entity `PUT
# /billing-entity` creates: its sequence is the tenant's `InvoiceSequence`.
TENANT_PREFIX = "INV"
DEFAULT_CODE = "default"


@dataclass(frozen=True)
class Seller:
    """The seller fields of an entity; None leaves a field out (or, in a patch, as it is)."""

    legal_name: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    tax_id: str | None = None
    email: str | None = None
    iban: str | None = None


@dataclass(frozen=True)
class EntitySpec:
    """`POST /billing-entities`."""

    code: str
    name: str
    seller: Seller = Seller()
    invoice_prefix: str | None = None
    tax_codes: tuple[str, ...] = ()
    is_default: bool = False


@dataclass(frozen=True)
class EntityPatch:
    """`PATCH /billing-entities/{code}`: what is sent changes; `cleared` names the
    optional seller fields sent as null."""

    name: str | None = None
    seller: Seller = Seller()
    cleared: frozenset[str] = frozenset()
    invoice_prefix: str | None = None
    tax_codes: tuple[str, ...] | None = None
    is_default: bool | None = None


# --- reads -------------------------------------------------------------------------


def find_billing_entity(session: Session, tenant_id: str) -> BillingEntityRow | None:
    """The tenant's default billing entity, or None when it has none."""
    # One default at a time is kept by _make_default; should two concurrent switches
    # both commit, the later change wins rather than an error.
    return (
        session.execute(
            select(BillingEntityRow)
            .where(BillingEntityRow.tenant_id == tenant_id, BillingEntityRow.is_default.is_(True))
            .order_by(BillingEntityRow.updated_at.desc(), BillingEntityRow.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def get_billing_entity(session: Session, tenant_id: str) -> BillingEntityRow:
    """The tenant's default billing entity, or NotFound."""
    row = find_billing_entity(session, tenant_id)
    if row is None:
        raise NotFound("this tenant has no billing entity yet (PUT /billing-entity sets it)")
    return row


def get_entity(session: Session, tenant_id: str, code: str) -> BillingEntityRow:
    """The tenant's entity of that code (archived ones too), or NotFound."""
    row = session.execute(
        select(BillingEntityRow).where(
            BillingEntityRow.tenant_id == tenant_id, BillingEntityRow.code == code
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"billing entity {code!r} not found", code="billing_entity_not_found")
    return row


def list_entities(
    session: Session, tenant_id: str, *, limit: int, cursor: str | None, archived: bool = False
) -> Page[BillingEntityRow]:
    """The live entities of the tenant (or the archived ones), newest first."""
    query = select(BillingEntityRow).where(BillingEntityRow.tenant_id == tenant_id)
    if archived:
        query = query.where(BillingEntityRow.archived_at.is_not(None))
    else:
        query = query.where(BillingEntityRow.archived_at.is_(None))
    return keyset_page(session, query, BillingEntityRow, limit, cursor)


def invoice_entity(session: Session, invoice: InvoiceRow) -> BillingEntityRow | None:
    """The seller of an invoice: the entity it recorded at finalize, else (a draft) its
    customer's, else the tenant's default (rows from before there were entities)."""
    if invoice.billing_entity is not None:
        return invoice.billing_entity
    if invoice.customer.billing_entity is not None:
        return invoice.customer.billing_entity
    return find_billing_entity(session, invoice.tenant_id)


def seller_name(entity: BillingEntityRow) -> str:
    """The name documents show: the legal name, else the entity's name."""
    return entity.legal_name or entity.name


# --- taxes -------------------------------------------------------------------------


def with_entity_taxes(table: tuple[TaxRate, ...], codes: Sequence[str]) -> tuple[TaxRate, ...]:
    """The rate table a customer of an entity with `codes` is taxed by: the table's
    country and region rates, which still win where the customer's place has one, and
    in place of the tenant's defaults (rates without a country) the entity's taxes."""
    if not codes:
        return table
    by_code = {rate.code: rate for rate in table}
    local = tuple(rate for rate in table if rate.country is not None)
    chosen = tuple(
        TaxRate(code=rate.code, name=rate.name, rate=rate.rate)
        for code in codes
        if (rate := by_code.get(code)) is not None
    )
    return local + chosen


def entity_tax_codes(
    session: Session, tenant_id: str, customer_ids: Sequence[str]
) -> dict[str, list[str]]:
    """The tax codes of each customer's entity (customers without an entity: the
    default's), for the customers whose entity has any."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(CustomerRow.id, BillingEntityRow.tax_codes)
        .outerjoin(BillingEntityRow, BillingEntityRow.id == CustomerRow.billing_entity_id)
        .where(CustomerRow.tenant_id == tenant_id, CustomerRow.id.in_(list(customer_ids)))
    ).all()
    default: list[str] | None = None
    codes: dict[str, list[str]] = {}
    for customer_id, entity_codes in rows:
        if entity_codes is None:  # no entity of its own: the tenant's default
            if default is None:
                entity = find_billing_entity(session, tenant_id)
                default = list(entity.tax_codes or []) if entity is not None else []
            entity_codes = default
        if entity_codes:
            codes[customer_id] = list(entity_codes)
    return codes


def customer_tax_rates(
    session: Session, tenant_id: str, customer_id: str, table: tuple[TaxRate, ...]
) -> tuple[TaxRate, ...]:
    """The rate table of one customer (`with_entity_taxes` of its entity's codes)."""
    codes = entity_tax_codes(session, tenant_id, [customer_id]).get(customer_id, [])
    return with_entity_taxes(table, codes)


# --- customers ---------------------------------------------------------------------


def entity_for_new_customer(
    session: Session, tenant_id: str, code: str | None
) -> BillingEntityRow | None:
    """The entity a new customer belongs to: the one named (a live one, else a 422), or
    the tenant's default (None when the tenant has no entity)."""
    if code is None:
        return find_billing_entity(session, tenant_id)
    return _live_for_customer(session, tenant_id, code)


def move_customer(session: Session, tenant_id: str, customer: CustomerRow, code: str) -> None:
    """Attach the customer to another entity; refused (409 `billing_entity_locked`) once
    the customer has a finalized invoice, whose seller and number cannot change. Its
    drafts follow it."""
    target = _live_for_customer(session, tenant_id, code)
    if customer.billing_entity_id == target.id:
        return
    issued = session.execute(
        select(InvoiceRow.number)
        .where(
            InvoiceRow.tenant_id == tenant_id,
            InvoiceRow.customer_id == customer.id,
            InvoiceRow.number.is_not(None),
        )
        .limit(1)
    ).first()
    if issued is not None:
        raise Conflict(
            f"customer {customer.external_id!r} has finalized invoices of its billing "
            f"entity; it cannot move to {code!r} (create a new customer instead)",
            code="billing_entity_locked",
            details={"invoice": issued[0]},
        )
    customer.billing_entity_id = target.id
    customer.billing_entity = target
    session.execute(
        update(InvoiceRow)
        .where(
            InvoiceRow.tenant_id == tenant_id,
            InvoiceRow.customer_id == customer.id,
            InvoiceRow.status == "DRAFT",
        )
        .values(billing_entity_id=None)
        .execution_options(synchronize_session=False)
    )


def _live_for_customer(session: Session, tenant_id: str, code: str) -> BillingEntityRow:
    row = session.execute(
        select(BillingEntityRow).where(
            BillingEntityRow.tenant_id == tenant_id, BillingEntityRow.code == code
        )
    ).scalar_one_or_none()
    if row is None:
        raise ValidationFailed(
            f"billingEntityCode: no billing entity {code!r}", code="unknown_billing_entity"
        )
    if row.archived_at is not None:
        raise ValidationFailed(
            f"billingEntityCode: billing entity {code!r} is archived",
            code="billing_entity_archived",
        )
    return row


# --- writes ------------------------------------------------------------------------


def create_entity(
    session: Session, tenant_id: str, spec: EntitySpec, now: datetime
) -> BillingEntityRow:
    """A new entity; the tenant's first becomes its default whatever `isDefault` says."""
    code = spec.code.strip()
    if not _CODE.match(code):
        raise ValidationFailed(
            f"code {spec.code!r}: 1-100 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit",
            code="invalid_code",
        )
    if _find(session, tenant_id, code) is not None:
        raise Conflict(f"billing entity {code!r} already exists", code="billing_entity_exists")
    prefix = _prefix(spec.invoice_prefix if spec.invoice_prefix is not None else code)
    _prefix_free(session, tenant_id, prefix)
    default = find_billing_entity(session, tenant_id)
    row = BillingEntityRow(
        id=new_id("be"),
        tenant_id=tenant_id,
        code=code,
        name=_required(spec.name, "name"),
        is_default=False,
        invoice_prefix=prefix,
        tax_codes=_tax_codes(session, tenant_id, spec.tax_codes),
        created_at=now,
        updated_at=now,
    )
    _set_seller(row, spec.seller, frozenset())
    session.add(row)
    _open_sequence(session, tenant_id, prefix)
    session.flush()
    if default is None or spec.is_default:
        _make_default(session, tenant_id, row, default)
    return row


def update_entity(
    session: Session, tenant_id: str, code: str, patch: EntityPatch, now: datetime
) -> BillingEntityRow:
    """Change what the patch sends. The prefix is fixed once a number was taken with it;
    an archived entity cannot become the default; the default stays until another
    entity is made the default."""
    row = get_entity(session, tenant_id, code)
    if patch.name is not None:
        row.name = _required(patch.name, "name")
    _set_seller(row, patch.seller, patch.cleared)
    if patch.invoice_prefix is not None:
        prefix = _prefix(patch.invoice_prefix)
        if prefix != row.invoice_prefix:
            if _has_numbers(session, row):
                raise Conflict(
                    f"billing entity {code!r} has issued invoices numbered "
                    f"{row.invoice_prefix}-…; its prefix cannot change",
                    code="invoice_prefix_locked",
                )
            _prefix_free(session, tenant_id, prefix)
            row.invoice_prefix = prefix
            _open_sequence(session, tenant_id, prefix)
    if patch.tax_codes is not None:
        row.tax_codes = _tax_codes(session, tenant_id, patch.tax_codes)
    if patch.is_default is True and not row.is_default:
        if row.archived_at is not None:
            raise Conflict(
                f"billing entity {code!r} is archived; it cannot be the default",
                code="billing_entity_archived",
            )
        _make_default(session, tenant_id, row, find_billing_entity(session, tenant_id))
    elif patch.is_default is False and row.is_default:
        raise ValidationFailed(
            "isDefault: a tenant always has a default billing entity; make another one "
            "the default instead",
            code="default_required",
        )
    row.updated_at = now
    session.flush()
    return row


def archive_entity(session: Session, tenant_id: str, code: str, now: datetime) -> None:
    """Archive an entity: it takes no new customers and leaves the list; its invoices
    keep naming it. Refused for the default and while live customers belong to it."""
    row = get_entity(session, tenant_id, code)
    if row.archived_at is not None:
        return
    if row.is_default:
        raise Conflict(
            f"billing entity {code!r} is the default; make another one the default first",
            code="billing_entity_default",
        )
    customers = (
        session.execute(
            select(CustomerRow.external_id)
            .where(
                CustomerRow.tenant_id == tenant_id,
                CustomerRow.billing_entity_id == row.id,
                CustomerRow.deleted_at.is_(None),
            )
            .order_by(CustomerRow.external_id)
            .limit(10)
        )
        .scalars()
        .all()
    )
    if customers:
        raise Conflict(
            f"billing entity {code!r} still bills customers ({', '.join(customers)}); "
            "move them to another entity first",
            code="billing_entity_in_use",
            details={"customers": list(customers)},
        )
    row.archived_at = now
    row.updated_at = now


def put_billing_entity(
    session: Session, tenant_id: str, spec: BillingEntitySpec, now: datetime
) -> BillingEntityRow:
    """Set (create or replace) the seller of the tenant's default entity, every part
    checked; the first one is created with code `default` and the prefix INV."""
    row = find_billing_entity(session, tenant_id)
    if row is None:
        code = DEFAULT_CODE if _find(session, tenant_id, DEFAULT_CODE) is None else new_id("be")
        row = BillingEntityRow(
            id=new_id("be"),
            tenant_id=tenant_id,
            code=code,
            name=_required(spec.legal_name, "legalName"),
            is_default=False,
            invoice_prefix=TENANT_PREFIX,
            tax_codes=[],
            created_at=now,
        )
        session.add(row)
        created = True
    else:
        created = False
    row.legal_name = _required(spec.legal_name, "legalName")
    row.address_line1 = _required(spec.address_line1, "addressLine1")
    row.address_line2 = _optional(spec.address_line2)
    row.city = _required(spec.city, "city")
    row.postal_code = _required(spec.postal_code, "postalCode")
    row.country = iso_country(spec.country)
    row.tax_id = _optional(spec.tax_id)
    row.email = _email(spec.email)
    row.iban = _iban(spec.iban)
    row.updated_at = now
    if created:
        session.flush()
        _make_default(session, tenant_id, row, None)
    return row


def _make_default(
    session: Session, tenant_id: str, row: BillingEntityRow, previous: BillingEntityRow | None
) -> None:
    """Make `row` the default. Customers and invoices that had no entity yet are pinned
    to the previous default (to this one, when there was none), so a change of default
    never moves a customer or an issued invoice to another seller."""
    keep = previous.id if previous is not None else row.id
    for model in (CustomerRow, InvoiceRow):
        session.execute(
            update(model)
            .where(model.tenant_id == tenant_id, model.billing_entity_id.is_(None))
            .values(billing_entity_id=keep)
            .execution_options(synchronize_session=False)
        )
    if previous is not None:
        previous.is_default = False
        session.flush()  # one default at a time, even inside the transaction
    row.is_default = True
    session.flush()
    session.expire_all()


def _find(session: Session, tenant_id: str, code: str) -> BillingEntityRow | None:
    return session.execute(
        select(BillingEntityRow).where(
            BillingEntityRow.tenant_id == tenant_id, BillingEntityRow.code == code
        )
    ).scalar_one_or_none()


def _prefix(value: str) -> str:
    prefix = re.sub(r"[^A-Z0-9-]", "-", value.strip().upper()).strip("-")[:20]
    if not _PREFIX.match(prefix):
        raise ValidationFailed(
            f"invoicePrefix {value!r}: 1-20 letters, digits or '-'", code="invalid_prefix"
        )
    return prefix


def _prefix_free(session: Session, tenant_id: str, prefix: str) -> None:
    taken = session.execute(
        select(BillingEntityRow.code).where(
            BillingEntityRow.tenant_id == tenant_id, BillingEntityRow.invoice_prefix == prefix
        )
    ).scalar_one_or_none()
    if taken is not None:
        raise Conflict(
            f"invoicePrefix {prefix!r} is the prefix of billing entity {taken!r}",
            code="invoice_prefix_taken",
        )


def _has_numbers(session: Session, row: BillingEntityRow) -> bool:
    return (
        session.execute(
            select(InvoiceRow.id)
            .where(
                InvoiceRow.tenant_id == row.tenant_id,
                InvoiceRow.billing_entity_id == row.id,
                InvoiceRow.number.is_not(None),
            )
            .limit(1)
        ).first()
        is not None
    )


def _open_sequence(session: Session, tenant_id: str, prefix: str) -> None:
    """Create the prefix's sequence row with the entity, so that numbering only ever
    updates (and row-locks) an existing row, never races to insert it."""
    if prefix == TENANT_PREFIX:
        return
    if session.get(InvoiceNumberSequence, (tenant_id, prefix)) is None:
        session.add(InvoiceNumberSequence(tenant_id=tenant_id, prefix=prefix, next_value=1))


def _tax_codes(session: Session, tenant_id: str, codes: Sequence[str]) -> list[str]:
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
            "POST /api/v1/taxes first",
            code="unknown_tax",
        )
    return wanted


def _set_seller(row: BillingEntityRow, seller: Seller, cleared: frozenset[str]) -> None:
    if seller.legal_name is not None:
        row.legal_name = _required(seller.legal_name, "legalName")
    if seller.address_line1 is not None:
        row.address_line1 = _required(seller.address_line1, "addressLine1")
    if seller.address_line2 is not None:
        row.address_line2 = _optional(seller.address_line2)
    if seller.city is not None:
        row.city = _required(seller.city, "city")
    if seller.postal_code is not None:
        row.postal_code = _required(seller.postal_code, "postalCode")
    if seller.country is not None:
        row.country = iso_country(seller.country)
    if seller.tax_id is not None:
        row.tax_id = _optional(seller.tax_id)
    if seller.email is not None:
        row.email = _email(seller.email)
    if seller.iban is not None:
        row.iban = _iban(seller.iban)
    for name in cleared:
        setattr(row, name, None)


def _required(value: str, what: str) -> str:
    text = value.strip()
    if not text:
        raise ValidationFailed(f"{what} must not be blank")
    return text


def _optional(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def _email(value: str | None) -> str | None:
    text = _optional(value)
    if text is not None and not _EMAIL.match(text):
        raise ValidationFailed(f"email {value!r} is not an e-mail address", code="invalid_email")
    return text


def _iban(value: str | None) -> str | None:
    """An IBAN in its electronic form (no spaces, upper case), its check digits verified
    (ISO 13616: the rearranged number mod 97 is 1)."""
    text = _optional(value)
    if text is None:
        return None
    iban = text.replace(" ", "").upper()
    if not _IBAN.match(iban):
        raise ValidationFailed(f"iban {value!r} is not an IBAN", code="invalid_iban")
    iso_country(iban[:2], what="iban country")
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise ValidationFailed(f"iban {value!r} has wrong check digits", code="invalid_iban")
    return iban

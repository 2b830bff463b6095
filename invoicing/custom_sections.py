"""Invoice custom sections: reusable text blocks that invoices and their documents print.

A section has a code, a name, an optional display name (the printed heading; the name
when absent) and its details (the printed text). Which sections an invoice carries is
its customer's choice: none when the customer skips them, else the customer's own list
(in its order), else every section of the tenant marked `appliesToAll` (oldest first).

Every invoice gets its copy through `invoice_copies` (the bill run, for a whole batch)
or `copy_onto` (every invoice made one at a time): at creation, at each refresh of the
DRAFT, and a last time at finalize; after that the copy is frozen, so a later change of
a section never changes an issued invoice. docs/invoice-custom-sections.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, cast, select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from core.ids import new_ids
from invoicing.catalog import insert_unique
from invoicing.models import (
    CustomerRow,
    InvoiceCustomSectionRow,
    InvoiceRow,
    InvoiceSectionCopyRow,
    new_id,
)
from invoicing.pages import Page, keyset_page

MAX_CUSTOMER_SECTIONS = 20  # codes in one customer's own list


@dataclass(frozen=True)
class SectionSpec:
    code: str
    name: str
    details: str
    display_name: str | None = None
    description: str | None = None
    applies_to_all: bool = False


@dataclass(frozen=True)
class SectionPatch:
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    details: str | None = None
    applies_to_all: bool | None = None
    sent: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class SectionCopy:
    """A section as an invoice prints it."""

    code: str
    display_name: str
    details: str


def _details(text: str) -> str:
    if not text.strip():
        raise ValidationFailed("details must not be empty", code="empty_details")
    return text


def _optional(text: str | None) -> str | None:
    """Blank optional texts are stored as absent."""
    return text if text is not None and text.strip() else None


# -- the sections ---------------------------------------------------------------------


def create_section(
    session: Session, tenant_id: str, spec: SectionSpec, now: datetime
) -> InvoiceCustomSectionRow:
    """Add a section; a code the tenant has (or had: deleted codes stay taken) is a Conflict."""
    taken = session.execute(
        select(InvoiceCustomSectionRow.deleted_at).where(
            InvoiceCustomSectionRow.tenant_id == tenant_id,
            InvoiceCustomSectionRow.code == spec.code,
        )
    ).first()
    if taken is not None and taken[0] is not None:
        raise Conflict(
            f"invoice custom section {spec.code!r} was deleted; its code stays taken",
            code="invoice_custom_section_deleted",
        )
    row = InvoiceCustomSectionRow(
        id=new_id("ics"),
        tenant_id=tenant_id,
        code=spec.code,
        name=spec.name,
        display_name=_optional(spec.display_name),
        description=_optional(spec.description),
        details=_details(spec.details),
        applies_to_all=spec.applies_to_all,
        created_at=now,
        updated_at=now,
    )
    insert_unique(session, row, f"an invoice custom section with code {spec.code!r} exists")
    return row


def get_section(session: Session, tenant_id: str, code: str) -> InvoiceCustomSectionRow:
    """The tenant's live section of that code, or NotFound."""
    row = session.execute(
        select(InvoiceCustomSectionRow).where(
            InvoiceCustomSectionRow.tenant_id == tenant_id,
            InvoiceCustomSectionRow.code == code,
            InvoiceCustomSectionRow.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"invoice custom section {code!r} not found")
    return row


def list_sections(
    session: Session,
    tenant_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    applies_to_all: bool | None = None,
) -> Page[InvoiceCustomSectionRow]:
    """The tenant's live sections, newest first, one page."""
    query = select(InvoiceCustomSectionRow).where(
        InvoiceCustomSectionRow.tenant_id == tenant_id,
        InvoiceCustomSectionRow.deleted_at.is_(None),
    )
    if applies_to_all is not None:
        query = query.where(InvoiceCustomSectionRow.applies_to_all.is_(applies_to_all))
    return keyset_page(session, query, InvoiceCustomSectionRow, limit, cursor)


def update_section(
    session: Session, tenant_id: str, code: str, patch: SectionPatch, now: datetime
) -> InvoiceCustomSectionRow:
    """Change what is sent; issued invoices keep their copies, DRAFTs take the change
    when they are next refreshed or finalized."""
    row = get_section(session, tenant_id, code)
    if patch.name is not None:
        row.name = patch.name
    if "display_name" in patch.sent:
        row.display_name = _optional(patch.display_name)
    if "description" in patch.sent:
        row.description = _optional(patch.description)
    if patch.details is not None:
        row.details = _details(patch.details)
    if patch.applies_to_all is not None:
        row.applies_to_all = patch.applies_to_all
    row.updated_at = now
    return row


def delete_section(session: Session, tenant_id: str, code: str, now: datetime) -> None:
    """Soft-delete: hidden everywhere, gone from every customer's list; invoices keep
    their copies (DRAFTs lose it at their next refresh or finalize)."""
    row = get_section(session, tenant_id, code)
    row.deleted_at = now
    row.applies_to_all = False
    # Only customers whose stored list mentions the code are read (a text match on the
    # JSON, then an exact check).
    listed = session.execute(
        select(CustomerRow).where(
            CustomerRow.tenant_id == tenant_id,
            cast(CustomerRow.invoice_custom_section_codes, String).like(f'%"{_like(code)}"%', "\\"),
        )
    ).scalars()
    for customer in listed:
        codes = list(customer.invoice_custom_section_codes or [])
        if code in codes:
            customer.invoice_custom_section_codes = [c for c in codes if c != code]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- the customer's choice ------------------------------------------------------------


def set_customer_sections(
    session: Session,
    tenant_id: str,
    customer: CustomerRow,
    *,
    codes: Sequence[str] | None = None,
    skip: bool | None = None,
) -> None:
    """Set what is given: the customer's own list (every code a live section of the
    tenant, none twice, at most MAX_CUSTOMER_SECTIONS; empty: back to the tenant's
    appliesToAll sections) and whether its invoices skip sections."""
    if codes is not None:
        listed = list(codes)
        if len(listed) > MAX_CUSTOMER_SECTIONS:
            raise ValidationFailed(
                f"invoiceCustomSectionCodes takes at most {MAX_CUSTOMER_SECTIONS} codes"
            )
        if len(set(listed)) != len(listed):
            raise ValidationFailed("invoiceCustomSectionCodes names a code twice")
        known = set(
            session.execute(
                select(InvoiceCustomSectionRow.code).where(
                    InvoiceCustomSectionRow.tenant_id == tenant_id,
                    InvoiceCustomSectionRow.code.in_(listed),
                    InvoiceCustomSectionRow.deleted_at.is_(None),
                )
            ).scalars()
        )
        unknown = [c for c in listed if c not in known]
        if unknown:
            raise ValidationFailed(
                f"unknown invoice custom section(s): {', '.join(unknown)}",
                code="unknown_invoice_custom_section",
                details={"codes": unknown},
            )
        customer.invoice_custom_section_codes = listed
    if skip is not None:
        customer.skip_invoice_custom_sections = skip


def customer_codes(customer: CustomerRow) -> list[str]:
    """The customer's own list (empty: none of its own)."""
    return [str(c) for c in customer.invoice_custom_section_codes or []]


# -- the invoices' copies -------------------------------------------------------------


def invoice_copies(
    session: Session, tenant_id: str, customer_row_ids: Iterable[str]
) -> dict[str, tuple[SectionCopy, ...]]:
    """The sections each customer's invoices carry now, by customer row id: the one
    rule every invoice is given its copy by. At most two reads, one when the tenant
    has no sections."""
    wanted = set(customer_row_ids)
    out: dict[str, tuple[SectionCopy, ...]] = {cid: () for cid in wanted}
    if not wanted:
        return out
    rows = session.execute(
        select(InvoiceCustomSectionRow)
        .where(
            InvoiceCustomSectionRow.tenant_id == tenant_id,
            InvoiceCustomSectionRow.deleted_at.is_(None),
        )
        .order_by(InvoiceCustomSectionRow.created_at, InvoiceCustomSectionRow.code)
    ).scalars()
    live = list(rows)
    if not live:
        return out
    by_code = {row.code: _copy(row) for row in live}
    defaults = tuple(by_code[row.code] for row in live if row.applies_to_all)
    ids = sorted(wanted)
    for first in range(0, len(ids), 5_000):  # bounded IN lists
        chunk = ids[first : first + 5_000]
        for cid, codes, skip in session.execute(
            select(
                CustomerRow.id,
                CustomerRow.invoice_custom_section_codes,
                CustomerRow.skip_invoice_custom_sections,
            ).where(CustomerRow.tenant_id == tenant_id, CustomerRow.id.in_(chunk))
        ):
            if skip:
                continue
            own = tuple(by_code[c] for c in codes or [] if c in by_code)
            out[cid] = own if codes else defaults
    return out


def _copy(row: InvoiceCustomSectionRow) -> SectionCopy:
    return SectionCopy(
        code=row.code, display_name=row.display_name or row.name, details=row.details
    )


def copy_rows(invoice_id: str, copies: Sequence[SectionCopy]) -> list[InvoiceSectionCopyRow]:
    """The invoice_section_copies rows of an invoice's copy, in print order."""
    return [
        InvoiceSectionCopyRow(
            id=new_id("isc"),
            invoice_id=invoice_id,
            position=i,
            code=c.code,
            display_name=c.display_name,
            details=c.details,
        )
        for i, c in enumerate(copies)
    ]


def copy_tuples(invoice_id: str, copies: Sequence[SectionCopy]) -> list[tuple[object, ...]]:
    """The same rows as plain tuples in table column order, for a bulk insert."""
    ids = new_ids("isc", len(copies))
    rows = []
    for i, c in enumerate(copies):
        values = {
            "id": ids[i],
            "invoice_id": invoice_id,
            "position": i,
            "code": c.code,
            "display_name": c.display_name,
            "details": c.details,
        }
        rows.append(tuple(values[name] for name in _COPY_COLUMNS))
    return rows


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


SECTION_COPIES = _table(InvoiceSectionCopyRow)
_COPY_COLUMNS = tuple(c.name for c in SECTION_COPIES.columns)


def copy_onto(session: Session, invoice: InvoiceRow) -> None:
    """Give a DRAFT the current copy of its customer's sections (replacing the old);
    an invoice past DRAFT keeps the copy it was finalized with."""
    if invoice.status != "DRAFT":
        return
    copies = invoice_copies(session, invoice.tenant_id, [invoice.customer_id])
    current = copies[invoice.customer_id]
    held = [SectionCopy(r.code, r.display_name, r.details) for r in invoice.custom_sections]
    if held == list(current):
        return
    invoice.custom_sections = copy_rows(invoice.id, current)

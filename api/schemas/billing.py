"""Bill runs, invoices with their lines, payments and tax overrides."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from api.schemas.common import Body, Public
from api.schemas.custom_sections import SectionCopyPublic
from api.schemas.money import (
    Decimal_,
    StartInstant,
    StateCheckedDecimal,
    Timestamp,
    end_instant,
    money,
    plain,
)
from invoicing.models import BillRunRow, InvoiceLineRow, InvoiceRow
from invoicing.specs import LineTaxOverride, TaxOverrideSpec

# -- bill runs -------------------------------------------------------------------------


class BillRunCreate(Body):
    period_start: StartInstant
    period_end: Annotated[datetime, BeforeValidator(end_instant)]


class BillRunAccepted(Public):
    id: str
    status: str


class BillRunPublic(Public):
    id: str
    status: str = Field(description="pending | running | completed | failed")
    period_start: Timestamp
    period_end: Timestamp
    total: int
    processed: int
    failed: int
    invoices_created: int
    failures: list[dict[str, Any]]
    error: str | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None

    @classmethod
    def from_row(cls, row: BillRunRow) -> BillRunPublic:
        return cls(
            id=row.id,
            status=row.status,
            period_start=row.period_start,
            period_end=row.period_end,
            total=row.total,
            processed=row.processed,
            failed=row.failed,
            invoices_created=row.invoices_created,
            failures=row.failures or [],
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


# -- invoices --------------------------------------------------------------------------


class InvoiceLinePublic(Public):
    id: str
    type: str
    description: str
    metric: str | None
    group: dict[str, Any]
    charge_id: str | None
    quantity: Decimal_
    unit_amount: Decimal_
    amount: Decimal_
    discount_amount: Decimal_
    tax_rate: Decimal_
    tax_amount: Decimal_
    period_start: Timestamp | None
    period_end: Timestamp | None
    adjusted: bool = Field(default=False, description="A fee adjustment overrides the rating")

    @classmethod
    def from_row(cls, row: InvoiceLineRow, currency: str) -> InvoiceLinePublic:
        return cls(
            id=row.id,
            type=row.type,
            description=row.description,
            metric=row.metric,
            group=row.group or {},
            charge_id=row.charge_id,
            quantity=plain(row.quantity),
            unit_amount=plain(row.unit_amount),
            amount=money(row.amount, currency),
            discount_amount=money(row.discount_amount, currency),
            tax_rate=plain(row.tax_rate),
            tax_amount=money(row.tax_amount, currency),
            period_start=row.period_start,
            period_end=row.period_end,
            adjusted=row.adjustment is not None,
        )


class InvoicePublic(Public):
    id: str
    number: str | None
    type: str = Field(description="subscription | progressive_billing | one_off | credit")
    customer_id: str
    subscription_id: str | None
    bill_run_id: str | None
    status: str
    currency: str
    period_start: Timestamp
    period_end: Timestamp
    issued_at: Timestamp | None
    due_at: Timestamp | None
    subtotal: Decimal_
    discount_total: Decimal_
    tax_total: Decimal_
    credit_total: Decimal_
    total: Decimal_
    amount_paid: Decimal_
    amount_due: Decimal_
    created_at: Timestamp
    lines: list[InvoiceLinePublic]
    regenerated_from: str | None = Field(
        default=None, description="the VOID invoice this one was regenerated from"
    )
    billing_entity_code: str | None = Field(
        default=None,
        description="Its seller: recorded at finalize; a draft shows its customer's entity",
    )
    custom_sections: list[SectionCopyPublic] = Field(
        default_factory=list,
        description="The invoice's copy of its custom sections (frozen at finalize)",
    )

    @classmethod
    def from_row(cls, row: InvoiceRow) -> InvoicePublic:
        cur = row.currency
        return cls(
            id=row.id,
            number=row.number,
            type=row.type,
            customer_id=row.customer.external_id,
            subscription_id=row.subscription_id,
            bill_run_id=row.bill_run_id,
            status=row.status,
            currency=cur,
            period_start=row.period_start,
            period_end=row.period_end,
            issued_at=row.issued_at,
            due_at=row.due_at,
            subtotal=money(row.subtotal, cur),
            discount_total=money(row.discount_total, cur),
            tax_total=money(row.tax_total, cur),
            credit_total=money(row.credit_total, cur),
            total=money(row.total, cur),
            amount_paid=money(row.amount_paid, cur),
            amount_due=money(row.amount_due, cur),
            created_at=row.created_at,
            regenerated_from=row.regenerated_from,
            billing_entity_code=_entity_code(row),
            lines=[InvoiceLinePublic.from_row(line, cur) for line in row.lines],
            custom_sections=[SectionCopyPublic.from_row(s) for s in row.custom_sections],
        )


def _entity_code(row: InvoiceRow) -> str | None:
    entity = row.billing_entity or row.customer.billing_entity
    return entity.code if entity is not None else None


class FinalizeAllResult(Public):
    finalized: int
    invoice_ids: list[str]


class LineTaxIn(Body):
    id: str
    tax_amount: StateCheckedDecimal


class TaxOverride(Body):
    """Per line (`lines`) and/or a new tax total, shown as a TAX_ADJUSTMENT line."""

    tax_total: StateCheckedDecimal = None
    reason: str | None = None
    lines: list[LineTaxIn] | None = None

    def to_spec(self) -> TaxOverrideSpec:
        return TaxOverrideSpec(
            tax_total=self.tax_total,
            reason=self.reason,
            lines=tuple(LineTaxOverride(ln.id, ln.tax_amount) for ln in self.lines or ()),
        )

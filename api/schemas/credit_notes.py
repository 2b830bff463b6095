"""Credit notes and their estimate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas.common import Body, Public
from api.schemas.money import Decimal_, StateCheckedDecimal, Timestamp, money
from invoicing.credit_notes import CreditNoteSpec, Estimate
from invoicing.models import CreditNoteRow

Reason = Literal[
    "DUPLICATE", "FRAUDULENT", "ORDER_CHANGE", "PRORATION", "PRODUCT_UNSATISFACTORY", "OTHER"
]
NoteType = Literal["offset", "credit", "refund"]


class CreditNoteCreate(Body):
    invoice_id: str = Field(min_length=1, max_length=40)
    amount: StateCheckedDecimal
    reason: Reason
    type: NoteType = Field(
        default="offset",
        description="offset: lowers what is due · credit: customer balance for later "
        "invoices · refund: money back through the provider, or recorded",
    )
    description: str | None = Field(default=None, max_length=2000)

    def to_spec(self) -> CreditNoteSpec:
        return CreditNoteSpec(
            self.invoice_id, self.amount, self.reason, self.type, self.description
        )


class CreditNotePublic(Public):
    id: str
    number: str
    invoice_id: str
    customer_id: str = Field(description="the customer's external id")
    status: str = Field(description="DRAFT | ISSUED | APPLIED | VOID")
    type: str
    amount: Decimal_
    currency: str
    reason: str
    description: str | None
    balance: Decimal_ = Field(description="a credit note's balance not yet used by invoices")
    refund_status: str | None = Field(
        description="a refund's: pending | succeeded | failed | recorded (null before apply)"
    )
    created_at: Timestamp
    issued_at: Timestamp | None
    applied_at: Timestamp | None
    voided_at: Timestamp | None

    @classmethod
    def from_row(cls, row: CreditNoteRow) -> CreditNotePublic:
        cur = row.currency
        return cls(
            id=row.id,
            number=row.number,
            invoice_id=row.invoice_id,
            customer_id=row.customer.external_id,
            status=row.status,
            type=row.type,
            amount=money(row.amount, cur),
            currency=cur,
            reason=row.reason,
            description=row.description,
            balance=money(row.balance, cur),
            refund_status=row.refund_status,
            created_at=row.created_at,
            issued_at=row.issued_at,
            applied_at=row.applied_at,
            voided_at=row.voided_at,
        )


class EstimatePublic(Public):
    invoice_id: str
    currency: str
    creditable_amount: Decimal_
    refundable_amount: Decimal_

    @classmethod
    def of(cls, estimate: Estimate) -> EstimatePublic:
        cur = estimate.currency
        return cls(
            invoice_id=estimate.invoice_id,
            currency=cur,
            creditable_amount=money(estimate.creditable, cur),
            refundable_amount=money(estimate.refundable, cur),
        )


class VoidCreditNote(Body):
    type: Literal["credit", "refund"]
    amount: StateCheckedDecimal | None = None


class VoidInvoice(Body):
    credit_note: VoidCreditNote | None = None

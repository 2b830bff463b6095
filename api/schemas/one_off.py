"""One-off invoices and fee adjustments of DRAFT lines."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas.billing import InvoicePublic
from api.schemas.common import Body
from api.schemas.money import Decimal_, StateCheckedDecimal, money, plain
from invoicing.adjustments import AdjustmentPreview, AdjustmentSpec
from invoicing.one_off import OneOffLineSpec, OneOffSpec


class OneOffLineIn(Body):
    """An add-on (`addOnCode`, its name and amount) or a described charge
    (`description` and `unitAmount`); exactly one of addOnCode and description."""

    add_on_code: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    quantity: Decimal_
    unit_amount: Decimal_ | None = None

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> OneOffLineSpec:
        return OneOffLineSpec(
            quantity=self.quantity,
            add_on_code=self.add_on_code,
            description=self.description,
            unit_amount=self.unit_amount,
        )


class OneOffCreate(Body):
    customer_id: str = Field(min_length=1, max_length=200, description="The customer's externalId")
    currency: str = Field(min_length=3, max_length=3)
    lines: list[OneOffLineIn]

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> OneOffSpec:
        return OneOffSpec(
            customer_id=self.customer_id,
            currency=self.currency,
            lines=tuple(line.to_spec() for line in self.lines),
        )


class AdjustmentIn(Body):
    """New units and/or unit price of a DRAFT's line; `preview` changes nothing."""

    # Parsed by the domain after the state check: a non-DRAFT is a 409 whatever the values.
    quantity: StateCheckedDecimal = None
    unit_amount: StateCheckedDecimal = None
    preview: bool = False

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> AdjustmentSpec:
        return AdjustmentSpec(quantity=self.quantity, unit_amount=self.unit_amount)


def preview_public(preview: AdjustmentPreview) -> InvoicePublic:
    """The invoice as the adjustment would make it (the stored invoice is unchanged)."""
    shown = InvoicePublic.from_row(preview.invoice)
    cur = shown.currency
    changed = preview.line
    lines = [
        line.model_copy(
            update={
                "quantity": plain(changed.quantity),
                "unit_amount": plain(changed.unit_amount),
                "amount": money(changed.amount, cur),
                "tax_amount": money(changed.tax_amount, cur),
                "adjusted": True,
            }
        )
        if line.id == changed.line_id
        else line
        for line in shown.lines
    ]
    result = preview.totals
    return shown.model_copy(
        update={
            "lines": lines,
            "subtotal": money(result.subtotal, cur),
            "discount_total": money(result.discount_total, cur),
            "tax_total": money(result.tax_total, cur),
            "credit_total": money(result.credit_total, cur),
            "total": money(result.total, cur),
            "amount_due": money(result.amount_due, cur),
        }
    )

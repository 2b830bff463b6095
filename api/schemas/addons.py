"""Add-ons: catalog products billed once, on one-off invoices."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Code, Public
from api.schemas.money import Decimal_, Timestamp, plain
from invoicing.addons import AddOnPatch, AddOnSpec
from invoicing.models import AddOnRow


class AddOnCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    amount: Decimal_
    currency: str = Field(min_length=3, max_length=3)
    description: str | None = None
    tax_codes: list[str] | None = None

    # API.md: a field the contract does not know is a 422, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> AddOnSpec:
        return AddOnSpec(
            code=self.code,
            name=self.name,
            amount=self.amount,
            currency=self.currency,
            description=self.description,
            tax_codes=tuple(self.tax_codes or ()),
        )


class AddOnUpdate(Body):
    """Only the fields sent change; null clears the description."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    amount: Decimal_ | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    description: str | None = None
    tax_codes: list[str] | None = None

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> AddOnPatch:
        return AddOnPatch(
            name=self.name,
            amount=self.amount,
            currency=self.currency,
            description=self.description,
            tax_codes=None if self.tax_codes is None else tuple(self.tax_codes),
            sent=frozenset(self.model_fields_set),
        )


class AddOnPublic(Public):
    id: str
    code: str
    name: str
    description: str | None
    amount: Decimal_
    currency: str
    tax_codes: list[str]
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: AddOnRow) -> AddOnPublic:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            description=row.description,
            amount=plain(row.amount),
            currency=row.currency,
            tax_codes=list(row.tax_codes or []),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

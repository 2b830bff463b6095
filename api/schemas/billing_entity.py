"""The tenant's billing entity: the seller its invoice documents name."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Public
from api.schemas.money import Timestamp
from invoicing.models import BillingEntityRow
from invoicing.specs import BillingEntitySpec


class BillingEntityPut(Body):
    """The whole entity: a PUT replaces every field (an absent optional one is cleared)."""

    legal_name: str = Field(min_length=1, max_length=300)
    address_line1: str = Field(min_length=1, max_length=300)
    address_line2: str | None = Field(default=None, max_length=300)
    city: str = Field(min_length=1, max_length=200)
    postal_code: str = Field(min_length=1, max_length=40)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. DE")
    tax_id: str | None = Field(default=None, max_length=100, description="VAT or GST number")
    email: str | None = Field(default=None, max_length=300)
    iban: str | None = Field(default=None, max_length=42, description="Shown for bank transfers")

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> BillingEntitySpec:
        return BillingEntitySpec(
            legal_name=self.legal_name,
            address_line1=self.address_line1,
            address_line2=self.address_line2,
            city=self.city,
            postal_code=self.postal_code,
            country=self.country,
            tax_id=self.tax_id,
            email=self.email,
            iban=self.iban,
        )


class BillingEntityPublic(Public):
    legal_name: str
    address_line1: str
    address_line2: str | None
    city: str
    postal_code: str
    country: str
    tax_id: str | None
    email: str | None
    iban: str | None
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: BillingEntityRow) -> BillingEntityPublic:
        return cls(
            legal_name=row.legal_name,
            address_line1=row.address_line1,
            address_line2=row.address_line2,
            city=row.city,
            postal_code=row.postal_code,
            country=row.country,
            tax_id=row.tax_id,
            email=row.email,
            iban=row.iban,
            updated_at=row.updated_at,
        )

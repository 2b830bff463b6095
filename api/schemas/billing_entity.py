"""Billing entities: the sellers the tenant's invoice documents name
(docs/billing-entities.md). `BillingEntityPut`/`BillingEntityPublic` are the default
entity as `GET/PUT /billing-entity` show it; the others are `/billing-entities`."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Code, Public
from api.schemas.money import Timestamp
from invoicing.billing_entities import EntityPatch, EntitySpec, Seller, seller_name
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
    address_line1: str | None
    address_line2: str | None
    city: str | None
    postal_code: str | None
    country: str | None
    tax_id: str | None
    email: str | None
    iban: str | None
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: BillingEntityRow) -> BillingEntityPublic:
        return cls(
            legal_name=seller_name(row),
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


class _SellerFields(Body):
    legal_name: str | None = Field(default=None, min_length=1, max_length=300)
    address_line1: str | None = Field(default=None, max_length=300)
    address_line2: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=40)
    country: str | None = Field(
        default=None, min_length=2, max_length=2, description="ISO 3166-1 alpha-2"
    )
    tax_id: str | None = Field(default=None, max_length=100, description="VAT or GST number")
    email: str | None = Field(default=None, max_length=300)
    iban: str | None = Field(default=None, max_length=42)
    tax_codes: list[Code] | None = Field(
        default=None,
        max_length=20,
        description="Taxes of the tenant's table its customers pay where their place has none",
    )

    model_config = ConfigDict(extra="forbid")

    def seller(self) -> Seller:
        return Seller(
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


class BillingEntityCreate(_SellerFields):
    code: Code
    name: str = Field(min_length=1, max_length=300)
    invoice_prefix: str | None = Field(
        default=None,
        max_length=20,
        description="Its invoice numbers are PREFIX-000001…; default: the code upper-cased",
    )
    is_default: bool = False

    def to_spec(self) -> EntitySpec:
        return EntitySpec(
            code=self.code,
            name=self.name,
            seller=self.seller(),
            invoice_prefix=self.invoice_prefix,
            tax_codes=tuple(self.tax_codes or ()),
            is_default=self.is_default,
        )


# Seller fields a PATCH may clear with null (the others are required once set).
CLEARABLE = ("address_line2", "tax_id", "email", "iban")


class BillingEntityUpdate(_SellerFields):
    """What is sent changes; null clears addressLine2, taxId, email or iban."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    invoice_prefix: str | None = Field(default=None, max_length=20)
    is_default: bool | None = None

    def to_patch(self) -> EntityPatch:
        sent = self.model_fields_set
        cleared = frozenset(n for n in CLEARABLE if n in sent and getattr(self, n) is None)
        return EntityPatch(
            name=self.name,
            seller=self.seller(),
            cleared=cleared,
            invoice_prefix=self.invoice_prefix,
            tax_codes=tuple(self.tax_codes) if self.tax_codes is not None else None,
            is_default=self.is_default,
        )


class BillingEntityFull(Public):
    """A billing entity of `/billing-entities`."""

    code: str
    name: str
    is_default: bool
    invoice_prefix: str
    tax_codes: list[str]
    legal_name: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    postal_code: str | None
    country: str | None
    tax_id: str | None
    email: str | None
    iban: str | None
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None

    @classmethod
    def from_row(cls, row: BillingEntityRow) -> BillingEntityFull:
        return cls(
            code=row.code,
            name=row.name,
            is_default=row.is_default,
            invoice_prefix=row.invoice_prefix,
            tax_codes=list(row.tax_codes or []),
            legal_name=row.legal_name,
            address_line1=row.address_line1,
            address_line2=row.address_line2,
            city=row.city,
            postal_code=row.postal_code,
            country=row.country,
            tax_id=row.tax_id,
            email=row.email,
            iban=row.iban,
            created_at=row.created_at,
            updated_at=row.updated_at,
            archived_at=row.archived_at,
        )

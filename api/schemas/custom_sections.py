"""Invoice custom sections and the copies invoices carry (docs/invoice-custom-sections.md)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Code, Public
from api.schemas.money import Timestamp
from invoicing.custom_sections import SectionPatch, SectionSpec
from invoicing.models import InvoiceCustomSectionRow, InvoiceSectionCopyRow

# Limits (docs/invoice-custom-sections.md): long enough for a legal notice or bank
# details, short enough that one section stays within a page or two of the PDF.
MAX_NAME = 200
MAX_DESCRIPTION = 1_000
MAX_DETAILS = 4_000


class SectionCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=MAX_NAME)
    display_name: str | None = Field(
        default=None, max_length=MAX_NAME, description="The printed heading; the name if absent"
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    details: str = Field(min_length=1, max_length=MAX_DETAILS, description="The printed text")
    applies_to_all: bool = Field(
        default=False, description="On the invoices of every customer without a list of its own"
    )

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> SectionSpec:
        return SectionSpec(
            code=self.code,
            name=self.name,
            display_name=self.display_name,
            description=self.description,
            details=self.details,
            applies_to_all=self.applies_to_all,
        )


class SectionUpdate(Body):
    """Only the fields sent change; null clears displayName or description. The code
    is fixed."""

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    display_name: str | None = Field(default=None, max_length=MAX_NAME)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    details: str | None = Field(default=None, min_length=1, max_length=MAX_DETAILS)
    applies_to_all: bool | None = None

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> SectionPatch:
        return SectionPatch(
            name=self.name,
            display_name=self.display_name,
            description=self.description,
            details=self.details,
            applies_to_all=self.applies_to_all,
            sent=frozenset(self.model_fields_set),
        )


class SectionPublic(Public):
    id: str
    code: str
    name: str
    display_name: str | None
    description: str | None
    details: str
    applies_to_all: bool
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: InvoiceCustomSectionRow) -> SectionPublic:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            display_name=row.display_name,
            description=row.description,
            details=row.details,
            applies_to_all=row.applies_to_all,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class SectionCopyPublic(Public):
    """A section as the invoice prints it (its copy, frozen at finalize)."""

    code: str
    display_name: str
    details: str

    @classmethod
    def from_row(cls, row: InvoiceSectionCopyRow) -> SectionCopyPublic:
        return cls(code=row.code, display_name=row.display_name, details=row.details)

"""The neutral model of a billing document: an invoice or a credit note as it is shown.

Built from the ledger by a builder (`build.py` for invoices); rendered by `pdf.py` and
`ubl.py`, which read nothing else. Money is exact `Decimal`, already rounded on the
ledger's lines; renderers format, never compute new amounts, except the sums that
`taxes` and `totals` already state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from rating.money import canonical, minor_units, round_money

DocumentKind = Literal["invoice", "credit_note"]

# UNCL 5305 duty or tax category codes used here (EN 16931 BT-118/BT-151).
TaxCategory = Literal["S", "Z", "E"]

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
TITLES: dict[DocumentKind, str] = {"invoice": "Invoice", "credit_note": "Credit note"}


@dataclass(frozen=True)
class Party:
    """A seller or a buyer: legal name, postal address, tax id, contact."""

    name: str
    address_lines: tuple[str, ...] = ()
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    tax_id: str | None = None
    email: str | None = None
    customer_id: str | None = None  # the buyer's external id (the tenant's reference)

    @property
    def has_address(self) -> bool:
        """A postal address worth writing: at least a country (UBL needs one)."""
        return self.country is not None


@dataclass(frozen=True)
class Period:
    """Service dates, both inclusive."""

    start: date
    end: date


@dataclass(frozen=True)
class DocumentLine:
    """One line as shown. `kind` is the ledger's line type (CHARGE, USAGE_FEE, …)."""

    kind: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    tax_amount: Decimal
    metric: str | None = None
    discount_amount: Decimal = Decimal(0)  # this line's share of the discounts
    tax_rate: Decimal | None = None  # percent; None where the line is not taxed
    period: Period | None = None

    @property
    def billed(self) -> bool:
        """A line that bills goods or services (an EN 16931 invoice line); DISCOUNT
        lines are allowances, CREDIT and TAX_ADJUSTMENT lines carry no net amount."""
        return self.kind not in ("DISCOUNT", "CREDIT", "TAX_ADJUSTMENT")


@dataclass(frozen=True)
class TaxSubtotal:
    """The tax of one rate: the base it applies to (after the discounts allocated to
    it, `allowance`) and the tax of that base."""

    rate: Decimal
    category: TaxCategory
    taxable_amount: Decimal
    tax_amount: Decimal
    allowance: Decimal = Decimal(0)
    exemption_reason: str | None = None  # category E only


@dataclass(frozen=True)
class Totals:
    """subtotal − discount + tax = total; total − credit − amount paid = amount due."""

    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal
    credit: Decimal
    amount_paid: Decimal
    amount_due: Decimal


@dataclass(frozen=True)
class PaymentInstructions:
    """How to pay: the seller's account and the terms in words."""

    iban: str | None = None
    terms: str | None = None


@dataclass(frozen=True)
class DocumentSection:
    """An invoice custom section as printed: a heading and its text (which may hold
    line breaks)."""

    heading: str
    text: str


@dataclass(frozen=True)
class DocumentReference:
    """The invoice a credit note corrects."""

    number: str
    issue_date: date


@dataclass(frozen=True)
class Document:
    kind: DocumentKind
    number: str
    issue_date: date
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[DocumentLine, ...]
    taxes: tuple[TaxSubtotal, ...]
    totals: Totals
    due_date: date | None = None
    period: Period | None = None
    payment: PaymentInstructions = PaymentInstructions()
    notes: tuple[str, ...] = ()
    refers_to: DocumentReference | None = None  # credit notes: the invoice corrected
    sections: tuple[DocumentSection, ...] = ()  # invoices: their custom sections' copy

    @property
    def title(self) -> str:
        return TITLES[self.kind]


def long_date(value: date) -> str:
    """1 December 2026: unambiguous in every locale."""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def unit_price(amount: Decimal, currency: str) -> Decimal:
    """A unit price as shown: at least the currency's minor units (49.00), more where
    the price has them (0.0015)."""
    exact = canonical(amount)
    exponent = exact.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return exact if places > minor_units(currency) else round_money(amount, currency)

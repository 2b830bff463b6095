"""Our documents as Xero's Accounting API wants them (pure: no I/O, no clock).

An invoice becomes an ACCREC invoice and a credit note an ACCRECCREDIT credit note,
both AUTHORISED, with tax-exclusive lines (an invoice) or one tax-inclusive line (a
credit note). Our number is Xero's InvoiceNumber / CreditNoteNumber and our id its
Reference, which is how a record we created is found again. Amounts stay Decimal:
they reach Xero as exact JSON number literals.

Xero keeps a line's Quantity to 4 decimals and, with `unitdp=4`, its UnitAmount too,
and computes LineAmount = Quantity x UnitAmount rounded to 2 decimals. A line whose
quantity or unit price needs more precision, or whose product would not round to our
amount, is sent as 1 x its amount (the exact figures kept in its description), so the
invoice total in Xero is ours to the cent. TaxAmount is always sent: our tax engine
decided it, Xero must not recompute it from the account's default rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rating.money import round_money, to_decimal

INVOICE_TYPE = "ACCREC"
CREDIT_NOTE_TYPE = "ACCRECCREDIT"
UNIT_PLACES = 4  # with unitdp=4 Xero keeps four decimals of Quantity and UnitAmount
CONTACT_NUMBER_MAX = 50  # Xero's ContactNumber length limit
NAME_MAX = 255
SKIPPED_LINES = ("CREDIT",)  # shown on our invoice, not counted in it: the credit note is


def contact_number(customer: Mapping[str, Any]) -> str:
    """How our customer is known in Xero: its external id, or ours if that is too long."""
    external = str(customer.get("externalId") or "")
    if 0 < len(external) <= CONTACT_NUMBER_MAX:
        return external
    return str(customer["id"])[:CONTACT_NUMBER_MAX]


def contact(customer: Mapping[str, Any]) -> dict[str, Any]:
    """A new Xero contact for our customer."""
    body: dict[str, Any] = {
        "Name": str(customer["name"])[:NAME_MAX],
        "ContactNumber": contact_number(customer),
        "IsCustomer": True,
    }
    if customer.get("email"):
        body["EmailAddress"] = customer["email"]
    if customer.get("taxId"):
        body["TaxNumber"] = customer["taxId"]
    if customer.get("currency"):
        body["DefaultCurrency"] = customer["currency"]
    address = {
        xero: customer[ours]
        for ours, xero in (
            ("addressLine1", "AddressLine1"),
            ("addressLine2", "AddressLine2"),
            ("city", "City"),
            ("region", "Region"),
            ("postalCode", "PostalCode"),
            ("country", "Country"),
        )
        if customer.get(ours)
    }
    if address:
        body["Addresses"] = [{"AddressType": "POBOX", **address}]
    return body


def _decimal(value: Any, what: str) -> Decimal:
    return to_decimal(value, what=what)


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _day(value: Any, customer: Mapping[str, Any]) -> str | None:
    """A timestamp of ours as the calendar day it is for the customer (Xero's dates have
    no time): an invoice issued 23:30 UTC in Auckland is dated the next day there."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        zone = ZoneInfo(str(customer.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    day: date = moment.astimezone(zone).date()
    return day.isoformat()


def line_item(
    line: Mapping[str, Any], currency: str, account_code: str, tax_type: str | None
) -> dict[str, Any]:
    """One of our invoice lines as a Xero line item whose LineAmount is our amount."""
    quantity = _decimal(line["quantity"], "quantity")
    unit = _decimal(line["unitAmount"], "unitAmount")
    amount = _decimal(line["amount"], "amount")
    description = str(line.get("description") or line.get("type") or "Line")
    exact = (
        _places(quantity) <= UNIT_PLACES
        and _places(unit) <= UNIT_PLACES
        and quantity != 0
        and round_money(quantity * unit, currency) == amount
    )
    if not exact:
        description = f"{description} ({quantity:f} x {unit:f})"
        quantity, unit = Decimal(1), amount
    item: dict[str, Any] = {
        "Description": description[:4000],
        "Quantity": quantity,
        "UnitAmount": unit,
        "AccountCode": account_code,
        "TaxAmount": _decimal(line.get("taxAmount") or "0", "taxAmount"),
    }
    if tax_type:
        item["TaxType"] = tax_type
    return item


def invoice(
    body: Mapping[str, Any],
    customer: Mapping[str, Any],
    contact_id: str,
    account_code: str,
    tax_type: str | None,
) -> dict[str, Any]:
    """Our invoice (as its GET returns it) as a Xero ACCREC invoice."""
    currency = str(body["currency"])
    issued = _day(body.get("issuedAt") or body.get("createdAt"), customer)
    record: dict[str, Any] = {
        "Type": INVOICE_TYPE,
        "Contact": {"ContactID": contact_id},
        "InvoiceNumber": body.get("number") or body["id"],
        "Reference": body["id"],
        "CurrencyCode": currency,
        "Date": issued,
        "DueDate": _day(body.get("dueAt"), customer) or issued,
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
        "LineItems": [
            line_item(line, currency, account_code, tax_type)
            for line in body.get("lines") or ()
            if line.get("type") not in SKIPPED_LINES
        ],
    }
    return record


def credit_note(
    body: Mapping[str, Any],
    customer: Mapping[str, Any],
    credited: Mapping[str, Any] | None,
    contact_id: str,
    account_code: str,
    tax_type: str | None,
) -> dict[str, Any]:
    """Our credit note as a Xero ACCRECCREDIT credit note: one line of its amount, which
    (like the amount due it lowers) includes tax."""
    invoice_number = (credited or {}).get("number") or body.get("invoiceId")
    reason = str(body.get("reason") or "OTHER").replace("_", " ").lower()
    description = body.get("description") or f"Credit for invoice {invoice_number} ({reason})"
    item: dict[str, Any] = {
        "Description": str(description)[:4000],
        "Quantity": Decimal(1),
        "UnitAmount": _decimal(body["amount"], "amount"),
        "AccountCode": account_code,
    }
    if tax_type:
        item["TaxType"] = tax_type
    return {
        "Type": CREDIT_NOTE_TYPE,
        "Contact": {"ContactID": contact_id},
        "CreditNoteNumber": body["number"],
        "Reference": body["id"],
        "CurrencyCode": body["currency"],
        "Date": _day(body.get("issuedAt") or body.get("createdAt"), customer),
        "LineAmountTypes": "Inclusive",
        "Status": "AUTHORISED",
        "LineItems": [item],
    }

"""Our documents as QuickBooks Online entities: pure functions, no I/O.

An invoice becomes an `Invoice`, a credit note a `CreditMemo`, our customer a
`Customer` found by its `DisplayName`. Amounts are exact Decimals, sent as JSON number
literals with the digits we hold (`dumps_exact`), never through a float.

Lines: every line but CREDIT (a credit note applied to the invoice, which reaches
QuickBooks as its own CreditMemo) and tax-only TAX_ADJUSTMENT lines is a
`SalesItemLineDetail` line on the connection's item; a DISCOUNT line (negative in our
invoice) is a `DiscountLineDetail` line of the positive amount. QuickBooks checks that
Amount = Qty x UnitPrice (rounded to the currency), so Qty and UnitPrice are sent only
where that holds exactly; a line rated otherwise (tiers, minimums) carries its Amount
alone. The invoice's tax total is sent as `TxnTaxDetail.TotalTax`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from invoicing.erp.base import Document, SyncError
from rating.money import EXACT, round_money, to_decimal

DOC_NUMBER_MAX = 21  # QuickBooks' limit on DocNumber
DISPLAY_NAME_MAX = 500
REQUEST_ID_MAX = 50  # QuickBooks' limit on requestid
SKIPPED_LINES = frozenset({"CREDIT"})

Entity = dict[str, Any]


def query_literal(value: str) -> str:
    """A string as a literal of QuickBooks' query language: quoted, with `\\` and `'`
    escaped by a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def display_name(customer: Mapping[str, Any]) -> str:
    """The customer's name in QuickBooks (unique there across customers and vendors)."""
    name = " ".join(str(customer.get("name") or customer.get("externalId") or "").split())
    if not name:
        raise SyncError("the customer has no name to show in QuickBooks")
    return name[:DISPLAY_NAME_MAX]


def customer_entity(customer: Mapping[str, Any]) -> Entity:
    """A new QuickBooks customer for ours (its currency cannot change later)."""
    entity: Entity = {
        "DisplayName": display_name(customer),
        "CurrencyRef": {"value": customer["currency"]},
        "Notes": f"Meterline customer {customer.get('externalId') or customer.get('id')}",
    }
    if customer.get("email"):
        entity["PrimaryEmailAddr"] = {"Address": customer["email"]}
    address = {
        key: customer[field]
        for key, field in (
            ("Line1", "addressLine1"),
            ("Line2", "addressLine2"),
            ("City", "city"),
            ("PostalCode", "postalCode"),
            ("CountrySubDivisionCode", "region"),
            ("Country", "country"),
        )
        if customer.get(field)
    }
    if address:
        entity["BillAddr"] = address
    return entity


def invoice_entity(document: Document, customer_id: str, item_id: str) -> Entity:
    """The QuickBooks Invoice for one of our invoices."""
    body = document.body
    currency = str(body["currency"])
    zone = _zone(document.customer)
    entity: Entity = {
        "CustomerRef": {"value": customer_id},
        "CurrencyRef": {"value": currency},
        "PrivateNote": f"Meterline invoice {document.id}",
        "Line": [
            line
            for raw in body.get("lines") or ()
            if (line := _invoice_line(raw, currency, item_id)) is not None
        ],
    }
    _doc_number(entity, body.get("number"))
    issued = body.get("issuedAt") or body.get("createdAt")
    if issued:
        entity["TxnDate"] = _local_date(issued, zone)
    if body.get("dueAt"):
        entity["DueDate"] = _local_date(body["dueAt"], zone)
    tax = _amount(body.get("taxTotal", "0"), "taxTotal")
    if tax != 0:
        entity["TxnTaxDetail"] = {"TotalTax": tax}
    if not entity["Line"]:
        raise SyncError(f"invoice {document.id} has no line to send to QuickBooks")
    return entity


def credit_memo_entity(document: Document, customer_id: str, item_id: str) -> Entity:
    """The QuickBooks CreditMemo for one of our credit notes: one line of its amount."""
    body = document.body
    currency = str(body["currency"])
    amount = _amount(body["amount"], "amount")
    credited = document.invoice or {}
    invoice_ref = credited.get("number") or body.get("invoiceId")
    description = f"Credit for invoice {invoice_ref} ({body.get('reason', 'OTHER')})"
    if body.get("description"):
        description += f": {body['description']}"
    entity: Entity = {
        "CustomerRef": {"value": customer_id},
        "CurrencyRef": {"value": currency},
        "PrivateNote": f"Meterline credit note {document.id} for invoice {body.get('invoiceId')}",
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": amount,
                "Description": description,
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item_id},
                    "Qty": Decimal(1),
                    "UnitPrice": amount,
                },
            }
        ],
    }
    _doc_number(entity, body.get("number"))
    issued = body.get("issuedAt") or body.get("createdAt")
    if issued:
        entity["TxnDate"] = _local_date(issued, _zone(document.customer))
    return entity


def request_id(scope: str, key: str, content: bytes) -> str:
    """QuickBooks' idempotency key for one write: the same for the same document and the
    same request body (a retry after a lost answer is replayed, never applied twice), new
    when the content or the SyncToken changed."""
    digest = hashlib.sha256(f"{scope}\n{key}\n".encode() + content).hexdigest()
    return f"ml-{digest}"[:REQUEST_ID_MAX]


def _invoice_line(raw: Mapping[str, Any], currency: str, item_id: str) -> Entity | None:
    kind = str(raw.get("type") or "")
    amount = _amount(raw["amount"], "lines.amount")
    if kind in SKIPPED_LINES or (kind == "TAX_ADJUSTMENT" and amount == 0):
        return None
    description = str(raw.get("description") or "")
    if kind == "DISCOUNT":
        return {
            "DetailType": "DiscountLineDetail",
            "Amount": -amount,
            "Description": description,
            "DiscountLineDetail": {"PercentBased": False},
        }
    detail: Entity = {"ItemRef": {"value": item_id}}
    quantity = _amount(raw.get("quantity", "1"), "lines.quantity")
    unit = _amount(raw.get("unitAmount", amount), "lines.unitAmount")
    with localcontext(EXACT):
        product = quantity * unit
    if round_money(product, currency) == amount:
        detail["Qty"] = quantity
        detail["UnitPrice"] = unit
    if raw.get("periodStart"):
        detail["ServiceDate"] = str(raw["periodStart"])[:10]
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": amount,
        "Description": description,
        "SalesItemLineDetail": detail,
    }


def _amount(value: Any, what: str) -> Decimal:
    try:
        return to_decimal(value, what=what)
    except ValueError as error:
        raise SyncError(str(error)) from None


def _doc_number(entity: Entity, number: Any) -> None:
    if not number:
        return  # QuickBooks numbers it
    if len(str(number)) > DOC_NUMBER_MAX:
        raise SyncError(f"number {number!r} is longer than QuickBooks' {DOC_NUMBER_MAX}")
    entity["DocNumber"] = str(number)


def _zone(customer: Mapping[str, Any]) -> ZoneInfo:
    try:
        return ZoneInfo(str(customer.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local_date(instant: str, zone: ZoneInfo) -> str:
    """An RFC 3339 instant as the date it was for the customer (QuickBooks' TxnDate)."""
    parsed = datetime.fromisoformat(str(instant).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    day: date = parsed.astimezone(zone).date()
    return day.isoformat()

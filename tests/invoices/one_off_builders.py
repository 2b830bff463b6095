"""Builders of the one-off, add-on and fee-adjustment tests: taxes, add-ons, and DRAFTs
written straight into the ledger (no bill run) with the lines a test needs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from invoicing import catalog, wallets
from invoicing.db import transaction
from invoicing.models import InvoiceLineRow, InvoiceRow, new_id
from rating.context import WalletDebit
from rating.money import ZERO
from rating.totals import totals
from tests.helpers.ledger_api import ApiClient
from tests.ledger import PERIOD_START


def vat(api: ApiClient, code: str = "vat20", rate: str = "20", **fields: Any) -> dict[str, Any]:
    """A tax of the tenant's table (France by default)."""
    body = {"code": code, "name": code.upper(), "rate": rate, "country": "FR", **fields}
    result: dict[str, Any] = api.ok("POST", "/taxes", json=body)
    return result


def add_on(api: ApiClient, code: str = "setup", amount: str = "33.33", **fields: Any) -> Any:
    body = {"code": code, "name": code.title(), "amount": amount, "currency": "USD", **fields}
    return api.ok("POST", "/add-ons", json=body)


@dataclass(frozen=True)
class Line:
    """A stored line of a test DRAFT."""

    type: str
    quantity: str
    unit_amount: str
    amount: str
    tax_rate: str = "0"
    tax_amount: str = "0"
    discount_amount: str = "0"
    description: str = ""
    charge_id: str | None = None
    metric: str | None = None


def draft(
    api: ApiClient,
    lines: list[Line],
    *,
    customer: str = "acme",
    wallet_credits: Decimal = ZERO,
    wallet_id: str | None = None,
) -> str:
    """A DRAFT subscription-type invoice with these lines and their exact totals; with
    `wallet_credits`, that much is debited from `wallet_id` for it (as Route does)."""
    with transaction(api.runtime.sessions) as session:
        customer_row = catalog.get_customer(session, api.tenant_id, customer)
        invoice = InvoiceRow(
            id=new_id("inv"),
            tenant_id=api.tenant_id,
            customer_id=customer_row.id,
            status="DRAFT",
            currency=customer_row.currency,
            period_start=PERIOD_START,
            period_end=PERIOD_START.replace(month=11),
            created_at=api.clock.now(),
            updated_at=api.clock.now(),
        )
        for position, ln in enumerate(lines):
            invoice.lines.append(
                InvoiceLineRow(
                    id=new_id("il"),
                    position=position,
                    type=ln.type,
                    description=ln.description or f"{ln.type.title()} {position}",
                    metric=ln.metric,
                    charge_id=ln.charge_id,
                    group={},
                    quantity=Decimal(ln.quantity),
                    unit_amount=Decimal(ln.unit_amount),
                    amount=Decimal(ln.amount),
                    discount_amount=Decimal(ln.discount_amount),
                    tax_rate=Decimal(ln.tax_rate),
                    tax_amount=Decimal(ln.tax_amount),
                )
            )
        result = totals(invoice.lines, credits=wallet_credits)
        invoice.subtotal = result.subtotal
        invoice.discount_total = result.discount_total
        invoice.tax_total = result.tax_total
        invoice.total = result.total
        invoice.credit_total = result.credit_total
        invoice.amount_due = result.amount_due
        session.add(invoice)
        session.flush()
        if wallet_credits > 0:
            assert wallet_id is not None
            wallets.deduct(
                session, api.tenant_id, invoice.id, [WalletDebit(wallet_id, wallet_credits)]
            )
        return invoice.id

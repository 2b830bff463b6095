"""Tests of the payment-provider adapters (invoicing/payments), each against a local
server that plays its vendor (tests/helpers/<vendor>_server.py); what they share."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from invoicing.payments.base import ChargeRequest, RefundRequest
from invoicing.payments.http import RetryPolicy
from tests.helpers.ledger_api import ApiClient

# No waiting between attempts: the tests count attempts, not seconds.
FAST = RetryPolicy(attempts=3, backoff=0)


def charge_request(
    customer: str, amount: str = "123.45", currency: str = "EUR", key: str = "inv_1/finalize"
) -> ChargeRequest:
    return ChargeRequest(
        tenant_id="ten_1",
        invoice_id="inv_1",
        invoice_number="ML-2026-0001",
        customer_reference=customer,
        amount=Decimal(amount),
        currency=currency,
        idempotency_key=key,
    )


def refund_request(
    reference: str, amount: str, currency: str = "EUR", key: str = "cn_1/refund"
) -> RefundRequest:
    return RefundRequest(reference, Decimal(amount), currency, key)


def connect(api: ApiClient, provider: str, config: dict[str, Any]) -> dict[str, Any]:
    """Connect `provider` through the API; the connection as answered (secrets masked)."""
    created = api.post("/payment-providers", json={"provider": provider, "config": config})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body

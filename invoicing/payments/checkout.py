"""Checkout pages (`POST /customers/{externalId}/checkout-url`): a page at the customer's
payment provider where the customer saves a payment method, paying nothing, for the
charges of later invoices; and what the provider's notification about it changes.

A page is asked in three short steps, no ledger lock held while the provider answers:

1. read the customer (not deleted): a payment provider set and connected, and an
   adapter that has such a page (`SavesPaymentMethods`; else `checkout_unsupported`);
   a key `<customer id>/checkout-<12 hex>` made for this page alone;
2. outside: ask the provider, the key as its idempotency key and as the reference its
   notification echoes back (Stripe metadata, GoCardless mandate metadata, Adyen
   merchantReference);
3. when the page named the customer's id at the provider and the customer had none
   (Adyen's shopperReference), store it.

Nothing is stored about the page itself: it is a door, and each call makes a new one.
The provider's notification that a method was saved (`record`, called by
notifications.py) finds the customer by the key, else by the customer's id at the
provider, in the connection's tenant only, and stores the method on it; later charges
at that provider use it (`ChargeRequest.payment_method`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInput
from invoicing.catalog import get_customer
from invoicing.models import CustomerRow, PaymentNotificationRow
from invoicing.payments import providers
from invoicing.payments.base import (
    CHECKOUT_KEY,
    CheckoutLink,
    CheckoutRequest,
    SavesPaymentMethods,
    WebhookResult,
    checkout_customer,
)
from invoicing.payments.providers import GatewayFactory

# As a payment page's (links.LINK_LIFETIME): Stripe Checkout allows at most 24 hours.
CHECKOUT_LIFETIME = timedelta(hours=23)


@dataclass(frozen=True)
class IssuedCheckout:
    customer_external_id: str
    provider: str
    link: CheckoutLink


@dataclass(frozen=True)
class _Ask:
    customer_id: str
    provider: str
    config: dict[str, Any]
    request: CheckoutRequest


def checkout_url(
    sessions: sessionmaker[Session],
    tenant_id: str,
    external_id: str,
    now: datetime,
    gateways: GatewayFactory,
    *,
    success_url: str | None = None,
    cancel_url: str | None = None,
) -> IssuedCheckout:
    """A new page where the customer saves a payment method at its provider."""
    with sessions() as session:
        ask = _begin(session, tenant_id, external_id, now, success_url, cancel_url)
    gateway = gateways(ask.provider, ask.config)
    try:
        if not isinstance(gateway, SavesPaymentMethods):
            raise _unsupported(ask.provider)
        link = gateway.checkout(ask.request)
    finally:
        gateway.close()
    if link.customer_reference and not ask.request.customer_reference:
        with sessions() as session, session.begin():
            row = session.get(CustomerRow, ask.customer_id)
            if row is not None and not row.payment_provider_customer_id:
                row.payment_provider_customer_id = link.customer_reference[:200]
    return IssuedCheckout(external_id, ask.provider, link)


def _unsupported(provider: str) -> InvalidInput:
    return InvalidInput(
        f"payment provider {provider!r} has no page to save a payment method without a "
        "payment; the method is saved with the first payment of an invoice instead "
        "(POST /invoices/{id}/payment-url)",
        code="checkout_unsupported",
        details={"provider": provider},
    )


def _begin(
    session: Session,
    tenant_id: str,
    external_id: str,
    now: datetime,
    success_url: str | None,
    cancel_url: str | None,
) -> _Ask:
    customer = get_customer(session, tenant_id, external_id)
    if not customer.payment_provider:
        raise InvalidInput(
            f"customer {external_id!r} has no paymentProvider; set one to make a checkout page",
            code="no_payment_provider",
        )
    connection = providers.find(session, tenant_id, customer.payment_provider)
    if connection is None:
        raise InvalidInput(
            f"payment provider {customer.payment_provider!r} is not connected for this tenant",
            code="provider_not_connected",
        )
    if not providers.saves_payment_methods(connection.provider):
        raise _unsupported(connection.provider)
    request = CheckoutRequest(
        tenant_id=tenant_id,
        customer_id=customer.id,
        customer_external_id=customer.external_id,
        currency=customer.currency,
        idempotency_key=f"{customer.id}{CHECKOUT_KEY}{secrets.token_hex(6)}",
        expires_at=now + CHECKOUT_LIFETIME,
        customer_reference=customer.payment_provider_customer_id,
        customer_email=customer.email,
        customer_name=customer.name,
        success_url=success_url,
        cancel_url=cancel_url,
    )
    return _Ask(customer.id, connection.provider, dict(connection.config), request)


def record(
    session: Session,
    tenant_id: str,
    provider: str,
    result: WebhookResult,
    row: PaymentNotificationRow,
    now: datetime,
) -> None:
    """What a final notice about a saved method changes: the method stored on its
    customer (succeeded), or taken off when it is the one stored (a mandate cancelled,
    failed or expired). The effect and why, on the notification `row`."""
    customer = _customer(session, tenant_id, provider, result)
    if customer is None:
        row.detail = "no customer of ours has this checkout or provider customer id"
        return
    if customer.payment_provider != provider:
        row.detail = f"the customer's payment provider is {customer.payment_provider!r} now"
        return
    if not result.succeeded:
        if result.method and customer.payment_method_id == result.method:
            customer.payment_method_id = customer.payment_method_provider = None
            customer.payment_method_saved_at = None
            row.effect, row.detail = "applied", "the saved payment method ended"
        else:
            row.detail = "not the saved payment method"
        return
    if not result.method:
        row.detail = "the notice does not name the saved method"
        return
    if (customer.payment_method_id, customer.payment_method_provider) == (result.method, provider):
        row.detail = "this payment method is saved already"
        return
    customer.payment_method_id = result.method[:200]
    customer.payment_method_provider = provider
    customer.payment_method_saved_at = now
    if result.customer_reference and not customer.payment_provider_customer_id:
        customer.payment_provider_customer_id = result.customer_reference[:200]
    row.effect, row.detail = "applied", f"payment method saved for {customer.external_id}"


def _customer(
    session: Session, tenant_id: str, provider: str, result: WebhookResult
) -> CustomerRow | None:
    live = (CustomerRow.tenant_id == tenant_id, CustomerRow.deleted_at.is_(None))
    ours = checkout_customer(result.ours)
    if ours is not None:
        found = session.execute(
            select(CustomerRow).where(*live, CustomerRow.id == ours).with_for_update()
        ).scalar_one_or_none()
        if found is not None:
            return found
    named = []
    if result.customer_reference:
        named.append(CustomerRow.payment_provider_customer_id == result.customer_reference)
    if result.method:
        # A GoCardless mandate is both the method and the customer's id there.
        named.append(CustomerRow.payment_provider_customer_id == result.method)
        named.append(CustomerRow.payment_method_id == result.method)
    if not named:
        return None
    candidates = (
        session.execute(
            select(CustomerRow)
            .where(*live, CustomerRow.payment_provider == provider, or_(*named))
            .order_by(CustomerRow.id)
            .limit(2)
            .with_for_update()
        )
        .scalars()
        .all()
    )
    # Two customers sharing one provider id: which one saved it is unknown.
    return candidates[0] if len(candidates) == 1 else None

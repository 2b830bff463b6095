"""Payments, payment providers and dunning."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.common import Page
from api.schemas.payments import (
    CheckoutUrlIn,
    CheckoutUrlPublic,
    DunningPolicyIn,
    DunningPolicyPublic,
    DunningStepList,
    DunningStepPublic,
    PaymentNotificationList,
    PaymentNotificationPublic,
    PaymentProviderCreate,
    PaymentProviderPublic,
    PaymentProviderUpdate,
    PaymentPublic,
    PaymentUrlIn,
    PaymentUrlPublic,
    WebhookReceipt,
)
from invoicing import dunning, invoices
from invoicing.pages import whole
from invoicing.payments import checkout, links, notifications, providers

router = APIRouter(tags=["payments"])


@router.get("/payments", summary="List payments, newest first")
def list_payments(
    session: SessionDep,
    tenant: TenantDep,
    invoice_id: str | None = Query(None, alias="invoiceId"),
    customer_id: str | None = Query(None, alias="customerId"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page[PaymentPublic]:
    page = invoices.list_payments(
        session,
        tenant,
        invoice_id=invoice_id,
        customer_external_id=customer_id,
        limit=limit,
        cursor=cursor,
    )
    return Page[PaymentPublic].of(page, PaymentPublic.from_row)


@router.get("/payments/{payment_id}", summary="Get a payment")
def get_payment(payment_id: str, session: SessionDep, tenant: TenantDep) -> PaymentPublic:
    return PaymentPublic.from_row(invoices.get_payment(session, tenant, payment_id))


# -- providers -------------------------------------------------------------------------


@router.post("/payment-providers", status_code=201, summary="Connect a payment provider")
def connect_provider(
    body: PaymentProviderCreate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> PaymentProviderPublic:
    row = providers.connect(
        session, tenant, body.provider, body.config, runtime.clock.now(), runtime.settings.secrets
    )
    record(session, "payment_provider.connected", "payment_provider", row.id, sent(body))
    return PaymentProviderPublic.from_row(row)


@router.get("/payment-providers", summary="The connected payment providers")
def list_providers(session: SessionDep, tenant: TenantDep) -> Page[PaymentProviderPublic]:
    return Page[PaymentProviderPublic].of(
        whole(providers.list_all(session, tenant)), PaymentProviderPublic.from_row
    )


@router.get("/payment-providers/{provider_id}", summary="Get a payment provider")
def get_provider(provider_id: str, session: SessionDep, tenant: TenantDep) -> PaymentProviderPublic:
    return PaymentProviderPublic.from_row(providers.get(session, tenant, provider_id))


@router.patch("/payment-providers/{provider_id}", summary="Change a provider's config")
def update_provider(
    provider_id: str,
    body: PaymentProviderUpdate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> PaymentProviderPublic:
    box = runtime.settings.secrets
    row = providers.update(session, tenant, provider_id, body.config, box)
    record(session, "payment_provider.updated", "payment_provider", provider_id, sent(body))
    return PaymentProviderPublic.from_row(row)


@router.delete("/payment-providers/{provider_id}", status_code=204, summary="Disconnect a provider")
def delete_provider(
    provider_id: str, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> Response:
    providers.delete(session, tenant, provider_id)
    record(session, "payment_provider.disconnected", "payment_provider", provider_id)
    return Response(status_code=204)


@router.post(
    "/payment-providers/{provider_id}/webhooks",
    summary="Where a provider posts payment results (its signature authenticates)",
    responses={400: {"description": "the signature, timestamp or shape is not the provider's"}},
)
async def provider_webhook(
    provider_id: str, request: Request, runtime: RuntimeDep
) -> WebhookReceipt:
    body = await request.body()
    receipt = await asyncio.to_thread(
        notifications.receive,
        runtime.sessions,
        provider_id,
        dict(request.headers),
        body,
        runtime.clock.now(),
        runtime.settings.secrets,
    )
    return WebhookReceipt(
        received=receipt.received,
        applied=receipt.applied,
        ignored=receipt.ignored,
        duplicates=receipt.duplicates,
    )


@router.get(
    "/payment-providers/{provider_id}/webhooks",
    summary="The provider's latest notifications and what each did, newest first",
)
def provider_notifications(
    provider_id: str,
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(100, ge=1, le=500),
) -> PaymentNotificationList:
    providers.get(session, tenant, provider_id)
    rows = notifications.recent(session, tenant, provider_id, limit)
    return PaymentNotificationList(data=[PaymentNotificationPublic.from_row(r) for r in rows])


@router.post(
    "/invoices/{invoice_id}/payment-url",
    status_code=201,
    summary="A hosted payment page for what the invoice owes (an open one is answered again)",
    description="201 with a new page; 200 with the open page answered again (same body).",
)
async def payment_url(
    invoice_id: str,
    runtime: RuntimeDep,
    tenant: TenantDep,
    response: Response,
    body: PaymentUrlIn | None = None,
) -> PaymentUrlPublic:
    wanted = body or PaymentUrlIn()
    issued = await asyncio.to_thread(
        links.payment_link,
        runtime.sessions,
        tenant,
        invoice_id,
        runtime.clock.now(),
        providers.gateways(runtime.settings.secrets),
        success_url=wanted.success_url,
        cancel_url=wanted.cancel_url,
    )
    if not issued.created:
        response.status_code = 200
    return PaymentUrlPublic.from_row(issued.attempt)


@router.post(
    "/customers/{external_id}/checkout-url",
    status_code=201,
    summary="A page at the customer's payment provider to save a payment method",
    description="Each call makes a new page; the provider's notification that the method "
    "was saved stores it on the customer (paymentMethod), and later charges use it.",
    responses={502: {"description": "the provider refused to make the page"}},
)
async def checkout_url(
    external_id: str, runtime: RuntimeDep, tenant: TenantDep, body: CheckoutUrlIn | None = None
) -> CheckoutUrlPublic:
    wanted = body or CheckoutUrlIn()
    issued = await asyncio.to_thread(
        checkout.checkout_url,
        runtime.sessions,
        tenant,
        external_id,
        runtime.clock.now(),
        providers.gateways(runtime.settings.secrets),
        success_url=wanted.success_url,
        cancel_url=wanted.cancel_url,
    )
    return CheckoutUrlPublic(
        customer_id=issued.customer_external_id,
        provider=issued.provider,
        url=issued.link.url,
        expires_at=issued.link.expires_at,
    )


# -- dunning ---------------------------------------------------------------------------


@router.put("/dunning", summary="Set the dunning schedule (days after dueAt)")
def set_dunning(
    body: DunningPolicyIn,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> DunningPolicyPublic:
    policy = dunning.set_policy(
        session,
        tenant,
        [s.after_days for s in body.steps],
        body.uncollectible_after_days,
        runtime.clock.now(),
    )
    record(session, "dunning_policy.updated", "dunning_policy", tenant, sent(body))
    return DunningPolicyPublic.of(policy)


@router.get("/dunning", summary="The dunning schedule")
def get_dunning(session: SessionDep, tenant: TenantDep) -> DunningPolicyPublic:
    return DunningPolicyPublic.of(dunning.policy(session, tenant))


@router.get("/invoices/{invoice_id}/dunning", summary="The dunning steps taken, oldest first")
def invoice_dunning(invoice_id: str, session: SessionDep, tenant: TenantDep) -> DunningStepList:
    rows = dunning.steps_of(session, tenant, invoice_id)
    return DunningStepList(data=[DunningStepPublic.from_row(r) for r in rows])

"""Taxes, coupons (and coupons applied to customers), wallets and their transactions."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.common import Page
from api.schemas.credits import (
    AppliedCouponCreate,
    AppliedCouponPublic,
    CouponCreate,
    CouponPublic,
    TaxCreate,
    TaxPublic,
    TopUpCreate,
    TopUpPublic,
    WalletCreate,
    WalletPublic,
    WalletTransactionPublic,
)
from invoicing import coupons, taxes, wallets

router = APIRouter(tags=["credits"])


@router.post("/taxes", status_code=201, summary="Create a tax rate of the local tax table")
def create_tax(
    body: TaxCreate, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> TaxPublic:
    row = taxes.create_tax(session, tenant, body.to_spec())
    record(session, "tax.created", "tax", row.code, sent(body))
    return TaxPublic.from_row(row)


@router.get("/taxes", summary="List tax rates")
def list_taxes(session: SessionDep, tenant: TenantDep) -> Page[TaxPublic]:
    return Page[TaxPublic].of(taxes.list_taxes(session, tenant), TaxPublic.from_row)


@router.get("/taxes/{code}", summary="Get a tax rate")
def get_tax(code: str, session: SessionDep, tenant: TenantDep) -> TaxPublic:
    return TaxPublic.from_row(taxes.get_tax(session, tenant, code))


@router.delete(
    "/taxes/{code}", status_code=204, response_class=Response, summary="Delete a tax rate"
)
def delete_tax(code: str, session: SessionDep, tenant: TenantDep, record: ActivityDep) -> None:
    taxes.delete_tax(session, tenant, code)
    record(session, "tax.deleted", "tax", code)


@router.post("/coupons", status_code=201, summary="Create a coupon")
def create_coupon(
    body: CouponCreate, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> CouponPublic:
    row = coupons.create_coupon(session, tenant, body.to_spec())
    record(session, "coupon.created", "coupon", row.code, sent(body))
    return CouponPublic.from_row(row)


@router.get("/coupons", summary="List coupons (deleted ones never), newest first")
def list_coupons(
    session: SessionDep,
    tenant: TenantDep,
    status: str | None = Query(None, pattern="^(active|inactive)$"),
    type: str | None = Query(None, pattern="^(percentage|fixed|fixed_amount)$"),
    frequency: str | None = Query(None, pattern="^(once|recurring|forever)$"),
) -> Page[CouponPublic]:
    page = coupons.list_coupons(session, tenant, status=status, kind=type, frequency=frequency)
    return Page[CouponPublic].of(page, CouponPublic.from_row)


@router.get("/coupons/{code}", summary="Get a coupon")
def get_coupon(code: str, session: SessionDep, tenant: TenantDep) -> CouponPublic:
    return CouponPublic.from_row(coupons.get_coupon(session, tenant, code))


@router.post("/customers/{external_id}/coupons", status_code=201, summary="Apply a coupon")
def apply_coupon(
    external_id: str,
    body: AppliedCouponCreate,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
    runtime: RuntimeDep,
) -> AppliedCouponPublic:
    now = runtime.clock.now()
    row = coupons.apply_coupon(session, tenant, external_id, body.to_spec(), now)
    changes = {**(sent(body) or {}), "appliedCouponId": row.id}
    record(session, "customer.coupon_applied", "customer", external_id, changes)
    return AppliedCouponPublic.from_row(row, external_id)


@router.get("/customers/{external_id}/coupons", summary="Coupons applied to a customer")
def customer_coupons(
    external_id: str, session: SessionDep, tenant: TenantDep
) -> Page[AppliedCouponPublic]:
    page = coupons.applied_coupons(session, tenant, external_id)
    return Page[AppliedCouponPublic].of(
        page, lambda row: AppliedCouponPublic.from_row(row, external_id)
    )


@router.delete(
    "/customers/{external_id}/coupons/{applied_id}",
    status_code=204,
    response_class=Response,
    summary="Stop an applied coupon",
)
def remove_coupon(
    external_id: str, applied_id: str, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> None:
    coupons.remove_applied_coupon(session, tenant, external_id, applied_id)
    changes = {"appliedCouponId": applied_id}
    record(session, "customer.coupon_removed", "customer", external_id, changes)


@router.post("/wallets", status_code=201, summary="Create a prepaid wallet")
def create_wallet(
    body: WalletCreate,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
    runtime: RuntimeDep,
) -> WalletPublic:
    now, due_days = runtime.clock.now(), runtime.settings.invoice_due_days
    row = wallets.create_wallet(session, tenant, body.to_spec(), now=now, due_days=due_days)
    record(session, "wallet.created", "wallet", row.id, sent(body))
    return WalletPublic.from_row(row)


@router.get("/wallets", summary="List wallets")
def list_wallets(
    session: SessionDep,
    tenant: TenantDep,
    customer_id: str | None = Query(None, alias="customerId"),
) -> Page[WalletPublic]:
    page = wallets.list_wallets(session, tenant, customer_id)
    return Page[WalletPublic].of(page, WalletPublic.from_row)


@router.get("/wallets/{wallet_id}", summary="Get a wallet")
def get_wallet(wallet_id: str, session: SessionDep, tenant: TenantDep) -> WalletPublic:
    return WalletPublic.from_row(wallets.get_wallet(session, tenant, wallet_id))


@router.post("/wallets/{wallet_id}/transactions", status_code=201, summary="Top up a wallet")
def top_up(
    wallet_id: str,
    body: TopUpCreate,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
    runtime: RuntimeDep,
) -> TopUpPublic:
    rows = wallets.fund(
        session,
        tenant,
        wallet_id,
        paid=body.paid_credits,
        granted=body.credits + body.granted_credits,
        now=runtime.clock.now(),
        due_days=runtime.settings.invoice_due_days,
    )
    record(session, "wallet.topped_up", "wallet", wallet_id, sent(body))
    wallet = wallets.get_wallet(session, tenant, wallet_id)
    made = [WalletTransactionPublic.from_row(row, wallet.currency) for row in rows]
    return TopUpPublic(transaction=made[0], transactions=made, wallet=WalletPublic.from_row(wallet))

"""Taxes, coupons (and coupons applied to customers), wallets and their transactions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from api import serialize
from api.deps import SessionDep, TenantDep
from api.schemas import AppliedCouponCreate, CouponCreate, TaxCreate, TopUpCreate, WalletCreate
from invoicing import coupons, taxes, wallets
from invoicing.catalog import get_customer, parse_decimal
from invoicing.models import AppliedCouponRow, CouponRow, CustomerRow, TaxRow, WalletRow

router = APIRouter(tags=["credits"])


@router.post("/taxes", status_code=201, summary="Create a tax rate of the local tax table")
def create_tax(body: TaxCreate, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.tax(taxes.create_tax(session, tenant, body.doc()))


@router.get("/taxes", summary="List tax rates")
def list_taxes(session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    rows = session.execute(
        select(TaxRow).where(TaxRow.tenant_id == tenant).order_by(TaxRow.created_at.desc())
    ).scalars()
    return {"data": [serialize.tax(r) for r in rows], "nextCursor": None}


@router.get("/taxes/{code}", summary="Get a tax rate")
def get_tax(code: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.tax(taxes.get_tax(session, tenant, code))


@router.delete("/taxes/{code}", status_code=204, summary="Delete a tax rate")
def delete_tax(code: str, session: SessionDep, tenant: TenantDep) -> Response:
    session.delete(taxes.get_tax(session, tenant, code))
    return Response(status_code=204)


@router.post("/coupons", status_code=201, summary="Create a coupon")
def create_coupon(body: CouponCreate, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.coupon(coupons.create_coupon(session, tenant, body.doc()))


@router.get("/coupons", summary="List coupons")
def list_coupons(session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    rows = session.execute(
        select(CouponRow).where(CouponRow.tenant_id == tenant).order_by(CouponRow.created_at.desc())
    ).scalars()
    return {"data": [serialize.coupon(r) for r in rows], "nextCursor": None}


@router.get("/coupons/{code}", summary="Get a coupon")
def get_coupon(code: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.coupon(coupons.get_coupon(session, tenant, code))


@router.post("/customers/{external_id}/coupons", status_code=201, summary="Apply a coupon")
def apply_coupon(
    external_id: str, body: AppliedCouponCreate, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    row = coupons.apply_coupon(session, tenant, external_id, body.doc())
    return serialize.applied_coupon(row, external_id)


@router.get("/customers/{external_id}/coupons", summary="Coupons applied to a customer")
def customer_coupons(external_id: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    customer = get_customer(session, tenant, external_id)
    rows = (
        session.execute(
            select(AppliedCouponRow)
            .where(AppliedCouponRow.customer_id == customer.id)
            .order_by(AppliedCouponRow.created_at.desc())
        )
        .unique()
        .scalars()
    )
    return {"data": [serialize.applied_coupon(r, external_id) for r in rows], "nextCursor": None}


@router.delete(
    "/customers/{external_id}/coupons/{applied_id}",
    status_code=204,
    summary="Stop an applied coupon",
)
def remove_coupon(
    external_id: str, applied_id: str, session: SessionDep, tenant: TenantDep
) -> Response:
    coupons.remove_applied_coupon(session, tenant, external_id, applied_id)
    return Response(status_code=204)


def _wallet_body(session: Any, row: WalletRow) -> dict[str, Any]:
    customer = session.get(CustomerRow, row.customer_id)
    return serialize.wallet(row, customer.external_id)


@router.post("/wallets", status_code=201, summary="Create a prepaid wallet")
def create_wallet(body: WalletCreate, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return _wallet_body(session, wallets.create_wallet(session, tenant, body.doc()))


@router.get("/wallets", summary="List wallets")
def list_wallets(
    session: SessionDep,
    tenant: TenantDep,
    customer_id: str | None = Query(None, alias="customerId"),
) -> dict[str, Any]:
    query = select(WalletRow).where(WalletRow.tenant_id == tenant)
    if customer_id is not None:
        query = query.where(WalletRow.customer_id == get_customer(session, tenant, customer_id).id)
    rows = session.execute(query.order_by(WalletRow.created_at.desc())).scalars()
    return {"data": [_wallet_body(session, r) for r in rows], "nextCursor": None}


@router.get("/wallets/{wallet_id}", summary="Get a wallet")
def get_wallet(wallet_id: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return _wallet_body(session, wallets.get_wallet(session, tenant, wallet_id))


@router.post("/wallets/{wallet_id}/transactions", status_code=201, summary="Top up a wallet")
def top_up(
    wallet_id: str, body: TopUpCreate, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    credits = parse_decimal(body.credits, "credits", allow_none=False)
    assert credits is not None
    row = wallets.top_up(session, tenant, wallet_id, credits)
    wallet = wallets.get_wallet(session, tenant, wallet_id)
    return {
        "transaction": serialize.wallet_transaction(row, wallet.currency),
        "wallet": _wallet_body(session, wallet),
    }


@router.get("/wallets/{wallet_id}/transactions", summary="The wallet's ledger")
def wallet_transactions(wallet_id: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    wallet = wallets.get_wallet(session, tenant, wallet_id)
    rows = wallets.transactions(session, tenant, wallet_id)
    return {
        "data": [serialize.wallet_transaction(r, wallet.currency) for r in reversed(rows)],
        "nextCursor": None,
    }

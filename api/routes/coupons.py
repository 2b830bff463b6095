"""Coupon lifecycle (update, deactivate, delete) and the tenant-wide applied coupons;
creation and the per-customer routes are in api/routes/credits.py."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.common import Page
from api.schemas.credits import (
    AppliedCouponCreateFor,
    AppliedCouponPublic,
    CouponPublic,
    CouponUpdate,
)
from invoicing import coupons
from invoicing.coupons import CouponPatch

router = APIRouter(tags=["credits"])


@router.patch("/coupons/{code}", summary="Update a coupon")
def update_coupon(
    code: str, body: CouponUpdate, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> CouponPublic:
    row = coupons.update_coupon(session, tenant, code, body.to_spec())
    record(session, "coupon.updated", "coupon", code, sent(body))
    return CouponPublic.from_row(row)


@router.post("/coupons/{code}/deactivate", summary="Stop new applications of a coupon")
def deactivate_coupon(
    code: str, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> CouponPublic:
    patch = CouponPatch(status="inactive", sent=frozenset({"status"}))
    row = coupons.update_coupon(session, tenant, code, patch)
    record(session, "coupon.deactivated", "coupon", code)
    return CouponPublic.from_row(row)


@router.delete(
    "/coupons/{code}",
    status_code=204,
    response_class=Response,
    summary="Delete a coupon and terminate its applications",
)
def delete_coupon(
    code: str, session: SessionDep, tenant: TenantDep, runtime: RuntimeDep, record: ActivityDep
) -> None:
    terminated = coupons.delete_coupon(session, tenant, code, runtime.clock.now())
    record(session, "coupon.deleted", "coupon", code, {"terminatedApplications": terminated})


@router.post("/applied-coupons", status_code=201, summary="Apply a coupon to a customer")
def apply_coupon(
    body: AppliedCouponCreateFor,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
    record: ActivityDep,
) -> AppliedCouponPublic:
    now = runtime.clock.now()
    row = coupons.apply_coupon(session, tenant, body.customer_id, body.to_spec(), now)
    changes = {**(sent(body) or {}), "appliedCouponId": row.id}
    record(session, "customer.coupon_applied", "customer", body.customer_id, changes)
    return AppliedCouponPublic.from_row(row, body.customer_id)


@router.get("/applied-coupons", summary="List applied coupons, newest first")
def list_applied_coupons(
    session: SessionDep,
    tenant: TenantDep,
    customer_id: str | None = Query(None, alias="customerId"),
    coupon_code: str | None = Query(None, alias="couponCode"),
    status: Literal["active", "terminated", "removed"] | None = None,
) -> Page[AppliedCouponPublic]:
    page = coupons.list_applied(
        session, tenant, customer_external_id=customer_id, coupon_code=coupon_code, status=status
    )
    return Page[AppliedCouponPublic].of(
        page, lambda pair: AppliedCouponPublic.from_row(pair[0], pair[1])
    )

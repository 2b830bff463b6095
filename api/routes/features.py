"""Features and entitlements: the catalog of grants, subscription overrides, and the
per-request "what may this customer use?" read (docs/features-and-entitlements.md)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.common import Page
from api.schemas.features import (
    CustomerEntitlementsPublic,
    EntitlementPublic,
    FeatureCreate,
    FeaturePublic,
    FeatureUpdate,
    SubscriptionEntitlementsIn,
    SubscriptionEntitlementsPublic,
    entitlement_specs,
)
from invoicing import catalog, features
from invoicing.models import SubscriptionRow

router = APIRouter(tags=["features"])


@router.post("/features", status_code=201, summary="Create a feature with typed privileges")
def create_feature(
    body: FeatureCreate, session: SessionDep, tenant: TenantDep, runtime: RuntimeDep
) -> FeaturePublic:
    row = features.create_feature(session, tenant, body.to_spec(), runtime.clock.now())
    return FeaturePublic.from_row(row)


@router.get("/features", summary="List features, newest first")
def list_features(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page[FeaturePublic]:
    page = features.list_features(session, tenant, limit=limit, cursor=cursor)
    return Page[FeaturePublic].of(page, FeaturePublic.from_row)


@router.get("/features/{code}", summary="Get a feature")
def get_feature(code: str, session: SessionDep, tenant: TenantDep) -> FeaturePublic:
    return FeaturePublic.from_row(features.get_feature(session, tenant, code))


@router.patch("/features/{code}", summary="Update a feature (privileges replace the old)")
def update_feature(
    code: str, body: FeatureUpdate, session: SessionDep, tenant: TenantDep
) -> FeaturePublic:
    return FeaturePublic.from_row(features.update_feature(session, tenant, code, body.to_spec()))


@router.delete(
    "/features/{code}",
    status_code=204,
    response_class=Response,
    summary="Delete a feature; plans and subscriptions that grant it lose it",
)
def delete_feature(code: str, session: SessionDep, tenant: TenantDep) -> None:
    features.delete_feature(session, tenant, code)


def _subscription_view(session: SessionDep, row: SubscriptionRow) -> SubscriptionEntitlementsPublic:
    return SubscriptionEntitlementsPublic(
        subscription_id=row.id,
        overrides=sorted(
            (EntitlementPublic.from_row(e) for e in features.subscription_overrides(session, row)),
            key=lambda e: e.feature,
        ),
        entitlements=[
            EntitlementPublic.of(e) for e in features.subscription_entitlements(session, row)
        ],
    )


@router.get(
    "/subscriptions/{subscription_id}/entitlements",
    summary="A subscription's entitlement overrides and what it grants with them",
)
def subscription_entitlements(
    subscription_id: str, session: SessionDep, tenant: TenantDep
) -> SubscriptionEntitlementsPublic:
    row = catalog.get_subscription(session, tenant, subscription_id)
    return _subscription_view(session, row)


@router.put(
    "/subscriptions/{subscription_id}/entitlements",
    summary="Replace a subscription's entitlement overrides",
)
def set_subscription_entitlements(
    subscription_id: str,
    body: SubscriptionEntitlementsIn,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> SubscriptionEntitlementsPublic:
    row = catalog.get_subscription(session, tenant, subscription_id)
    features.set_subscription_entitlements(
        session, tenant, row, entitlement_specs(body.entitlements), runtime.clock.now()
    )
    return _subscription_view(session, row)


@router.delete(
    "/subscriptions/{subscription_id}/entitlements/{feature}",
    summary="Drop a subscription's override of one feature (its plan's grant applies)",
)
def remove_subscription_entitlement(
    subscription_id: str, feature: str, session: SessionDep, tenant: TenantDep
) -> SubscriptionEntitlementsPublic:
    row = catalog.get_subscription(session, tenant, subscription_id)
    features.remove_subscription_entitlement(session, row, feature)
    session.flush()
    return _subscription_view(session, row)


@router.get(
    "/customers/{external_id}/entitlements",
    summary="What the customer may use now, over their active subscriptions",
)
def customer_entitlements(
    external_id: str, session: SessionDep, tenant: TenantDep, runtime: RuntimeDep
) -> CustomerEntitlementsPublic:
    now = runtime.clock.now()
    granted = features.customer_entitlements(session, tenant, external_id, now)
    return CustomerEntitlementsPublic(
        customer_id=external_id,
        at=now,
        entitlements=[EntitlementPublic.of(e) for e in granted],
    )

"""Webhook endpoints (CRUD), their delivery log, and a manual retry (docs/webhooks.md)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.webhooks import (
    DeliveryList,
    DeliveryPublic,
    EndpointCreate,
    EndpointList,
    EndpointPatch,
    EndpointPublic,
)
from invoicing.webhooks import deliveries, endpoints

router = APIRouter(tags=["webhooks"])

Status = Literal["pending", "succeeded", "failed"]


@router.post("/webhook-endpoints", status_code=201, summary="Add a webhook endpoint")
def create_endpoint(
    body: EndpointCreate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> EndpointPublic:
    settings = runtime.settings
    row = endpoints.create(
        session,
        tenant,
        body.to_spec(),
        settings.secrets,
        runtime.clock.now(),
        block_private=settings.webhook_block_private,
    )
    record(session, "webhook_endpoint.created", "webhook_endpoint", row.id, sent(body))
    return EndpointPublic.from_row(row)


@router.get("/webhook-endpoints", summary="The webhook endpoints, oldest first")
def list_endpoints(session: SessionDep, tenant: TenantDep) -> EndpointList:
    return EndpointList(
        data=[EndpointPublic.from_row(r) for r in endpoints.list_endpoints(session, tenant)]
    )


@router.get("/webhook-endpoints/{endpoint_id}", summary="Get a webhook endpoint")
def get_endpoint(endpoint_id: str, session: SessionDep, tenant: TenantDep) -> EndpointPublic:
    return EndpointPublic.from_row(endpoints.get(session, tenant, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", summary="Change a webhook endpoint")
def patch_endpoint(
    endpoint_id: str,
    body: EndpointPatch,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> EndpointPublic:
    settings = runtime.settings
    row = endpoints.change(
        session,
        tenant,
        endpoint_id,
        body.to_changes(),
        settings.secrets,
        runtime.clock.now(),
        block_private=settings.webhook_block_private,
    )
    record(session, "webhook_endpoint.updated", "webhook_endpoint", endpoint_id, sent(body))
    return EndpointPublic.from_row(row)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook endpoint (what still waits for it is given up)",
)
def delete_endpoint(
    endpoint_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> Response:
    endpoints.delete(session, tenant, endpoint_id, runtime.clock.now())
    record(session, "webhook_endpoint.deleted", "webhook_endpoint", endpoint_id)
    return Response(status_code=204)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    summary="The deliveries to an endpoint, newest first",
)
def list_deliveries(
    endpoint_id: str,
    session: SessionDep,
    tenant: TenantDep,
    status: Status | None = None,
    event_id: str | None = Query(None, alias="eventId"),
    limit: int = Query(100, ge=1, le=1000),
) -> DeliveryList:
    endpoint = endpoints.get(session, tenant, endpoint_id)
    rows = deliveries.list_for_endpoint(
        session, endpoint.id, status=status, event_id=event_id, limit=limit
    )
    return DeliveryList(data=[DeliveryPublic.from_row(r) for r in rows])


@router.post(
    "/webhook-deliveries/{delivery_id}/retry",
    status_code=202,
    summary="Attempt a delivery once more, now",
)
def retry_delivery(
    delivery_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> DeliveryPublic:
    return DeliveryPublic.from_row(
        deliveries.retry(session, tenant, delivery_id, runtime.clock.now())
    )

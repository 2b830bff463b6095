"""Catalog: billable metrics and plans."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from api import serialize
from api.deps import SessionDep, TenantDep
from api.schemas import MetricCreate, MetricUpdate, PlanCreate
from invoicing import catalog
from invoicing.models import BillableMetric, PlanRow

router = APIRouter(tags=["catalog"])


@router.post("/metrics", status_code=201, summary="Create a billable metric")
def create_metric(body: MetricCreate, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.metric(catalog.create_metric(session, tenant, body.doc()))


@router.get("/metrics", summary="List billable metrics, newest first")
def list_metrics(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> dict[str, Any]:
    query = select(BillableMetric).where(BillableMetric.tenant_id == tenant)
    return serialize.paginate(session, query, BillableMetric, limit, cursor, serialize.metric)


@router.get("/metrics/{code}", summary="Get a billable metric")
def get_metric(code: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.metric(catalog.get_metric(session, tenant, code))


@router.patch("/metrics/{code}", summary="Update a billable metric")
def update_metric(
    code: str, body: MetricUpdate, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    return serialize.metric(catalog.update_metric(session, tenant, code, body.doc()))


@router.delete("/metrics/{code}", status_code=204, summary="Delete a metric no plan uses")
def delete_metric(code: str, session: SessionDep, tenant: TenantDep) -> Response:
    catalog.delete_metric(session, tenant, code)
    return Response(status_code=204)


@router.post("/plans", status_code=201, summary="Create a plan with its charges")
def create_plan(body: PlanCreate, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.plan(catalog.create_plan(session, tenant, body.doc()))


@router.get("/plans", summary="List plans, newest first")
def list_plans(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> dict[str, Any]:
    query = select(PlanRow).where(PlanRow.tenant_id == tenant)
    return serialize.paginate(session, query, PlanRow, limit, cursor, serialize.plan)


@router.get("/plans/{code}", summary="Get a plan")
def get_plan(code: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.plan(catalog.get_plan(session, tenant, code))

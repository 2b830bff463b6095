"""Catalog: billable metrics and plans."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.catalog import (
    Aggregation,
    MetricCreate,
    MetricPublic,
    MetricUpdate,
    PlanCreate,
    PlanPublic,
    PlanUpdate,
)
from api.schemas.common import Page
from invoicing import catalog, plan_changes

router = APIRouter(tags=["catalog"])


@router.post("/metrics", status_code=201, summary="Create a billable metric")
def create_metric(
    body: MetricCreate, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> MetricPublic:
    row = catalog.create_metric(session, tenant, body.to_spec())
    record(session, "metric.created", "metric", row.code, sent(body))
    return MetricPublic.from_row(row)


@router.get("/metrics", summary="List billable metrics, newest first")
def list_metrics(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    aggregation: Aggregation | None = Query(None, description="Only metrics of this aggregation"),
    plan_code: str | None = Query(
        None, alias="planCode", description="Only metrics the plan's charges use (404: no plan)"
    ),
) -> Page[MetricPublic]:
    page = catalog.list_metrics(
        session, tenant, limit=limit, cursor=cursor, aggregation=aggregation, plan_code=plan_code
    )
    return Page[MetricPublic].of(page, MetricPublic.from_row)


@router.get("/metrics/{code}", summary="Get a billable metric")
def get_metric(code: str, session: SessionDep, tenant: TenantDep) -> MetricPublic:
    return MetricPublic.from_row(catalog.get_metric(session, tenant, code))


@router.patch("/metrics/{code}", summary="Update a billable metric")
def update_metric(
    code: str, body: MetricUpdate, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> MetricPublic:
    row = catalog.update_metric(session, tenant, code, body.to_spec())
    record(session, "metric.updated", "metric", code, sent(body))
    return MetricPublic.from_row(row)


@router.delete(
    "/metrics/{code}",
    status_code=204,
    response_class=Response,
    summary="Delete a metric no plan uses",
)
def delete_metric(code: str, session: SessionDep, tenant: TenantDep, record: ActivityDep) -> None:
    catalog.delete_metric(session, tenant, code)
    record(session, "metric.deleted", "metric", code)


@router.post("/plans", status_code=201, summary="Create a plan with its charges")
def create_plan(
    body: PlanCreate, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> PlanPublic:
    row = catalog.create_plan(session, tenant, body.to_spec())
    record(session, "plan.created", "plan", row.code, sent(body))
    return PlanPublic.from_row(row)


@router.get("/plans", summary="List plans, newest first")
def list_plans(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    archived: bool = Query(False, description="true: the archived plans instead"),
) -> Page[PlanPublic]:
    page = catalog.list_plans(session, tenant, limit=limit, cursor=cursor, archived=archived)
    return Page[PlanPublic].of(page, PlanPublic.from_row)


@router.get("/plans/{code}", summary="Get a plan")
def get_plan(code: str, session: SessionDep, tenant: TenantDep) -> PlanPublic:
    return PlanPublic.from_row(catalog.get_plan(session, tenant, code))


@router.patch(
    "/plans/{code}",
    summary="Update a plan; with cascade, subscriptions without overrides follow next period",
)
def update_plan(
    code: str,
    body: PlanUpdate,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
    record: ActivityDep,
) -> PlanPublic:
    row = plan_changes.update_plan(session, tenant, code, body.to_spec(), runtime.clock.now())
    record(session, "plan.updated", "plan", code, sent(body))
    return PlanPublic.from_row(row)


@router.delete(
    "/plans/{code}",
    status_code=204,
    response_class=Response,
    summary="Archive a plan: no new subscriptions, existing ones go on billing",
)
def archive_plan(
    code: str, session: SessionDep, tenant: TenantDep, runtime: RuntimeDep, record: ActivityDep
) -> None:
    plan_changes.archive_plan(session, tenant, code, runtime.clock.now())
    record(session, "plan.archived", "plan", code)

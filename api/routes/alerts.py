"""Usage alerts and their triggers."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.alerts import (
    AlertCreate,
    AlertPublic,
    AlertTriggerPublic,
    AlertTriggers,
    AlertUpdate,
)
from api.schemas.common import Page
from invoicing import alerts

router = APIRouter(tags=["alerts"])


@router.post("/alerts", status_code=201, summary="Create a usage alert")
def create_alert(
    body: AlertCreate,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
    record: ActivityDep,
) -> AlertPublic:
    row = alerts.create_alert(session, tenant, body.to_spec(), runtime.clock.now())
    record(session, "alert.created", "alert", row.id, sent(body))
    return AlertPublic.from_row(row)


@router.get("/alerts", summary="List usage alerts, newest first")
def list_alerts(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page[AlertPublic]:
    page = alerts.list_alerts(session, tenant, limit=limit, cursor=cursor)
    return Page[AlertPublic].of(page, AlertPublic.from_row)


@router.get("/alerts/{alert_id}", summary="Get a usage alert")
def get_alert(alert_id: str, session: SessionDep, tenant: TenantDep) -> AlertPublic:
    return AlertPublic.from_row(alerts.get_alert(session, tenant, alert_id))


@router.patch("/alerts/{alert_id}", summary="Change an alert's name, code or thresholds")
def update_alert(
    alert_id: str,
    body: AlertUpdate,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
    record: ActivityDep,
) -> AlertPublic:
    row = alerts.update_alert(session, tenant, alert_id, body.changes(), runtime.clock.now())
    record(session, "alert.updated", "alert", alert_id, sent(body))
    return AlertPublic.from_row(row)


@router.delete(
    "/alerts/{alert_id}", status_code=204, response_class=Response, summary="Delete an alert"
)
def delete_alert(
    alert_id: str, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> None:
    alerts.delete_alert(session, tenant, alert_id)
    record(session, "alert.deleted", "alert", alert_id)


@router.get("/alerts/{alert_id}/triggers", summary="The thresholds an alert reached, newest first")
def list_triggers(alert_id: str, session: SessionDep, tenant: TenantDep) -> AlertTriggers:
    rows = alerts.list_triggers(session, tenant, alert_id)
    return AlertTriggers(data=[AlertTriggerPublic.from_row(r) for r in rows])

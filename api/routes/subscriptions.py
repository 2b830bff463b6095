"""The subscription lifecycle: update, terminate, change plan (docs/subscription-lifecycle.md)."""

from __future__ import annotations

from fastapi import APIRouter

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.customers import SubscriptionPublic
from api.schemas.subscriptions import (
    ChangePlanRequest,
    PlanChangePublic,
    SubscriptionUpdate,
    TerminateRequest,
    TerminationPublic,
)
from invoicing import catalog, subscriptions
from invoicing.billing import BillRunner

router = APIRouter(tags=["subscriptions"])


def _runner(runtime: RuntimeDep) -> BillRunner:
    return BillRunner(runtime.sessions, runtime.usage, runtime.tax, runtime.clock)


def _read(runtime: RuntimeDep, tenant: str, subscription_id: str) -> SubscriptionPublic:
    with runtime.sessions() as session:
        row = catalog.get_subscription(session, tenant, subscription_id)
        return SubscriptionPublic.from_row(row, runtime.clock.now())


@router.patch("/subscriptions/{subscription_id}", summary="Update a subscription")
def update_subscription(
    subscription_id: str,
    body: SubscriptionUpdate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> SubscriptionPublic:
    row = subscriptions.update_subscription(session, tenant, subscription_id, body.to_patch())
    record(session, "subscription.updated", "subscription", subscription_id, sent(body))
    return SubscriptionPublic.from_row(row, runtime.clock.now())


@router.post(
    "/subscriptions/{subscription_id}/terminate",
    summary="End a subscription now (or at a past instant of the current period)",
)
def terminate_subscription(
    subscription_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
    body: TerminateRequest | None = None,
) -> TerminationPublic:
    request = body or TerminateRequest()
    done = subscriptions.terminate(
        runtime.sessions,
        _runner(runtime),
        tenant,
        subscription_id,
        at=request.at,
        final_invoice=request.final_invoice,
        credit_unused=request.credit_unused_advance_fees,
        now=runtime.clock.now(),
    )
    record(session, "subscription.terminated", "subscription", subscription_id, sent(body))
    return TerminationPublic(
        **_read(runtime, tenant, subscription_id).model_dump(),
        final_invoice_ids=done.invoice_ids,
        credit_note_ids=done.credit_note_ids,
    )


@router.post(
    "/subscriptions/{subscription_id}/change-plan",
    summary="Move a subscription to another plan now, or at the end of its period",
)
def change_plan(
    subscription_id: str,
    body: ChangePlanRequest,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> PlanChangePublic:
    now = runtime.clock.now()
    if isinstance(body.at, str):  # "periodEnd"
        with runtime.sessions() as session, session.begin():
            _, new = subscriptions.schedule_plan_change(
                session, tenant, subscription_id, body.plan_code, now
            )
            next_id = new.id
        invoice_ids: list[str] = []
        note_ids: list[str] = []
    else:
        done = subscriptions.terminate(
            runtime.sessions,
            _runner(runtime),
            tenant,
            subscription_id,
            at=body.at,
            final_invoice=True,
            credit_unused=True,
            now=now,
            next_plan=body.plan_code,
        )
        assert done.next_subscription_id is not None
        next_id = done.next_subscription_id
        invoice_ids, note_ids = done.invoice_ids, done.credit_note_ids
    record(session, "subscription.plan_changed", "subscription", subscription_id, sent(body))
    return PlanChangePublic(
        previous=_read(runtime, tenant, subscription_id),
        subscription=_read(runtime, tenant, next_id),
        final_invoice_ids=invoice_ids,
        credit_note_ids=note_ids,
    )

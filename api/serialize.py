"""Ledger rows to API JSON: camelCase, money as decimal strings, RFC 3339 UTC times."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.errors import ValidationFailed
from invoicing.models import (
    AppliedCouponRow,
    BillableMetric,
    BillRunRow,
    CouponRow,
    CustomerRow,
    InvoiceRow,
    PlanRow,
    SubscriptionRow,
    TaxRow,
    WalletRow,
    WalletTransactionRow,
)
from rating.money import format_decimal, format_money


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dec(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def encode_cursor(created_at: datetime, ident: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{ident}".encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        created, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), ident
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(
            "cursor is not valid; pass the nextCursor of a previous page"
        ) from None


def paginate(
    session: Any, query: Any, model: Any, limit: int, cursor: str | None, render: Any
) -> dict[str, Any]:
    """One page of `query` over `model`, newest first (created_at, then id), keyset-paged."""
    if (after := decode_cursor(cursor)) is not None:
        query = query.where(
            (model.created_at < after[0]) | ((model.created_at == after[0]) & (model.id < after[1]))
        )
    rows = (
        session.execute(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1))
        .unique()
        .scalars()
        .all()
    )
    return page(list(rows), limit, render)


def page(rows: list[Any], limit: int, render: Any) -> dict[str, Any]:
    """`rows` holds up to limit + 1 items: the extra one says there is a next page."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [render(r) for r in rows],
        "nextCursor": encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None,
    }


def metric(row: BillableMetric) -> dict[str, Any]:
    return {
        "id": row.id, "code": row.code, "name": row.name, "description": row.description,
        "aggregation": row.aggregation, "field": row.field, "filters": row.filters or {},
        "groupBy": row.group_by or [], "createdAt": ts(row.created_at),
    }  # fmt: skip


def plan(row: PlanRow) -> dict[str, Any]:
    return {
        "id": row.id, "code": row.code, "name": row.name, "description": row.description,
        "currency": row.currency, "interval": row.interval, "baseFee": dec(row.base_fee),
        "payInAdvance": row.pay_in_advance, "trialDays": row.trial_days,
        "minimumCommitment": dec(row.minimum_commitment), "maximumSpend": dec(row.maximum_spend),
        "charges": row.charges, "fixedCharges": row.fixed_charges, "createdAt": ts(row.created_at),
    }  # fmt: skip


def customer(row: CustomerRow) -> dict[str, Any]:
    return {
        "id": row.id, "externalId": row.external_id, "name": row.name, "email": row.email,
        "currency": row.currency, "country": row.country, "region": row.region,
        "taxExempt": row.tax_exempt, "timezone": row.timezone,
        "invoiceGraceDays": row.invoice_grace_days, "createdAt": ts(row.created_at),
    }  # fmt: skip


def subscription(row: SubscriptionRow) -> dict[str, Any]:
    return {
        "id": row.id, "customerId": row.customer.external_id, "planCode": row.plan.code,
        "startDate": ts(row.start_date), "endDate": ts(row.end_date), "status": row.status,
        "overrides": row.overrides or {}, "createdAt": ts(row.created_at),
        "terminatedAt": ts(row.terminated_at),
    }  # fmt: skip


def bill_run(row: BillRunRow) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "periodStart": ts(row.period_start),
        "periodEnd": ts(row.period_end), "total": row.total, "processed": row.processed,
        "failed": row.failed, "invoicesCreated": row.invoices_created,
        "failures": row.failures or [], "error": row.error, "createdAt": ts(row.created_at),
        "startedAt": ts(row.started_at), "finishedAt": ts(row.finished_at),
    }  # fmt: skip


def invoice(row: InvoiceRow, *, with_lines: bool = True) -> dict[str, Any]:
    cur = row.currency
    body: dict[str, Any] = {
        "id": row.id, "number": row.number, "customerId": row.customer.external_id,
        "subscriptionId": row.subscription_id, "billRunId": row.bill_run_id,
        "status": row.status, "currency": cur,
        "periodStart": ts(row.period_start), "periodEnd": ts(row.period_end),
        "issuedAt": ts(row.issued_at), "dueAt": ts(row.due_at),
        "subtotal": format_money(row.subtotal, cur),
        "discountTotal": format_money(row.discount_total, cur),
        "taxTotal": format_money(row.tax_total, cur),
        "creditTotal": format_money(row.credit_total, cur),
        "total": format_money(row.total, cur),
        "amountPaid": format_money(row.amount_paid, cur),
        "amountDue": format_money(row.amount_due, cur),
        "createdAt": ts(row.created_at),
    }  # fmt: skip
    if with_lines:
        body["lines"] = [
            {
                "id": ln.id,
                "type": ln.type,
                "description": ln.description,
                "metric": ln.metric,
                "group": ln.group or {},
                "chargeId": ln.charge_id,
                "quantity": dec(ln.quantity),
                "unitAmount": dec(ln.unit_amount),
                "amount": format_money(ln.amount, cur),
                "discountAmount": format_money(ln.discount_amount, cur),
                "taxRate": dec(ln.tax_rate),
                "taxAmount": format_money(ln.tax_amount, cur),
                "periodStart": ts(ln.period_start),
                "periodEnd": ts(ln.period_end),
            }
            for ln in row.lines
        ]
    return body


def tax(row: TaxRow) -> dict[str, Any]:
    return {
        "id": row.id, "code": row.code, "name": row.name, "rate": dec(row.rate),
        "country": row.country, "region": row.region, "createdAt": ts(row.created_at),
    }  # fmt: skip


def coupon(row: CouponRow) -> dict[str, Any]:
    return {
        "id": row.id, "code": row.code, "name": row.name, "type": row.kind,
        "percentage": dec(row.percentage), "amount": dec(row.amount), "currency": row.currency,
        "frequency": row.frequency, "frequencyDuration": row.frequency_duration,
        "appliesTo": {"planCodes": row.plan_codes or [], "metricCodes": row.metric_codes or []},
        "expiresAt": ts(row.expires_at), "createdAt": ts(row.created_at),
    }  # fmt: skip


def applied_coupon(row: AppliedCouponRow, customer_external_id: str) -> dict[str, Any]:
    return {
        "id": row.id, "couponCode": row.coupon.code, "customerId": customer_external_id,
        "status": row.status, "type": row.coupon.kind,
        "percentage": dec(row.coupon.percentage),
        "amountRemaining": dec(row.amount_remaining),
        "periodsRemaining": row.periods_remaining, "frequency": row.coupon.frequency,
        "createdAt": ts(row.created_at),
    }  # fmt: skip


def wallet(row: WalletRow, customer_external_id: str) -> dict[str, Any]:
    return {
        "id": row.id, "customerId": customer_external_id, "name": row.name,
        "currency": row.currency, "balance": format_money(row.balance, row.currency),
        "credits": format_money(row.balance, row.currency),
        "priority": row.priority, "expiresAt": ts(row.expires_at),
        "scope": {"metrics": row.scope_metrics or [], "feeTypes": row.scope_fee_types or []},
        "status": row.status, "createdAt": ts(row.created_at),
    }  # fmt: skip


def wallet_transaction(row: WalletTransactionRow, currency: str) -> dict[str, Any]:
    return {
        "id": row.id, "walletId": row.wallet_id, "type": row.kind,
        "amount": format_money(row.amount, currency),
        "remaining": format_money(row.remaining, currency) if row.kind != "deduction" else None,
        "invoiceId": row.invoice_id,
        "fundedBy": [
            {
                "transactionId": f["transactionId"],
                "amount": format_money(Decimal(f["amount"]), currency),
            }
            for f in row.funding or []
        ],
        "createdAt": ts(row.created_at),
    }  # fmt: skip

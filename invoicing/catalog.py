"""The catalog and the customers: metrics, plans, customers, subscriptions.

Validation of domain rules (pricing properties, currency codes, dates) lives here so
that the CLI, the API and the bill run share it; the API only checks shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing.models import (
    BillableMetric,
    CustomerRow,
    PlanRow,
    SubscriptionRow,
    new_id,
    utcnow,
)
from rating import pricing
from rating.model import (
    Aggregation,
    Customer,
    FixedCharge,
    Interval,
    Metric,
    Plan,
    RolloverRule,
    Subscription,
    UsageCharge,
)
from rating.money import CURRENCIES, ZERO, InvalidAmount, to_decimal

# -- metrics -----------------------------------------------------------------------


def create_metric(session: Session, tenant_id: str, data: Mapping[str, Any]) -> BillableMetric:
    aggregation = data["aggregation"]
    if aggregation not in {a.value for a in Aggregation}:
        raise ValidationFailed(
            f"aggregation must be one of {', '.join(a.value for a in Aggregation)}"
        )
    row = BillableMetric(
        id=new_id("bm"),
        tenant_id=tenant_id,
        code=data["code"],
        name=data["name"],
        description=data.get("description"),
        aggregation=aggregation,
        field=data.get("field") or "value",
        filters=normalize_filters(data.get("filters")),
        group_by=list(data.get("groupBy") or []),
    )
    if aggregation == Aggregation.COUNT and data.get("field") not in (None, "value"):
        raise ValidationFailed("a count metric counts events; it takes no field")
    insert_unique(session, row, f"a metric with code {row.code!r} already exists")
    return row


def get_metric(session: Session, tenant_id: str, code: str) -> BillableMetric:
    row = session.execute(
        select(BillableMetric).where(
            BillableMetric.tenant_id == tenant_id, BillableMetric.code == code
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"metric {code!r} not found")
    return row


def update_metric(
    session: Session, tenant_id: str, code: str, data: Mapping[str, Any]
) -> BillableMetric:
    row = get_metric(session, tenant_id, code)
    if "name" in data and data["name"] is not None:
        row.name = data["name"]
    if "description" in data:
        row.description = data["description"]
    if data.get("filters") is not None:
        row.filters = normalize_filters(data["filters"])
    if data.get("groupBy") is not None:
        row.group_by = list(data["groupBy"])
    if data.get("field") is not None:
        row.field = data["field"]
    if data.get("aggregation") is not None:
        if data["aggregation"] not in {a.value for a in Aggregation}:
            raise ValidationFailed("unknown aggregation")
        row.aggregation = data["aggregation"]
    return row


def delete_metric(session: Session, tenant_id: str, code: str) -> None:
    row = get_metric(session, tenant_id, code)
    plans = session.execute(select(PlanRow).where(PlanRow.tenant_id == tenant_id)).scalars()
    users = [p.code for p in plans if any(c["metric"] == code for c in p.charges)]
    if users:
        raise Conflict(f"metric {code!r} is used by plans {', '.join(sorted(users))}")
    session.delete(row)


def normalize_filters(raw: Any) -> dict[str, list[str]]:
    """Filters as {property: [allowed values]}; also accepts [{key, values}]."""
    if raw is None:
        return {}
    items: list[tuple[str, Any]]
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list):
        try:
            items = [(f["key"], f["values"]) for f in raw]
        except (KeyError, TypeError):
            raise ValidationFailed("filters must be {property: [values]}") from None
    else:
        raise ValidationFailed("filters must be {property: [values]}")
    result: dict[str, list[str]] = {}
    for key, values in items:
        if isinstance(values, str | int | float):
            values = [values]
        if not isinstance(values, list) or not values:
            raise ValidationFailed(f"filters.{key} must be a non-empty list of values")
        result[str(key)] = [str(v) for v in values]
    return result


def metric_domain(row: BillableMetric) -> Metric:
    return Metric(
        code=row.code,
        name=row.name,
        aggregation=Aggregation(row.aggregation),
        field=row.field,
        filters={k: tuple(v) for k, v in (row.filters or {}).items()},
        group_by=tuple(row.group_by or ()),
    )


# -- plans ---------------------------------------------------------------------------


def parse_decimal(
    value: Any, what: str, *, allow_none: bool = True, min_zero: bool = True
) -> Decimal | None:
    if value is None:
        if allow_none:
            return None
        raise ValidationFailed(f"{what} is required")
    try:
        number = to_decimal(value, what=what)
    except InvalidAmount as exc:
        raise ValidationFailed(str(exc)) from None
    if min_zero and number < 0:
        raise ValidationFailed(f"{what} must not be negative")
    return number


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _normalize_charge(
    session: Session,
    tenant_id: str,
    raw: Mapping[str, Any],
    index: int,
    known: dict[str, BillableMetric],
) -> dict[str, Any]:
    where = f"charges[{index}]"
    metric_code = raw.get("metric")
    if not isinstance(metric_code, str):
        raise ValidationFailed(f"{where}.metric is required")
    if metric_code not in known:
        raise ValidationFailed(f"{where}.metric {metric_code!r} is not a metric of this tenant")
    model = raw.get("model")
    if model not in pricing.MODELS:
        raise ValidationFailed(f"{where}.model must be one of {', '.join(sorted(pricing.MODELS))}")
    try:
        properties = pricing.validate_properties(model, raw.get("properties") or {})
    except pricing.InvalidChargeProperties as exc:
        raise ValidationFailed(f"{where}.properties: {exc}") from None
    rollover = raw.get("rollover")
    rollover_doc: dict[str, Any] | None = None
    if rollover is True:
        rollover_doc = {"cap": None, "expiryPeriods": None}
    elif isinstance(rollover, Mapping):
        expiry = rollover.get("expiryPeriods")
        if expiry is not None and (not isinstance(expiry, int) or expiry < 1):
            raise ValidationFailed(f"{where}.rollover.expiryPeriods must be a positive integer")
        rollover_doc = {
            "cap": _text(parse_decimal(rollover.get("cap"), f"{where}.rollover.cap")),
            "expiryPeriods": expiry,
        }
    elif rollover not in (None, False):
        raise ValidationFailed(f"{where}.rollover must be an object {{cap?, expiryPeriods?}}")
    return {
        "id": raw.get("id") or new_id("ch"),
        "metric": metric_code,
        "model": model,
        "properties": properties,
        "includedQuantity": _text(
            parse_decimal(raw.get("includedQuantity"), f"{where}.includedQuantity")
        ),
        "hardCap": _text(parse_decimal(raw.get("hardCap"), f"{where}.hardCap")),
        "rollover": rollover_doc,
        "payInAdvance": bool(raw.get("payInAdvance", False)),
        "filters": normalize_filters(raw.get("filters")),
    }


def _normalize_fixed_charge(raw: Mapping[str, Any], index: int) -> dict[str, Any]:
    where = f"fixedCharges[{index}]"
    name = raw.get("name") or raw.get("code")
    if not isinstance(name, str) or not name:
        raise ValidationFailed(f"{where}.name is required")
    kind = str(raw.get("type", "")).upper()
    one_time = bool(raw.get("oneTime", False)) or kind in ("SETUP_FEE", "ONE_TIME")
    return {
        "id": raw.get("id") or new_id("fc"),
        "name": name,
        "amount": _text(parse_decimal(raw.get("amount"), f"{where}.amount", allow_none=False)),
        "units": _text(parse_decimal(raw.get("units", 1), f"{where}.units")),
        "oneTime": one_time,
        "payInAdvance": bool(raw.get("payInAdvance", one_time)),
        "prorated": bool(raw.get("prorated", True)),
    }


def create_plan(session: Session, tenant_id: str, data: Mapping[str, Any]) -> PlanRow:
    currency = str(data["currency"]).upper()
    if currency not in CURRENCIES:
        raise ValidationFailed(f"currency {data['currency']!r} is not an ISO 4217 code")
    if data["interval"] not in {i.value for i in Interval}:
        raise ValidationFailed("interval must be one of weekly, monthly, quarterly, yearly")
    charges_in: Sequence[Mapping[str, Any]] = data.get("charges") or []
    codes = {c.get("metric") for c in charges_in}
    known = {
        m.code: m
        for m in session.execute(
            select(BillableMetric).where(
                BillableMetric.tenant_id == tenant_id,
                BillableMetric.code.in_([c for c in codes if c]),
            )
        ).scalars()
    }
    charges = [_normalize_charge(session, tenant_id, c, i, known) for i, c in enumerate(charges_in)]
    fixed = [_normalize_fixed_charge(c, i) for i, c in enumerate(data.get("fixedCharges") or [])]
    trial_days = int(data.get("trialDays") or 0)
    if trial_days < 0:
        raise ValidationFailed("trialDays must not be negative")
    minimum = parse_decimal(data.get("minimumCommitment"), "minimumCommitment")
    maximum = parse_decimal(data.get("maximumSpend"), "maximumSpend")
    if minimum is not None and maximum is not None and maximum < minimum:
        raise ValidationFailed("maximumSpend must not be below minimumCommitment")
    row = PlanRow(
        id=new_id("plan"),
        tenant_id=tenant_id,
        code=data["code"],
        name=data["name"],
        description=data.get("description"),
        currency=currency,
        interval=data["interval"],
        base_fee=parse_decimal(data.get("baseFee"), "baseFee") or ZERO,
        pay_in_advance=bool(data.get("payInAdvance", False)),
        trial_days=trial_days,
        minimum_commitment=minimum,
        maximum_spend=maximum,
        charges=charges,
        fixed_charges=fixed,
    )
    insert_unique(session, row, f"a plan with code {row.code!r} already exists")
    return row


def get_plan(session: Session, tenant_id: str, code: str) -> PlanRow:
    row = session.execute(
        select(PlanRow).where(PlanRow.tenant_id == tenant_id, PlanRow.code == code)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"plan {code!r} not found")
    return row


def plan_domain(
    row: PlanRow, metrics: Mapping[str, Metric], overrides: Mapping[str, Any] | None = None
) -> Plan:
    """The rating view of a plan, with a subscription's per-charge overrides applied."""
    overrides = overrides or {}
    charge_overrides: Mapping[str, Any] = overrides.get("charges") or {}
    charges = []
    for doc in row.charges:
        override = charge_overrides.get(doc["id"]) or charge_overrides.get(doc["metric"]) or {}
        merged = {**doc, **{k: v for k, v in override.items() if v is not None}}
        rollover = merged.get("rollover")
        charges.append(
            UsageCharge(
                id=doc["id"],
                metric=metrics[doc["metric"]],
                model=merged["model"],
                properties=merged["properties"],
                included_quantity=Decimal(merged.get("includedQuantity") or 0),
                hard_cap=None if merged.get("hardCap") is None else Decimal(merged["hardCap"]),
                rollover=None
                if not rollover
                else RolloverRule(
                    cap=None if rollover.get("cap") is None else Decimal(rollover["cap"]),
                    expiry_periods=rollover.get("expiryPeriods"),
                ),
                pay_in_advance=bool(merged.get("payInAdvance")),
                filters={k: tuple(v) for k, v in (merged.get("filters") or {}).items()},
            )
        )
    fixed = tuple(
        FixedCharge(
            id=f["id"],
            name=f["name"],
            amount=Decimal(f["amount"]),
            units=Decimal(f["units"]),
            one_time=f["oneTime"],
            pay_in_advance=f["payInAdvance"],
            prorated=f["prorated"],
        )
        for f in row.fixed_charges
    )
    base_fee = overrides.get("baseFee")
    return Plan(
        code=row.code,
        name=row.name,
        currency=row.currency,
        interval=Interval(row.interval),
        base_fee=row.base_fee if base_fee is None else Decimal(str(base_fee)),
        pay_in_advance=row.pay_in_advance,
        trial_days=row.trial_days,
        minimum_commitment=row.minimum_commitment,
        maximum_spend=row.maximum_spend,
        charges=tuple(charges),
        fixed_charges=fixed,
    )


# -- customers ----------------------------------------------------------------------


def create_customer(session: Session, tenant_id: str, data: Mapping[str, Any]) -> CustomerRow:
    currency = str(data["currency"]).upper()
    if currency not in CURRENCIES:
        raise ValidationFailed(f"currency {data['currency']!r} is not an ISO 4217 code")
    country = data.get("country")
    if country is not None and (not isinstance(country, str) or len(country) != 2):
        raise ValidationFailed("country must be an ISO 3166-1 alpha-2 code such as 'US'")
    row = CustomerRow(
        id=new_id("cus"),
        tenant_id=tenant_id,
        external_id=data["externalId"],
        name=data["name"],
        email=data.get("email"),
        currency=currency,
        country=country.upper() if country else None,
        region=data.get("region"),
        tax_exempt=bool(data.get("taxExempt", False)),
        timezone=data.get("timezone") or "UTC",
        invoice_grace_days=int(data.get("invoiceGraceDays") or 0),
    )
    insert_unique(session, row, f"a customer with externalId {row.external_id!r} already exists")
    return row


def get_customer(session: Session, tenant_id: str, external_id: str) -> CustomerRow:
    row = session.execute(
        select(CustomerRow).where(
            CustomerRow.tenant_id == tenant_id, CustomerRow.external_id == external_id
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"customer {external_id!r} not found")
    return row


_CUSTOMER_FIELDS = {
    "name": "name", "email": "email", "country": "country", "region": "region",
    "taxExempt": "tax_exempt", "timezone": "timezone", "invoiceGraceDays": "invoice_grace_days",
}  # fmt: skip


def update_customer(
    session: Session, tenant_id: str, external_id: str, data: Mapping[str, Any]
) -> CustomerRow:
    row = get_customer(session, tenant_id, external_id)
    for key, attr in _CUSTOMER_FIELDS.items():
        if key in data:
            setattr(row, attr, data[key])
    if "currency" in data and data["currency"] is not None:
        currency = str(data["currency"]).upper()
        if currency not in CURRENCIES:
            raise ValidationFailed(f"currency {data['currency']!r} is not an ISO 4217 code")
        row.currency = currency
    return row


def customer_domain(row: CustomerRow) -> Customer:
    return Customer(
        external_id=row.external_id,
        name=row.name,
        currency=row.currency,
        country=row.country,
        region=row.region,
        tax_exempt=row.tax_exempt,
    )


# -- subscriptions --------------------------------------------------------------------


def create_subscription(
    session: Session, tenant_id: str, data: Mapping[str, Any]
) -> SubscriptionRow:
    customer = get_customer(session, tenant_id, data["customerId"])
    try:
        plan = get_plan(session, tenant_id, data["planCode"])
    except NotFound as exc:
        raise ValidationFailed(exc.message) from None
    start: datetime = data["startDate"]
    end: datetime | None = data.get("endDate")
    if end is not None and end <= start:
        raise ValidationFailed("endDate must be after startDate")
    if plan.currency != customer.currency:
        raise ValidationFailed(
            f"plan {plan.code!r} bills in {plan.currency} but customer "
            f"{customer.external_id!r} pays in {customer.currency}"
        )
    overrides = dict(data.get("overrides") or {})
    _validate_overrides(plan, overrides)
    row = SubscriptionRow(
        id=data.get("id") or new_id("sub"),
        tenant_id=tenant_id,
        customer_id=customer.id,
        plan_id=plan.id,
        start_date=start,
        end_date=end,
        status="active",
        overrides=overrides,
    )
    insert_unique(session, row, f"subscription {row.id!r} already exists")
    return row


def _validate_overrides(plan: PlanRow, overrides: dict[str, Any]) -> None:
    charges = overrides.get("charges")
    if charges is None:
        return
    if not isinstance(charges, Mapping):
        raise ValidationFailed("overrides.charges must map a charge id or metric code to overrides")
    by_key = {c["id"]: c for c in plan.charges} | {c["metric"]: c for c in plan.charges}
    for key, override in charges.items():
        if key not in by_key:
            raise ValidationFailed(f"overrides.charges.{key}: the plan has no such charge")
        if not isinstance(override, dict):
            raise ValidationFailed(f"overrides.charges.{key} must be an object")
        model = override.get("model") or by_key[key]["model"]
        if "properties" in override:
            try:
                override["properties"] = pricing.validate_properties(model, override["properties"])
            except pricing.InvalidChargeProperties as exc:
                raise ValidationFailed(f"overrides.charges.{key}.properties: {exc}") from None
        for field in ("includedQuantity", "hardCap"):
            if override.get(field) is not None:
                override[field] = _text(
                    parse_decimal(override[field], f"overrides.charges.{key}.{field}")
                )


def get_subscription(session: Session, tenant_id: str, subscription_id: str) -> SubscriptionRow:
    row = session.get(SubscriptionRow, subscription_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"subscription {subscription_id!r} not found")
    return row


def terminate_subscription(
    session: Session, tenant_id: str, subscription_id: str, at: datetime | None = None
) -> SubscriptionRow:
    row = get_subscription(session, tenant_id, subscription_id)
    if row.status == "terminated":
        raise Conflict(f"subscription {subscription_id!r} is already terminated")
    now = at or utcnow()
    row.status = "terminated"
    row.terminated_at = now
    if row.end_date is None or row.end_date > now:
        row.end_date = max(now, row.start_date)
    return row


def subscription_domain(row: SubscriptionRow, metrics: Mapping[str, Metric]) -> Subscription:
    return Subscription(
        id=row.id,
        customer=customer_domain(row.customer),
        plan=plan_domain(row.plan, metrics, row.overrides),
        start=row.start_date,
        end=row.end_date,
    )


def metrics_by_code(session: Session, tenant_id: str) -> dict[str, Metric]:
    rows = session.execute(
        select(BillableMetric).where(BillableMetric.tenant_id == tenant_id)
    ).scalars()
    return {row.code: metric_domain(row) for row in rows}


def insert_unique(session: Session, row: Any, message: str) -> None:
    """Insert in a savepoint so a duplicate becomes a 409 without spoiling the transaction."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(message, code="duplicate") from None

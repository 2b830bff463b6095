"""The catalog and the customers: metrics, plans, customers, subscriptions.

The functions take typed specs (invoicing.specs) whose values the caller has parsed;
the domain rules (pricing properties, currency and country codes, known metrics and
plans, dates, ranges) are checked here so that every caller shares them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing import charge_overrides, plan_versions
from invoicing.models import (
    AddOnRow,
    BillableMetric,
    CustomerRow,
    PlanRow,
    SubscriptionRow,
    new_id,
)
from invoicing.pages import Page, keyset_page
from invoicing.specs import (
    ADDRESS_FIELDS,
    ChargeSpec,
    CustomerPatch,
    CustomerSpec,
    Filters,
    FixedChargeSpec,
    MetricPatch,
    MetricSpec,
    PlanSpec,
    SubscriptionSpec,
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
    UsageThreshold,
)
from rating.money import CURRENCIES, ZERO, to_decimal
from rating.periods import zone_of
from rating.rounding import MAX_PRECISION, MIN_PRECISION, QuantityRounding, RoundingFunction

# -- shared rules --------------------------------------------------------------------


def non_negative(value: Decimal | None, what: str) -> Decimal | None:
    """`value` if it is absent or at least 0; a negative one is refused, naming `what`."""
    if value is not None and value < 0:
        raise ValidationFailed(f"{what} must not be negative")
    return value


def currency_code(value: str) -> str:
    """An ISO 4217 currency code, upper-cased."""
    currency = value.upper()
    if currency not in CURRENCIES:
        raise ValidationFailed(f"currency {value!r} is not an ISO 4217 code")
    return currency


def timezone_name(value: str | None) -> str:
    """An IANA time zone name as the zone database spells it ("Europe/Paris"); none is
    UTC. The customer's periods close at its local midnights (docs/customer-timezones.md)."""
    if value is None:
        return "UTC"
    name = value.strip()
    if name not in _zone_names():
        raise ValidationFailed(
            f'timezone {value!r} is not an IANA time zone name (e.g. "Europe/Paris", '
            '"America/New_York", "UTC")',
            details=[{"field": "timezone", "value": value}],
        )
    return name


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    """The zone database's names (not its directories, "posixrules" or "localtime")."""
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"})


def country_code(value: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 country code, upper-cased (or none)."""
    if value is None:
        return None
    if len(value) != 2:
        raise ValidationFailed("country must be an ISO 3166-1 alpha-2 code such as 'US'")
    return value.upper()


def stored_filters(filters: Filters, where: str = "filters") -> dict[str, list[str]]:
    """Filters as stored: {property: [allowed values]}, each list non-empty."""
    for key, values in filters.items():
        if not values:
            raise ValidationFailed(f"{where}.{key} must be a non-empty list of values")
    return {str(key): [str(v) for v in values] for key, values in filters.items()}


def _aggregation(value: str) -> Aggregation:
    try:
        return Aggregation(value)
    except ValueError:
        raise ValidationFailed(
            f"aggregation must be one of {', '.join(a.value for a in Aggregation)}"
        ) from None


# -- metrics -----------------------------------------------------------------------


def _rounding(function: str | None, precision: int | None) -> tuple[str | None, int | None]:
    """A metric's rounding as stored: (function, precision), the precision 0 when a
    function is given without one; a precision needs a function."""
    if function is None:
        if precision is not None:
            raise ValidationFailed(
                "roundingPrecision needs a roundingFunction (round, ceil or floor)",
                details=[{"field": "roundingPrecision", "message": "needs roundingFunction"}],
            )
        return None, None
    try:
        RoundingFunction(function)
    except ValueError:
        raise ValidationFailed(
            "roundingFunction must be one of round, ceil, floor",
            details=[{"field": "roundingFunction", "value": function}],
        ) from None
    precision = 0 if precision is None else precision
    if not MIN_PRECISION <= precision <= MAX_PRECISION:
        raise ValidationFailed(
            f"roundingPrecision must be an integer from {MIN_PRECISION} to {MAX_PRECISION}",
            details=[{"field": "roundingPrecision", "value": precision}],
        )
    return function, precision


def create_metric(session: Session, tenant_id: str, spec: MetricSpec) -> BillableMetric:
    """Add a billable metric; a code the tenant already has is a Conflict."""
    aggregation = _aggregation(spec.aggregation)
    if aggregation == Aggregation.COUNT and spec.field not in (None, "value"):
        raise ValidationFailed("a count metric counts events; it takes no field")
    row = BillableMetric(
        id=new_id("bm"),
        tenant_id=tenant_id,
        code=spec.code,
        name=spec.name,
        description=spec.description,
        aggregation=aggregation.value,
        field=spec.field or "value",
        filters=stored_filters(spec.filters),
        group_by=list(spec.group_by),
    )
    row.rounding_function, row.rounding_precision = _rounding(
        spec.rounding_function, spec.rounding_precision
    )
    insert_unique(session, row, f"a metric with code {row.code!r} already exists")
    return row


def get_metric(session: Session, tenant_id: str, code: str) -> BillableMetric:
    """The tenant's metric of that code, or NotFound."""
    row = session.execute(
        select(BillableMetric).where(
            BillableMetric.tenant_id == tenant_id, BillableMetric.code == code
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"metric {code!r} not found")
    return row


def list_metrics(
    session: Session,
    tenant_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    aggregation: str | None = None,
    plan_code: str | None = None,
) -> Page[BillableMetric]:
    """The tenant's metrics, newest first, one page: of one aggregation, and those the
    charges of one plan use (its current definition; an unknown plan is a NotFound)."""
    query = select(BillableMetric).where(BillableMetric.tenant_id == tenant_id)
    if aggregation is not None:
        query = query.where(BillableMetric.aggregation == _aggregation(aggregation).value)
    if plan_code is not None:
        codes = sorted({c["metric"] for c in get_plan(session, tenant_id, plan_code).charges})
        query = query.where(BillableMetric.code.in_(codes))
    return keyset_page(session, query, BillableMetric, limit, cursor)


def update_metric(
    session: Session, tenant_id: str, code: str, patch: MetricPatch
) -> BillableMetric:
    """Change what the patch carries of a metric."""
    row = get_metric(session, tenant_id, code)
    if patch.name is not None:
        row.name = patch.name
    if "description" in patch.sent:
        row.description = patch.description
    if patch.filters is not None:
        row.filters = stored_filters(patch.filters)
    if patch.group_by is not None:
        row.group_by = list(patch.group_by)
    if patch.field is not None:
        row.field = patch.field
    if patch.aggregation is not None:
        row.aggregation = _aggregation(patch.aggregation).value
    if patch.sent & {"rounding_function", "rounding_precision"}:
        # What is not sent stays; a null function removes the rounding (and precision).
        function = (
            patch.rounding_function if "rounding_function" in patch.sent else row.rounding_function
        )
        if "rounding_precision" in patch.sent:
            precision = patch.rounding_precision
        else:
            precision = row.rounding_precision if function is not None else None
        row.rounding_function, row.rounding_precision = _rounding(function, precision)
    return row


def delete_metric(session: Session, tenant_id: str, code: str) -> None:
    """Delete a metric that no plan charges for (else a Conflict naming the plans)."""
    row = get_metric(session, tenant_id, code)
    plans = session.execute(select(PlanRow).where(PlanRow.tenant_id == tenant_id)).scalars()
    users = [p.code for p in plans if any(c["metric"] == code for c in p.charges)]
    pinned = session.execute(
        select(SubscriptionRow.plan_versions).where(SubscriptionRow.tenant_id == tenant_id)
    ).scalars()
    if any(code in plan_versions.metric_codes(versions) for versions in pinned):
        # An earlier version of a patched plan still bills it (docs/plan-changes.md).
        users.append("(earlier versions kept by subscriptions)")
    overrides = session.execute(
        select(SubscriptionRow.overrides).where(SubscriptionRow.tenant_id == tenant_id)
    ).scalars()
    if any(code in charge_overrides.added_metrics(o) for o in overrides):
        # A subscription's own charge bills it (overrides.addCharges).
        users.append("(charges added by subscriptions)")
    if users:
        raise Conflict(f"metric {code!r} is used by plans {', '.join(sorted(users))}")
    session.delete(row)


def metric_domain(row: BillableMetric) -> Metric:
    return Metric(
        code=row.code,
        name=row.name,
        aggregation=Aggregation(row.aggregation),
        field=row.field,
        filters={k: tuple(v) for k, v in (row.filters or {}).items()},
        group_by=tuple(row.group_by or ()),
        rounding=None
        if row.rounding_function is None
        else QuantityRounding(RoundingFunction(row.rounding_function), row.rounding_precision or 0),
    )


# -- plans ---------------------------------------------------------------------------


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _charge_doc(
    spec: ChargeSpec, index: int, known: Mapping[str, BillableMetric]
) -> dict[str, Any]:
    """A charge as the plan stores it (camelCase, decimals as exact strings)."""
    where = f"charges[{index}]"
    if spec.metric not in known:
        raise ValidationFailed(f"{where}.metric {spec.metric!r} is not a metric of this tenant")
    if spec.model not in pricing.MODELS:
        raise ValidationFailed(f"{where}.model must be one of {', '.join(sorted(pricing.MODELS))}")
    try:
        properties = pricing.validate_properties(spec.model, spec.properties)
    except pricing.InvalidChargeProperties as exc:
        raise ValidationFailed(f"{where}.properties: {exc}") from None
    rollover = spec.rollover
    if rollover is not None and rollover.expiry_periods is not None and rollover.expiry_periods < 1:
        raise ValidationFailed(f"{where}.rollover.expiryPeriods must be a positive integer")
    return {
        "id": spec.id or new_id("ch"),
        "metric": spec.metric,
        "model": spec.model,
        "properties": properties,
        "includedQuantity": _text(
            non_negative(spec.included_quantity, f"{where}.includedQuantity")
        ),
        "hardCap": _text(non_negative(spec.hard_cap, f"{where}.hardCap")),
        "rollover": None
        if rollover is None
        else {
            "cap": _text(non_negative(rollover.cap, f"{where}.rollover.cap")),
            "expiryPeriods": rollover.expiry_periods,
        },
        "payInAdvance": spec.pay_in_advance,
        "filters": stored_filters(spec.filters, f"{where}.filters"),
    }


def charge_doc(spec: ChargeSpec, index: int, known: Mapping[str, BillableMetric]) -> dict[str, Any]:
    """A checked charge as the plan stores it (plan creation and update share it)."""
    return _charge_doc(spec, index, known)


def fixed_charge_docs(
    session: Session, tenant_id: str, currency: str, specs: Sequence[FixedChargeSpec]
) -> list[dict[str, Any]]:
    """Checked fixed charges as the plan stores them (plan creation and update share
    it); one naming an `addOnCode` takes the add-on's name and amount unless it sends its
    own, and the add-on's taxes when billed (docs/one-off-invoices.md, Add-ons)."""
    codes = sorted({s.add_on_code for s in specs if s.add_on_code is not None})
    add_ons = {
        a.code: a
        for a in session.execute(
            select(AddOnRow).where(AddOnRow.tenant_id == tenant_id, AddOnRow.code.in_(codes))
        ).scalars()
    }
    return [_fixed_charge_doc(s, i, add_ons, currency) for i, s in enumerate(specs)]


def _fixed_charge_doc(
    spec: FixedChargeSpec, index: int, add_ons: Mapping[str, AddOnRow], currency: str
) -> dict[str, Any]:
    where = f"fixedCharges[{index}]"
    add_on = None
    if spec.add_on_code is not None:
        add_on = add_ons.get(spec.add_on_code)
        if add_on is None:
            raise ValidationFailed(
                f"{where}.addOnCode {spec.add_on_code!r} is not an add-on of this tenant"
            )
        if add_on.currency != currency:
            raise ValidationFailed(
                f"{where}.addOnCode {spec.add_on_code!r} is priced in {add_on.currency}; "
                f"the plan bills in {currency}"
            )
    name = spec.name or (add_on.name if add_on is not None else "")
    if not name:
        raise ValidationFailed(f"{where}.name is required")
    amount = spec.amount if spec.amount is not None else (add_on.amount if add_on else None)
    if amount is None:
        raise ValidationFailed(f"{where}.amount is required (or an addOnCode)")
    doc = {
        "id": spec.id or new_id("fc"),
        "name": name,
        "amount": _text(non_negative(amount, f"{where}.amount")),
        "units": _text(non_negative(spec.units, f"{where}.units")),
        "oneTime": spec.one_time,
        "payInAdvance": spec.one_time if spec.pay_in_advance is None else spec.pay_in_advance,
        "prorated": spec.prorated,
    }
    if add_on is not None:
        doc["addOnCode"] = add_on.code
    return doc


def create_plan(session: Session, tenant_id: str, spec: PlanSpec) -> PlanRow:
    """Add a plan with its charges; each charge's metric must be the tenant's."""
    currency = currency_code(spec.currency)
    if spec.interval not in {i.value for i in Interval}:
        raise ValidationFailed("interval must be one of weekly, monthly, quarterly, yearly")
    codes = {c.metric for c in spec.charges}
    known = {
        m.code: m
        for m in session.execute(
            select(BillableMetric).where(
                BillableMetric.tenant_id == tenant_id, BillableMetric.code.in_(sorted(codes))
            )
        ).scalars()
    }
    charges = [_charge_doc(c, i, known) for i, c in enumerate(spec.charges)]
    fixed = fixed_charge_docs(session, tenant_id, currency, spec.fixed_charges)
    if spec.trial_days < 0:
        raise ValidationFailed("trialDays must not be negative")
    minimum = non_negative(spec.minimum_commitment, "minimumCommitment")
    maximum = non_negative(spec.maximum_spend, "maximumSpend")
    if minimum is not None and maximum is not None and maximum < minimum:
        raise ValidationFailed("maximumSpend must not be below minimumCommitment")
    thresholds = usage_thresholds_doc(
        [{"amount": t.amount, "recurring": t.recurring} for t in spec.usage_thresholds],
        "usageThresholds",
    )
    row = PlanRow(
        id=new_id("plan"),
        tenant_id=tenant_id,
        code=spec.code,
        name=spec.name,
        description=spec.description,
        currency=currency,
        interval=spec.interval,
        base_fee=non_negative(spec.base_fee, "baseFee") or ZERO,
        pay_in_advance=spec.pay_in_advance,
        trial_days=spec.trial_days,
        minimum_commitment=minimum,
        maximum_spend=maximum,
        charges=charges,
        fixed_charges=fixed,
        usage_thresholds=thresholds,
    )
    insert_unique(session, row, f"a plan with code {row.code!r} already exists")
    if spec.entitlements:
        from invoicing.features import set_plan_entitlements

        set_plan_entitlements(session, tenant_id, row, spec.entitlements)
    return row


def list_plans(
    session: Session,
    tenant_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    archived: bool = False,
) -> Page[PlanRow]:
    """The tenant's plans, newest first, one page: the live ones, or the archived ones."""
    query = select(PlanRow).where(
        PlanRow.tenant_id == tenant_id,
        PlanRow.archived_at.is_not(None) if archived else PlanRow.archived_at.is_(None),
    )
    return keyset_page(session, query, PlanRow, limit, cursor)


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
    charges = []
    # The plan's charges less the removed ones, overridden, and the added ones.
    for merged in charge_overrides.charge_docs(row.charges, overrides):
        rollover = merged.get("rollover")
        charges.append(
            UsageCharge(
                id=merged["id"],
                metric=metrics[merged["metric"]],
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
            add_on_code=f.get("addOnCode"),
        )
        for f in row.fixed_charges
    )
    base_fee = overrides.get("baseFee")
    thresholds = overrides.get("usageThresholds")
    if thresholds is None:
        thresholds = row.usage_thresholds or []
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
        usage_thresholds=tuple(
            UsageThreshold(Decimal(str(t["amount"])), bool(t.get("recurring"))) for t in thresholds
        ),
    )


def usage_thresholds_doc(values: object, what: str) -> list[dict[str, Any]]:
    """Checked progressive-billing thresholds as stored: positive amounts as exact
    decimal text, no amount twice, in ascending order."""
    if not isinstance(values, list):
        raise ValidationFailed(f"{what} must be a list of {{amount, recurring?}}")
    out: list[dict[str, Any]] = []
    seen: set[tuple[Decimal, bool]] = set()
    for i, value in enumerate(values):
        where = f"{what}[{i}]"
        if not isinstance(value, Mapping) or "amount" not in value:
            raise ValidationFailed(f"{where} must be an object with an amount")
        unknown = set(value) - {"amount", "recurring"}
        if unknown:
            raise ValidationFailed(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        amount = to_decimal(value["amount"], what=f"{where}.amount")
        if amount <= 0:
            raise ValidationFailed(f"{where}.amount must be positive")
        recurring = value.get("recurring", False)
        if not isinstance(recurring, bool):
            raise ValidationFailed(f"{where}.recurring must be true or false")
        if (amount, recurring) in seen:
            raise ValidationFailed(f"{where}: the threshold {amount} is given twice")
        seen.add((amount, recurring))
        out.append({"amount": _text(amount), "recurring": recurring})
    return sorted(out, key=lambda t: (Decimal(t["amount"]), t["recurring"]))


# -- customers ----------------------------------------------------------------------


def create_customer(session: Session, tenant_id: str, spec: CustomerSpec) -> CustomerRow:
    """Add a customer; an externalId the tenant already has is a Conflict."""
    row = CustomerRow(
        id=new_id("cus"),
        tenant_id=tenant_id,
        external_id=spec.external_id,
        name=spec.name,
        email=spec.email,
        currency=currency_code(spec.currency),
        country=country_code(spec.country),
        region=spec.region,
        tax_exempt=spec.tax_exempt,
        timezone=timezone_name(spec.timezone),
        invoice_grace_days=_grace_days(spec.invoice_grace_days),
        net_payment_term_days=spec.net_payment_term_days,
        payment_provider=_payment_provider(spec.payment_provider),
        payment_provider_customer_id=spec.payment_provider_customer_id,
    )
    if spec.address is not None:
        for name in ADDRESS_FIELDS:
            setattr(row, name, _blank_to_none(getattr(spec.address, name)))
    insert_unique(session, row, f"a customer with externalId {row.external_id!r} already exists")
    return row


def _payment_provider(provider: str | None) -> str | None:
    from invoicing.payments.base import PROVIDERS

    if provider is not None and provider not in PROVIDERS:
        raise ValidationFailed(f"paymentProvider must be one of {', '.join(PROVIDERS)}")
    return provider


def _grace_days(days: int) -> int:
    if days < 0:
        raise ValidationFailed("invoiceGraceDays must not be negative")
    return days


def get_customer(session: Session, tenant_id: str, external_id: str) -> CustomerRow:
    """The tenant's customer of that externalId (not deleted), or NotFound."""
    row = session.execute(
        select(CustomerRow).where(
            CustomerRow.tenant_id == tenant_id,
            CustomerRow.external_id == external_id,
            CustomerRow.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"customer {external_id!r} not found")
    return row


def list_customers(
    session: Session, tenant_id: str, *, limit: int, cursor: str | None = None
) -> Page[CustomerRow]:
    """The tenant's customers (deleted ones never), newest first, one page."""
    query = select(CustomerRow).where(
        CustomerRow.tenant_id == tenant_id, CustomerRow.deleted_at.is_(None)
    )
    return keyset_page(session, query, CustomerRow, limit, cursor)


def update_customer(
    session: Session, tenant_id: str, external_id: str, patch: CustomerPatch
) -> CustomerRow:
    """Change what the patch carries, under the same rules as creation."""
    row = get_customer(session, tenant_id, external_id)
    if patch.name is not None:
        row.name = patch.name
    if "email" in patch.sent:
        row.email = patch.email
    if patch.currency is not None:
        row.currency = currency_code(patch.currency)
    if "country" in patch.sent:
        row.country = country_code(patch.country)
    if "region" in patch.sent:
        row.region = patch.region
    if patch.tax_exempt is not None:
        row.tax_exempt = patch.tax_exempt
    if patch.timezone is not None:
        row.timezone = timezone_name(patch.timezone)
    if patch.invoice_grace_days is not None:
        row.invoice_grace_days = _grace_days(patch.invoice_grace_days)
    if "net_payment_term_days" in patch.sent:
        row.net_payment_term_days = patch.net_payment_term_days
    if "payment_provider" in patch.sent:
        row.payment_provider = _payment_provider(patch.payment_provider)
    if "payment_provider_customer_id" in patch.sent:
        row.payment_provider_customer_id = patch.payment_provider_customer_id
    for name in ADDRESS_FIELDS:
        if name in patch.sent:
            setattr(row, name, _blank_to_none(getattr(patch.address, name)))
    return row


def _blank_to_none(value: str | None) -> str | None:
    """An address part as stored: trimmed, and none rather than blank."""
    if value is None:
        return None
    return value.strip() or None


def customer_domain(row: CustomerRow) -> Customer:
    return Customer(
        external_id=row.external_id,
        name=row.name,
        currency=row.currency,
        country=row.country,
        region=row.region,
        tax_exempt=row.tax_exempt,
        zone=zone_of(row.timezone),
    )


# -- subscriptions --------------------------------------------------------------------


def create_subscription(
    session: Session, tenant_id: str, spec: SubscriptionSpec
) -> SubscriptionRow:
    """Subscribe a customer to a plan in its currency, with checked overrides."""
    customer = get_customer(session, tenant_id, spec.customer_id)
    try:
        plan = get_plan(session, tenant_id, spec.plan_code)
    except NotFound as exc:
        raise ValidationFailed(exc.message) from None
    if plan.archived_at is not None:
        raise Conflict(
            f"plan {plan.code!r} is archived: it takes no new subscriptions", code="plan_archived"
        )
    if spec.end_date is not None and spec.end_date <= spec.start_date:
        raise ValidationFailed("endDate must be after startDate")
    if plan.currency != customer.currency:
        raise ValidationFailed(
            f"plan {plan.code!r} bills in {plan.currency} but customer "
            f"{customer.external_id!r} pays in {customer.currency}"
        )
    overrides = copy.deepcopy(dict(spec.overrides))
    validate_overrides(plan, overrides)
    row = SubscriptionRow(
        id=spec.id or new_id("sub"),
        tenant_id=tenant_id,
        customer_id=customer.id,
        plan_id=plan.id,
        start_date=spec.start_date,
        end_date=spec.end_date,
        status="active",
        overrides=overrides,
    )
    insert_unique(session, row, f"subscription {row.id!r} already exists")
    session.refresh(row)  # its customer and plan, as a read of it would load them
    return row


def validate_overrides(plan: PlanRow, overrides: dict[str, Any]) -> None:
    """Check a subscription's overrides against its plan, normalising them in place."""
    if overrides.get("usageThresholds") is not None:
        overrides["usageThresholds"] = usage_thresholds_doc(
            overrides["usageThresholds"], "overrides.usageThresholds"
        )
    if overrides.get("baseFee") is not None:
        # Checked, and kept as sent: the subscription shows its overrides as given.
        non_negative(to_decimal(overrides["baseFee"], what="overrides.baseFee"), "baseFee")
    charges = overrides.get("charges")
    if charges is None:
        charge_overrides.validate(plan, overrides)
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
        for name in ("includedQuantity", "hardCap"):
            if override.get(name) is not None:
                what = f"overrides.charges.{key}.{name}"
                override[name] = _text(non_negative(to_decimal(override[name], what=what), what))
    # Filters, removed and added charges (invoicing/charge_overrides.py).
    charge_overrides.validate(plan, overrides)


def get_subscription(session: Session, tenant_id: str, subscription_id: str) -> SubscriptionRow:
    """The tenant's subscription of that id, or NotFound."""
    row = session.get(SubscriptionRow, subscription_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"subscription {subscription_id!r} not found")
    return row


def list_subscriptions(
    session: Session,
    tenant_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    customer_external_id: str | None = None,
) -> Page[SubscriptionRow]:
    """The tenant's subscriptions (of one customer, if given), newest first, one page."""
    query = select(SubscriptionRow).where(SubscriptionRow.tenant_id == tenant_id)
    if customer_external_id is not None:
        query = query.join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id).where(
            CustomerRow.external_id == customer_external_id
        )
    return keyset_page(session, query, SubscriptionRow, limit, cursor)


def terminate_subscription(
    session: Session,
    tenant_id: str,
    subscription_id: str,
    at: datetime | None = None,
    *,
    now: datetime,
) -> SubscriptionRow:
    """End a subscription at `at` (default: now); terminating twice is a Conflict."""
    row = get_subscription(session, tenant_id, subscription_id)
    if row.status == "terminated":
        raise Conflict(f"subscription {subscription_id!r} is already terminated")
    ended = at or now
    row.status = "terminated"
    row.terminated_at = ended
    if row.end_date is None or row.end_date > ended:
        row.end_date = max(ended, row.start_date)
    return row


def subscription_domain(row: SubscriptionRow, metrics: Mapping[str, Metric]) -> Subscription:
    # A patched plan's earlier versions pinned on the subscription (plan_versions.py).
    last, history = plan_versions.pinned(row.plan, row.plan_versions)
    return Subscription(
        id=row.id,
        customer=customer_domain(row.customer),
        plan=plan_domain(last, metrics, row.overrides),
        start=row.start_date,
        end=row.end_date,
        plan_history=tuple(
            (until, plan_domain(plan, metrics, row.overrides)) for until, plan in history
        ),
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

"""Bill runs: every subscription active in a window, rated and settled into invoices.

    load subscriptions → their calendar periods ending in the window → skip periods
    already invoiced (idempotent) → bulk quantities from ClickHouse, one query per
    metric → rating pipeline per subscription (Quota Check … Discount, then the tax
    provider, then Tax, Route, Settle) → invoices written in batches

A failure of one subscription (a tax provider that is down, say) is recorded on the
run and does not stop it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, DomainError, NotFound, ValidationFailed
from invoicing.catalog import metrics_by_code, plan_domain, subscription_domain
from invoicing.coupons import active_coupons, coupon_domain, record_uses, revert_uses
from invoicing.db import json_dumps
from invoicing.models import (
    AppliedCouponRow,
    BillRunRow,
    CustomerRow,
    InvoiceLineRow,
    InvoiceRow,
    PlanRow,
    RolloverBucketRow,
    SubscriptionRow,
    WalletRow,
    new_id,
    utcnow,
)
from invoicing.tax.service import TaxService
from invoicing.taxes import tax_rates
from invoicing.wallets import deduct, refund_invoice, wallet_domain, wallets_by_customer
from rating import pricing
from rating.context import BillingContext, RolloverBucket, TaxRate
from rating.late import late_usage_lines, supports_late_billing
from rating.model import (
    Customer,
    Group,
    InvoiceLine,
    MeteredQuantity,
    Metric,
    Period,
    Plan,
    RatedInvoice,
    Subscription,
    UsageCharge,
)
from rating.periods import periods_within
from rating.pipeline import RatingResult
from streams.usage_store import BillingInterval, UsageStore, exact_decimal

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
WRITE_BATCH = 2_000
LONGEST_PERIOD = timedelta(days=366)  # a leap year, the longest billing period


@dataclass(frozen=True)
class BillingItem:
    """One subscription and one of its periods to invoice."""

    key: str
    subscription: Subscription
    period: Period
    active: Period
    customer_row_id: str


def create_bill_run(session: Session, tenant_id: str, start: datetime, end: datetime) -> BillRunRow:
    if end <= start:
        raise ValidationFailed("periodEnd must be after periodStart")
    row = BillRunRow(
        id=new_id("br"),
        tenant_id=tenant_id,
        period_start=start,
        period_end=end,
        status="pending",
        failures=[],
    )
    session.add(row)
    session.flush()
    return row


def get_bill_run(session: Session, tenant_id: str, bill_run_id: str) -> BillRunRow:
    row = session.get(BillRunRow, bill_run_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"bill run {bill_run_id!r} not found")
    return row


class BillRunner:
    def __init__(
        self, sessions: sessionmaker[Session], usage: UsageStore, tax: TaxService | None = None
    ) -> None:
        self._sessions = sessions
        self._usage = usage
        # The process's tax provider (Runtime.tax); default: each tenant's own table.
        self._tax = TaxService() if tax is None else tax

    def run(self, bill_run_id: str, progress: Progress | None = None) -> BillRunRow:
        """Execute a pending bill run to completion (synchronously)."""
        with self._sessions() as session, session.begin():
            run = session.get(BillRunRow, bill_run_id)
            if run is None:
                raise NotFound(f"bill run {bill_run_id!r} not found")
            run.status = "running"
            run.started_at = utcnow()
            tenant_id = run.tenant_id
            window = Period(run.period_start, run.period_end)
        try:
            self._execute(bill_run_id, tenant_id, window, progress)
        except Exception as exc:
            log.exception("bill run %s failed", bill_run_id)
            with self._sessions() as session, session.begin():
                run = session.get(BillRunRow, bill_run_id)
                assert run is not None
                run.status = "failed"
                run.error = f"{type(exc).__name__}: {exc}"
                run.finished_at = utcnow()
        with self._sessions() as session:
            run = session.get(BillRunRow, bill_run_id)
            assert run is not None
            return run

    def _execute(
        self, bill_run_id: str, tenant_id: str, window: Period, progress: Progress | None
    ) -> None:
        with self._sessions() as session:
            metrics = metrics_by_code(session, tenant_id)
            items = self._items(session, tenant_id, window, metrics)
            taxes = tax_rates(session, tenant_id)
            # Customers whose invoices change ledger state (coupons, wallets) are settled
            # one by one with their effects; everyone else in fast batches.
            stateful = set(active_coupons(session, tenant_id)) | set(
                wallets_by_customer(session, tenant_id)
            )
            # Late usage: customers with events stored after their period's invoice was
            # finalized are settled one by one too, with prior-period lines.
            late_cutoff = utcnow()
            stateful |= self._late_customers(session, tenant_id, window, late_cutoff)
        total = len(items)
        self._update(bill_run_id, total=total)
        if progress:
            progress(0, total)
        usage = fetch_quantities(self._usage, tenant_id, items) if items else {}
        processed = failed = created = 0
        failures: list[dict[str, Any]] = []
        for offset in range(0, total, WRITE_BATCH):
            batch = items[offset : offset + WRITE_BATCH]
            rated: list[tuple[BillingItem, RatedInvoice]] = []
            for item in batch:
                metered = tuple(usage.get(item.key, ()))
                try:
                    if item.customer_row_id in stateful or _has_rollover(item.subscription):
                        with self._sessions() as session, session.begin():
                            settle_with_effects(
                                session,
                                tenant_id,
                                bill_run_id,
                                item,
                                metered,
                                taxes,
                                self._tax,
                                usage_store=self._usage,
                                late_cutoff=late_cutoff,
                            )
                        created += 1
                        continue
                    context = BillingContext(
                        subscription=item.subscription,
                        period=item.period,
                        usage=metered,
                        tax_rates=taxes,
                    )
                    rated.append((item, self._tax.rate(tenant_id, context).invoice))
                except Exception as exc:
                    failed += 1
                    failures.append(_failure(item, exc))
            ok, errors = self._write(tenant_id, bill_run_id, rated)
            created += ok
            failed += len(errors)
            failures.extend(errors)
            processed += len(batch)
            self._update(
                bill_run_id,
                processed=processed,
                failed=failed,
                invoices_created=created,
                failures=failures[:1000],
            )
            if progress:
                progress(processed, total)
        self._update(bill_run_id, status="completed", finished_at=utcnow())

    def _late_customers(
        self, session: Session, tenant_id: str, window: Period, cutoff: datetime
    ) -> set[str]:
        """Customer row ids that may have late usage for this run (one ClickHouse query)."""
        oldest = session.execute(
            select(func.min(InvoiceRow.finalized_at)).where(
                InvoiceRow.tenant_id == tenant_id,
                InvoiceRow.status.in_(LATE_STATUSES),
                InvoiceRow.period_end <= window.start,
            )
        ).scalar()
        if oldest is None:
            return set()
        external = self._usage.customers_with_late_events(tenant_id, window.start, oldest)
        if not external:
            return set()
        return set(_customer_ids(session, tenant_id, external).values())

    def _items(
        self, session: Session, tenant_id: str, window: Period, metrics: dict[str, Metric]
    ) -> list[BillingItem]:
        # A period billed by this run ends in the window but may start up to a year
        # before it (a weekly plan's last week, a quarter ending in the window): a
        # subscription that ended before the window can still be active in such a period,
        # so only those that ended before the longest possible period are left out here;
        # `period.overlap` below decides exactly.
        earliest = window.start - LONGEST_PERIOD
        # Plain column rows, not ORM objects: a run loads every subscription of a tenant.
        rows = session.execute(
            select(
                SubscriptionRow.id,
                SubscriptionRow.plan_id,
                SubscriptionRow.overrides,
                SubscriptionRow.start_date,
                SubscriptionRow.end_date,
                SubscriptionRow.customer_id,
                CustomerRow.external_id,
                CustomerRow.name,
                CustomerRow.currency,
                CustomerRow.country,
                CustomerRow.region,
                CustomerRow.tax_exempt,
            )
            .join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id)
            .where(
                SubscriptionRow.tenant_id == tenant_id,
                SubscriptionRow.start_date < window.end,
                (SubscriptionRow.end_date.is_(None)) | (SubscriptionRow.end_date > earliest),
            )
            .order_by(SubscriptionRow.created_at, SubscriptionRow.id)
        ).all()
        plan_rows = {
            p.id: p
            for p in session.execute(
                select(PlanRow).where(PlanRow.tenant_id == tenant_id)
            ).scalars()
        }
        invoiced = {
            (sub_id, start, end)
            for sub_id, start, end in session.execute(
                select(
                    InvoiceRow.subscription_id, InvoiceRow.period_start, InvoiceRow.period_end
                ).where(
                    InvoiceRow.tenant_id == tenant_id,
                    InvoiceRow.period_end > window.start,
                    InvoiceRow.period_start < window.end,
                )
            )
        }
        items = []
        # Many subscriptions share a plan (and most have no overrides): build each
        # distinct rating plan once.
        plans: dict[tuple[str, str], Plan] = {}
        for row in rows:
            plan_key = (row.plan_id, json_dumps(row.overrides or {}))
            plan = plans.get(plan_key)
            if plan is None:
                plan = plans[plan_key] = plan_domain(plan_rows[row.plan_id], metrics, row.overrides)
            subscription = Subscription(
                id=row.id,
                customer=Customer(
                    external_id=row.external_id,
                    name=row.name,
                    currency=row.currency,
                    country=row.country,
                    region=row.region,
                    tax_exempt=row.tax_exempt,
                ),
                plan=plan,
                start=_utc(row.start_date),
                end=None if row.end_date is None else _utc(row.end_date),
            )
            for period in periods_within(subscription.plan.interval, window):
                active = period.overlap(subscription.start, subscription.end)
                if active is None or (row.id, period.start, period.end) in invoiced:
                    continue
                items.append(
                    BillingItem(
                        f"{row.id}|{period.start.isoformat()}",
                        subscription,
                        period,
                        active,
                        row.customer_id,
                    )
                )
        return items

    def _write(
        self, tenant_id: str, bill_run_id: str, rated: Sequence[tuple[BillingItem, RatedInvoice]]
    ) -> tuple[int, list[dict[str, Any]]]:
        """Write a batch of invoices in one transaction; on error, one by one."""
        if not rated:
            return 0, []
        try:
            with self._sessions() as session, session.begin():
                # Core bulk inserts: the ORM's unit of work costs ~1 ms per invoice,
                # ten times the insert itself, and these rows need none of its features.
                invoices, lines = [], []
                for item, invoice in rated:
                    row_values, line_values = invoice_values(
                        tenant_id, bill_run_id, item.customer_row_id, invoice
                    )
                    invoices.append(row_values)
                    lines.extend(line_values)
                connection = session.connection()
                connection.execute(insert(_INVOICES), invoices)
                if lines:
                    connection.execute(insert(_INVOICE_LINES), lines)
            return len(rated), []
        except Exception:
            if len(rated) == 1:
                raise
        created, errors = 0, []
        for entry in rated:
            try:
                ok, _ = self._write(tenant_id, bill_run_id, [entry])
                created += ok
            except Exception as exc:
                errors.append(_failure(entry[0], exc))
        return created, errors

    def _update(self, bill_run_id: str, **fields: Any) -> None:
        with self._sessions() as session, session.begin():
            run = session.get(BillRunRow, bill_run_id)
            assert run is not None
            for name, value in fields.items():
                setattr(run, name, value)


Variant = tuple[str, tuple[tuple[str, tuple[str, ...]], ...], bool]


def _variant(charge: UsageCharge) -> Variant:
    """What decides a charge's ClickHouse query: metric, extra filters, per-event amounts."""
    return (
        charge.metric.code,
        tuple(sorted(charge.filters.items())),
        pricing.needs_event_amounts(charge.model, charge.properties),
    )


def _rows_by_item(
    frame: Any, metric: Metric
) -> dict[str, list[tuple[Group, Decimal, int, tuple[Decimal, ...]]]]:
    """Query rows by billing item. Columns are read whole and each distinct quantity text
    is parsed once: most subscriptions share a handful of quantities."""
    out: dict[str, list[tuple[Group, Decimal, int, tuple[Decimal, ...]]]] = defaultdict(list)
    if frame.height == 0:
        return out
    keys = frame["subscription_id"].to_list()
    quantities = frame["quantity"].to_list()
    events = frame["events"].to_list()
    groups = [frame[f"g{i}"].to_list() for i in range(len(metric.group_by))]
    amounts = frame["amounts"].to_list() if "amounts" in frame.columns else None
    parsed: dict[Any, Decimal] = {}
    for n, key in enumerate(keys):
        text = quantities[n]
        quantity = parsed.get(text)
        if quantity is None:
            quantity = parsed[text] = exact_decimal(text)
        group: Group = (
            tuple(sorted(zip(metric.group_by, (column[n] for column in groups), strict=True)))
            if groups
            else ()
        )
        row_amounts = tuple(exact_decimal(a) for a in amounts[n]) if amounts is not None else ()
        out[key].append((group, quantity, int(events[n]), row_amounts))
    return out


def _customer_ids(session: Session, tenant_id: str, external_ids: Iterable[str]) -> dict[str, str]:
    from invoicing.models import CustomerRow

    ids = list(external_ids)
    rows = session.execute(
        select(CustomerRow.external_id, CustomerRow.id).where(
            CustomerRow.tenant_id == tenant_id, CustomerRow.external_id.in_(ids)
        )
    )
    return {ext: cid for ext, cid in rows}


_INVOICES = cast(Table, InvoiceRow.__table__)
_INVOICE_LINES = cast(Table, InvoiceLineRow.__table__)


def invoice_values(
    tenant_id: str, bill_run_id: str | None, customer_row_id: str, invoice: RatedInvoice
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The same rows as `invoice_row`, as table column values for a Core bulk insert."""
    now = utcnow()
    invoice_id = new_id("inv")
    row = {
        "id": invoice_id,
        "tenant_id": tenant_id,
        "customer_id": customer_row_id,
        "subscription_id": invoice.subscription_id,
        "bill_run_id": bill_run_id,
        "number": None,
        "status": "DRAFT",
        "currency": invoice.currency,
        "period_start": invoice.period.start,
        "period_end": invoice.period.end,
        "issued_at": None,
        "due_at": None,
        "subtotal": invoice.subtotal,
        "discount_total": invoice.discount_total,
        "tax_total": invoice.tax_total,
        "credit_total": invoice.credit_total,
        "total": invoice.total,
        "amount_paid": Decimal(0),
        "amount_due": invoice.amount_due,
        "created_at": now,
        "updated_at": now,
        "finalized_at": None,
    }
    lines = [
        {
            "id": new_id("il"),
            "invoice_id": invoice_id,
            "position": i,
            "type": line.type.value,
            "description": line.description,
            "metric": line.metric,
            "group_values": dict(line.group),
            "charge_id": line.charge_id,
            "quantity": line.quantity,
            "unit_amount": line.unit_amount,
            "amount": line.amount,
            "discount_amount": line.discount_amount,
            "tax_rate": line.tax_rate,
            "tax_amount": line.tax_amount,
            "period_start": line.period_start,
            "period_end": line.period_end,
            "prior_invoice_id": line.prior_invoice_id,
            "late_through": None,
        }
        for i, line in enumerate(invoice.lines)
    ]
    return row, lines


def invoice_row(
    tenant_id: str,
    bill_run_id: str | None,
    customer_id: str,
    invoice: RatedInvoice,
    *,
    late_through: datetime | None = None,
) -> InvoiceRow:
    """The ledger rows of a rated invoice (DRAFT, unnumbered: numbers come at finalize)."""
    row = InvoiceRow(
        id=new_id("inv"),
        tenant_id=tenant_id,
        customer_id=customer_id,
        subscription_id=invoice.subscription_id,
        bill_run_id=bill_run_id,
        status="DRAFT",
        currency=invoice.currency,
        period_start=invoice.period.start,
        period_end=invoice.period.end,
        subtotal=invoice.subtotal,
        discount_total=invoice.discount_total,
        tax_total=invoice.tax_total,
        credit_total=invoice.credit_total,
        total=invoice.total,
        amount_paid=Decimal(0),
        amount_due=invoice.amount_due,
    )
    row.lines = [
        InvoiceLineRow(
            id=new_id("il"),
            position=i,
            type=line.type.value,
            description=line.description,
            metric=line.metric,
            group=dict(line.group),
            charge_id=line.charge_id,
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            amount=line.amount,
            discount_amount=line.discount_amount,
            tax_rate=line.tax_rate,
            tax_amount=line.tax_amount,
            period_start=line.period_start,
            period_end=line.period_end,
            prior_invoice_id=line.prior_invoice_id,
            late_through=late_through if line.prior_invoice_id else None,
        )
        for i, line in enumerate(invoice.lines)
    ]
    return row


def _failure(item: BillingItem, exc: Exception) -> dict[str, Any]:
    failure: dict[str, Any] = {
        "subscriptionId": item.subscription.id,
        "customerId": item.subscription.customer.external_id,
        "periodStart": item.period.start.isoformat(),
        "error": f"{type(exc).__name__}: {exc}",
    }
    if isinstance(exc, DomainError):
        # A stable code (tax_provider_unavailable, …) and whether a re-run may succeed.
        failure["code"] = exc.code
        failure["retryable"] = bool(getattr(exc, "retryable", False))
    return failure


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _has_rollover(subscription: Subscription) -> bool:
    return any(charge.rollover is not None for charge in subscription.plan.charges)


def rate_with_effects(
    session: Session,
    subscription: Subscription,
    period: Period,
    customer_row_id: str,
    usage: tuple[MeteredQuantity, ...],
    taxes: tuple[TaxRate, ...],
    tax: TaxService | None = None,
    *,
    tenant_id: str | None = None,
    prior_lines: tuple[InvoiceLine, ...] = (),
) -> RatingResult:
    """Rate one subscription with the customer's coupons, wallets and rollover, read now,
    taxed by `tax` (the process's provider; default: the tenant's table in `taxes`)."""
    coupons = (
        session.execute(
            select(AppliedCouponRow)
            .where(
                AppliedCouponRow.customer_id == customer_row_id, AppliedCouponRow.status == "active"
            )
            .order_by(AppliedCouponRow.created_at, AppliedCouponRow.id)
        )
        .unique()
        .scalars()
    )
    wallets = session.execute(
        select(WalletRow).where(
            WalletRow.customer_id == customer_row_id,
            WalletRow.status == "active",
            WalletRow.currency == subscription.plan.currency,
        )
    ).scalars()
    buckets: dict[str, list[RolloverBucket]] = defaultdict(list)
    for row in session.execute(
        select(RolloverBucketRow)
        .where(
            RolloverBucketRow.subscription_id == subscription.id,
            RolloverBucketRow.consumed_by.is_(None),
        )
        .order_by(RolloverBucketRow.position, RolloverBucketRow.id)
    ).scalars():
        buckets[row.charge_id].append(RolloverBucket(row.quantity, row.expires_at))
    context = BillingContext(
        subscription=subscription,
        period=period,
        usage=usage,
        rollover_in={charge: tuple(b) for charge, b in buckets.items()},
        coupons=tuple(coupon_domain(c) for c in coupons),
        tax_rates=taxes,
        wallets=tuple(wallet_domain(w) for w in wallets),
        prior_lines=prior_lines,
    )
    if tenant_id is None:
        tenant_id = _tenant_of(session, customer_row_id)
    return (TaxService() if tax is None else tax).rate(tenant_id, context)


def _tenant_of(session: Session, customer_row_id: str) -> str:
    from invoicing.models import CustomerRow

    tenant_id = session.execute(
        select(CustomerRow.tenant_id).where(CustomerRow.id == customer_row_id)
    ).scalar_one_or_none()
    if tenant_id is None:
        raise NotFound(f"customer {customer_row_id!r} not found")
    return tenant_id


def apply_effects(
    session: Session, tenant_id: str, invoice_id: str, subscription_id: str, result: RatingResult
) -> None:
    """Write what an invoice did to the ledger: coupon uses, wallet debits, rollover."""
    record_uses(session, tenant_id, invoice_id, result.coupon_uses)
    deduct(session, tenant_id, invoice_id, result.wallet_debits)
    if not result.rollover_out:
        return
    session.execute(
        update(RolloverBucketRow)
        .where(
            RolloverBucketRow.subscription_id == subscription_id,
            RolloverBucketRow.consumed_by.is_(None),
        )
        .values(consumed_by=invoice_id)
    )
    for charge_id, out in result.rollover_out.items():
        for position, bucket in enumerate(out):
            session.add(
                RolloverBucketRow(
                    id=new_id("rob"),
                    tenant_id=tenant_id,
                    subscription_id=subscription_id,
                    charge_id=charge_id,
                    quantity=bucket.quantity,
                    expires_at=bucket.expires_at,
                    invoice_id=invoice_id,
                    position=position,
                )
            )


def revert_effects(session: Session, tenant_id: str, invoice_id: str) -> None:
    """Give back what an invoice took (coupons, wallets, rollover), e.g. before a refresh."""
    revert_uses(session, invoice_id)
    refund_invoice(session, tenant_id, invoice_id)
    session.execute(delete(RolloverBucketRow).where(RolloverBucketRow.invoice_id == invoice_id))
    session.execute(
        update(RolloverBucketRow)
        .where(RolloverBucketRow.consumed_by == invoice_id)
        .values(consumed_by=None)
    )


def settle_with_effects(
    session: Session,
    tenant_id: str,
    bill_run_id: str | None,
    item: BillingItem,
    usage: tuple[MeteredQuantity, ...],
    taxes: tuple[TaxRate, ...],
    tax: TaxService | None = None,
    *,
    usage_store: UsageStore | None = None,
    late_cutoff: datetime | None = None,
) -> InvoiceRow:
    """Stage 10 for a stateful customer: the invoice and its effects in one transaction.

    With `usage_store` and `late_cutoff`, late usage of earlier finalized invoices of the
    subscription is billed on this invoice as prior-period lines."""
    prior: tuple[InvoiceLine, ...] = ()
    if usage_store is not None and late_cutoff is not None:
        prior = late_usage(
            session, usage_store, tenant_id, item.subscription, item.period.start, late_cutoff
        )
    result = rate_with_effects(
        session,
        item.subscription,
        item.period,
        item.customer_row_id,
        usage,
        taxes,
        tax,
        tenant_id=tenant_id,
        prior_lines=prior,
    )
    row = invoice_row(
        tenant_id, bill_run_id, item.customer_row_id, result.invoice, late_through=late_cutoff
    )
    session.add(row)
    session.flush()
    apply_effects(session, tenant_id, row.id, item.subscription.id, result)
    return row


def fetch_quantities(
    usage_store: UsageStore, tenant_id: str, items: Sequence[BillingItem]
) -> dict[str, list[MeteredQuantity]]:
    """Every item's metered quantities, with one ClickHouse query per metric variant."""
    run_key = usage_store.register_intervals(
        tenant_id,
        [
            BillingInterval(
                i.key,
                i.subscription.customer.external_id,
                i.active.start,
                i.active.end,
                period=i.period,
            )
            for i in items
        ],
    )
    try:
        start = min(i.active.start for i in items)
        end = max(i.active.end for i in items)
        return metered_quantities(
            {item.key: item.subscription.plan.charges for item in items},
            lambda metric, filters, with_amounts: usage_store.interval_quantities(
                tenant_id, run_key, metric, filters, start, end, with_amounts=with_amounts
            ),
        )
    finally:
        usage_store.drop_intervals(run_key)


VariantQuery = Callable[[Metric, Mapping[str, tuple[str, ...]], bool], Any]
"""(metric, charge filters, with per-event amounts) → the frame of `interval_quantities`."""


def metered_quantities(
    charges: Mapping[str, Sequence[UsageCharge]], query: VariantQuery
) -> dict[str, list[MeteredQuantity]]:
    """Each interval's metered quantities of its charges (interval key → charges priced
    there), with one query per metric variant: charges that read the same metric with the
    same extra filters share it, and get the per-event amounts when their model needs them."""
    # Many intervals share a plan's charges: work out each charge object's variant once.
    known: dict[int, Variant] = {}
    charge_variants = {
        key: [
            (charge, known.get(id(charge)) or known.setdefault(id(charge), _variant(charge)))
            for charge in key_charges
        ]
        for key, key_charges in charges.items()
    }
    variants: dict[Variant, Metric] = {}
    for pairs in charge_variants.values():
        for charge, variant in pairs:
            variants.setdefault(variant, charge.metric)
    result: dict[str, list[MeteredQuantity]] = defaultdict(list)
    for variant, metric in variants.items():
        by_item = _rows_by_item(query(metric, dict(variant[1]), variant[2]), metric)
        for item_key, rows in by_item.items():
            for charge, charge_variant in charge_variants.get(item_key, ()):
                if charge_variant != variant:
                    continue
                result[item_key].extend(
                    MeteredQuantity(
                        charge_id=charge.id,
                        quantity=quantity,
                        group=group,
                        event_count=events,
                        event_amounts=amounts,
                    )
                    for group, quantity, events, amounts in rows
                )
    return result


def refresh_invoice(
    session: Session,
    usage_store: UsageStore,
    tenant_id: str,
    invoice: InvoiceRow,
    tax: TaxService | None = None,
) -> InvoiceRow:
    """Re-rate a DRAFT with the latest usage, coupons, wallets and taxes (one transaction).

    Taxes come from `tax` (the process's provider, Runtime.tax); a provider error
    propagates, and the caller's transaction rolls back: the draft stays as it was.
    """
    if invoice.status != "DRAFT":
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; only a DRAFT can be refreshed",
            code="illegal_transition",
        )
    if invoice.subscription_id is None:
        raise Conflict(f"invoice {invoice.id} has no subscription to re-rate")
    revert_effects(session, tenant_id, invoice.id)
    subscription_row = session.get(SubscriptionRow, invoice.subscription_id)
    assert subscription_row is not None
    subscription = subscription_domain(subscription_row, metrics_by_code(session, tenant_id))
    period = Period(invoice.period_start, invoice.period_end)
    active = period.overlap(subscription.start, subscription.end) or period
    item = BillingItem(invoice.id, subscription, period, active, invoice.customer_id)
    usage = tuple(fetch_quantities(usage_store, tenant_id, [item]).get(item.key, ()))
    cutoff = utcnow()
    result = rate_with_effects(
        session,
        subscription,
        period,
        invoice.customer_id,
        usage,
        tax_rates(session, tenant_id),
        tax,
        tenant_id=tenant_id,
        prior_lines=late_usage(
            session, usage_store, tenant_id, subscription, period.start, cutoff, invoice.id
        ),
    )
    fresh = invoice_row(
        tenant_id, invoice.bill_run_id, invoice.customer_id, result.invoice, late_through=cutoff
    )
    invoice.lines = fresh.lines
    for name in ("subtotal", "discount_total", "tax_total", "credit_total", "total"):
        setattr(invoice, name, getattr(fresh, name))
    invoice.amount_due = fresh.amount_due - invoice.amount_paid
    session.flush()
    apply_effects(session, tenant_id, invoice.id, subscription.id, result)
    return invoice


LATE_STATUSES = ("OPEN", "PAID", "OVERDUE", "UNCOLLECTIBLE")


def late_usage(
    session: Session,
    usage_store: UsageStore,
    tenant_id: str,
    subscription: Subscription,
    before: datetime,
    cutoff: datetime,
    exclude_invoice_id: str | None = None,
) -> tuple[InvoiceLine, ...]:
    """Prior-period lines for events of this subscription's finalized invoices (periods
    ending by `before`) that were stored after the invoice, up to `cutoff`.

    Late usage already billed on another invoice (its lines' `late_through`) is not
    billed again; `exclude_invoice_id` is the draft being refreshed, whose own late
    lines are being replaced."""
    invoices = (
        session.execute(
            select(InvoiceRow)
            .where(
                InvoiceRow.subscription_id == subscription.id,
                InvoiceRow.status.in_(LATE_STATUSES),
                InvoiceRow.period_end <= before,
                InvoiceRow.finalized_at.is_not(None),
            )
            .order_by(InvoiceRow.period_start)
        )
        .unique()
        .scalars()
        .all()
    )
    lines: list[InvoiceLine] = []
    for old in invoices:
        assert old.finalized_at is not None
        billed_through = (
            session.execute(
                select(InvoiceLineRow.late_through).where(
                    InvoiceLineRow.prior_invoice_id == old.id,
                    InvoiceLineRow.invoice_id != (exclude_invoice_id or ""),
                )
            )
            .scalars()
            .all()
        )
        since = max([old.finalized_at, *(t for t in billed_through if t is not None)])
        if since >= cutoff:
            continue
        period = Period(old.period_start, old.period_end)
        active = period.overlap(subscription.start, subscription.end) or period
        customer = subscription.customer.external_id
        billed: dict[tuple[str, Group], Decimal] = {}
        known: dict[tuple[str, Group], Decimal] = {}
        for charge in subscription.plan.charges:
            if not supports_late_billing(charge):
                continue
            for through, target in ((since, billed), (cutoff, known)):
                for _code, group, quantity in usage_store.customer_usage(
                    tenant_id,
                    customer,
                    [charge.metric],
                    active.start,
                    active.end,
                    period=period,
                    extra_filters=charge.filters,
                    ingested_through=through,
                ):
                    target[(charge.id, group)] = quantity
        lines.extend(
            late_usage_lines(
                subscription.plan.charges, period, old.id, billed, known, subscription.plan.currency
            )
        )
    return tuple(lines)

"""The bill runner on a real ledger (SQLite, and PostgreSQL when configured), with an
in-memory usage source and a frozen clock: exact invoices through one rating path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from api.schemas.catalog import MetricCreate, PlanCreate
from api.schemas.credits import AppliedCouponCreate, CouponCreate, WalletCreate
from api.schemas.customers import CustomerCreate, SubscriptionCreate
from core.clock import FrozenClock
from core.errors import Transient
from invoicing import invoices as invoice_ops
from invoicing.billing import BillRunner, create_bill_run
from invoicing.billing.loading import subscription_pages
from invoicing.catalog import create_customer, create_metric, create_plan, create_subscription
from invoicing.coupons import apply_coupon, create_coupon
from invoicing.db import make_engine, make_sessionmaker
from invoicing.models import (
    AppliedCouponRow,
    InvoiceLineRow,
    InvoiceRow,
    RolloverBucketRow,
    WalletRow,
)
from invoicing.tax.service import TaxService
from invoicing.tenants import create_tenant
from invoicing.wallets import create_wallet
from rating.context import BillingContext
from rating.model import Period
from rating.pipeline import RatingResult
from tests.billing.fakes import InMemoryUsage

pytestmark = pytest.mark.ledger

OCT_CLOSE = datetime(2026, 11, 1, 0, 5, tzinfo=UTC)


def d(day: str, hour: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@pytest.fixture
def sessions(ledger_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(ledger_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def tenant(sessions: sessionmaker[Session]) -> str:
    with sessions() as session, session.begin():
        tenant_id = create_tenant(session, "billing").tenant_id
        create_metric(
            session,
            tenant_id,
            MetricCreate.model_validate(
                {"code": "calls", "name": "Calls", "aggregation": "sum"}
            ).to_spec(),
        )
        base = {"currency": "USD", "interval": "monthly", "baseFee": "10"}
        create_plan(
            session,
            tenant_id,
            PlanCreate.model_validate(
                {
                    **base,
                    "code": "basic",
                    "name": "Basic",
                    "charges": [
                        {
                            "metric": "calls",
                            "model": "per_unit",
                            "properties": {"unitAmount": "0.5"},
                        }
                    ],
                }
            ).to_spec(),
        )
        create_plan(
            session,
            tenant_id,
            PlanCreate.model_validate(
                {
                    **base,
                    "code": "roll",
                    "name": "Rollover",
                    "baseFee": "0",
                    "charges": [
                        {
                            "metric": "calls",
                            "model": "per_unit",
                            "properties": {"unitAmount": "0.1"},
                            "includedQuantity": "100",
                            "rollover": {},
                        }
                    ],
                }
            ).to_spec(),
        )
    return tenant_id


def subscribe(sessions: sessionmaker[Session], tenant: str, name: str, plan: str = "basic") -> None:
    with sessions() as session, session.begin():
        create_customer(
            session,
            tenant,
            CustomerCreate.model_validate(
                {"externalId": name, "name": name, "currency": "USD"}
            ).to_spec(),
        )
        create_subscription(
            session,
            tenant,
            SubscriptionCreate.model_validate(
                {"customerId": name, "planCode": plan, "startDate": d("2026-09-01")}
            ).to_spec(),
        )


def bill(
    sessions: sessionmaker[Session],
    tenant: str,
    usage: InMemoryUsage,
    month: tuple[str, str],
    at: datetime,
    tax: TaxService | None = None,
    **options: Any,
) -> Any:
    with sessions() as session, session.begin():
        run_id = create_bill_run(session, tenant, d(month[0]), d(month[1])).id
    return BillRunner(sessions, usage, tax, FrozenClock(at), **options).run(run_id)


def invoices_of(sessions: sessionmaker[Session], tenant: str) -> dict[tuple[str, str], Any]:
    """(customer, period start day) → (subtotal, discount, credit, total, due, lines)."""
    with sessions() as session:
        rows = session.execute(select(InvoiceRow).where(InvoiceRow.tenant_id == tenant))
        return {
            (inv.customer.external_id, inv.period_start.date().isoformat()): (
                str(inv.subtotal),
                str(inv.discount_total),
                str(inv.credit_total),
                str(inv.total),
                str(inv.amount_due),
                [(ln.type, str(ln.quantity), str(ln.amount)) for ln in inv.lines],
            )
            for inv in rows.unique().scalars()
        }


def calls(usage: InMemoryUsage, who: str, day: str, n: str, stored: datetime | None = None) -> None:
    usage.add(who, "calls", d(day, 10), n, stored or d(day, 11))


def test_coupons_wallets_and_plain_customers_through_one_path(sessions, tenant):
    usage = InMemoryUsage()
    for name in ("plain", "coupon", "wallet"):
        subscribe(sessions, tenant, name)
        calls(usage, name, "2026-10-10", "30")
    with sessions() as session, session.begin():
        create_coupon(
            session,
            tenant,
            CouponCreate.model_validate(
                {"code": "five", "type": "fixed", "amount": "5", "currency": "USD"}
            ).to_spec(),
        )
        apply_coupon(
            session,
            tenant,
            "coupon",
            AppliedCouponCreate.model_validate({"couponCode": "five"}).to_spec(),
            OCT_CLOSE,
        )
        create_wallet(
            session,
            tenant,
            WalletCreate.model_validate({"customerId": "wallet", "credits": "8"}).to_spec(),
        )

    run = bill(sessions, tenant, usage, ("2026-10-01", "2026-11-01"), OCT_CLOSE, chunk_size=2)
    assert (run.status, run.total, run.processed, run.invoices_created, run.failed) == (
        "completed", 3, 3, 3, 0,
    )  # fmt: skip
    fee_and_calls = [("CHARGE", "1", "10"), ("USAGE_FEE", "30", "15")]
    assert invoices_of(sessions, tenant) == {
        ("plain", "2026-10-01"): ("25", "0", "0", "25", "25", fee_and_calls),
        ("coupon", "2026-10-01"): (
            "25", "5", "0", "20", "20", [*fee_and_calls, ("DISCOUNT", "1", "-5")],
        ),
        ("wallet", "2026-10-01"): ("25", "0", "8", "25", "17", fee_and_calls),
    }  # fmt: skip
    with sessions() as session:
        [coupon] = session.execute(select(AppliedCouponRow)).unique().scalars()
        [wallet] = session.execute(select(WalletRow)).scalars()
        assert (coupon.status, wallet.balance) == ("terminated", Decimal(0))
        assert run.started_at == run.finished_at == OCT_CLOSE


def test_a_rerun_creates_nothing_and_takes_nothing_twice(sessions, tenant):
    usage = InMemoryUsage()
    subscribe(sessions, tenant, "wallet")
    calls(usage, "wallet", "2026-10-10", "30")
    with sessions() as session, session.begin():
        create_wallet(
            session,
            tenant,
            WalletCreate.model_validate({"customerId": "wallet", "credits": "100"}).to_spec(),
        )
    bill(sessions, tenant, usage, ("2026-10-01", "2026-11-01"), OCT_CLOSE)
    first = invoices_of(sessions, tenant)
    again = bill(sessions, tenant, usage, ("2026-10-01", "2026-11-01"), OCT_CLOSE)
    assert (again.status, again.total, again.invoices_created) == ("completed", 0, 0)
    assert invoices_of(sessions, tenant) == first
    with sessions() as session:
        [wallet] = session.execute(select(WalletRow)).scalars()
        assert wallet.balance == Decimal(75)


def test_rollover_carries_to_the_next_month(sessions, tenant):
    usage = InMemoryUsage()
    subscribe(sessions, tenant, "r", plan="roll")
    calls(usage, "r", "2026-10-10", "60")
    calls(usage, "r", "2026-11-10", "170")
    bill(sessions, tenant, usage, ("2026-10-01", "2026-11-01"), OCT_CLOSE)
    bill(sessions, tenant, usage, ("2026-11-01", "2026-12-01"), d("2026-12-01", 1))
    # October: 60 of 100 included → 40 carried; November: 170 − 140 = 30 × 0.10 = 3.00.
    got = invoices_of(sessions, tenant)
    assert got[("r", "2026-10-01")][3:5] == ("0", "0")
    assert got[("r", "2026-11-01")] == ("3", "0", "0", "3", "3", [("USAGE_FEE", "30", "3")])
    with sessions() as session:
        buckets = session.execute(select(RolloverBucketRow)).scalars().all()
        # October's 40 were consumed by November's invoice, which left nothing to carry.
        assert [(str(b.quantity), b.consumed_by is not None) for b in buckets] == [("40", True)]


class FailingFor(TaxService):
    """A tax provider that is down for one customer."""

    def __init__(self, customer: str) -> None:
        super().__init__()
        self.customer = customer

    def rate(self, tenant_id: str, context: BillingContext) -> RatingResult:
        if context.subscription.customer.external_id == self.customer:
            raise Transient("tax provider unavailable", code="tax_provider_unavailable")
        return super().rate(tenant_id, context)


def test_one_failing_subscription_is_recorded_and_the_others_are_invoiced(sessions, tenant):
    usage = InMemoryUsage()
    for name in ("a", "bad", "c"):
        subscribe(sessions, tenant, name)
    run = bill(sessions, tenant, usage, ("2026-10-01", "2026-11-01"), OCT_CLOSE, FailingFor("bad"))
    assert (run.status, run.invoices_created, run.failed) == ("completed", 2, 1)
    [failure] = run.failures
    assert (failure["customerId"], failure["code"], failure["retryable"]) == (
        "bad", "tax_provider_unavailable", True,
    )  # fmt: skip
    assert sorted(invoices_of(sessions, tenant)) == [("a", "2026-10-01"), ("c", "2026-10-01")]
    # A later run (the provider back) invoices what failed, and only that.
    again = bill(sessions, tenant, usage, ("2026-10-01", "2026-11-01"), OCT_CLOSE)
    assert (again.invoices_created, again.failed) == (1, 0)


def test_late_usage_is_billed_through_the_clock_and_a_rerun_bills_the_same(sessions, tenant):
    usage = InMemoryUsage()
    subscribe(sessions, tenant, "late")
    calls(usage, "late", "2026-09-10", "10")
    bill(sessions, tenant, usage, ("2026-09-01", "2026-10-01"), d("2026-10-01", 1))
    with sessions() as session, session.begin():
        [september] = session.execute(select(InvoiceRow.id)).scalars()
        invoice_ops.finalize(session, tenant, september, 30, now=d("2026-10-01", 2))
    # 4 September calls stored late, before the October close; 6 more after it.
    calls(usage, "late", "2026-09-20", "4", stored=d("2026-10-05"))
    calls(usage, "late", "2026-09-21", "6", stored=d("2026-11-02"))
    calls(usage, "late", "2026-10-10", "2")

    def october() -> Any:
        bill(sessions, tenant, usage, ("2026-10-01", "2026-11-01"), OCT_CLOSE)
        with sessions() as session:
            row = (
                session.execute(
                    select(InvoiceRow).where(InvoiceRow.period_start == d("2026-10-01"))
                )
                .unique()
                .scalar_one()
            )
            lines = [
                (ln.type, str(ln.quantity), str(ln.amount), ln.prior_invoice_id, ln.late_through)
                for ln in row.lines
            ]
            return str(row.total), lines

    first = october()
    assert first == (
        "13",
        [
            ("CHARGE", "1", "10", None, None),
            ("USAGE_FEE", "2", "1", None, None),
            ("USAGE_FEE", "4", "2", september, OCT_CLOSE),
        ],
    )
    # The same run again at the same clock time bills the same.
    with sessions() as session, session.begin():
        ids = select(InvoiceRow.id).where(InvoiceRow.period_start == d("2026-10-01"))
        session.execute(delete(InvoiceLineRow).where(InvoiceLineRow.invoice_id.in_(ids)))
        session.execute(delete(InvoiceRow).where(InvoiceRow.period_start == d("2026-10-01")))
    assert october() == first


def test_pages_hold_whole_customers_in_external_id_order(sessions, tenant):
    # Created out of order; "bob" has two subscriptions, "carol" none that bill.
    for name in ("dave", "bob", "alice"):
        subscribe(sessions, tenant, name)
    with sessions() as session, session.begin():
        create_subscription(
            session,
            tenant,
            SubscriptionCreate.model_validate(
                {"customerId": "bob", "planCode": "basic", "startDate": d("2026-09-15")}
            ).to_spec(),
        )
        create_customer(
            session,
            tenant,
            CustomerCreate.model_validate(
                {"externalId": "carol", "name": "carol", "currency": "USD"}
            ).to_spec(),
        )
    window = Period(d("2026-10-01"), d("2026-11-01"))
    pages = [
        [s.customer.external_id for s, _ in page]
        for page in subscription_pages(sessions, tenant, window, 2)
    ]
    # Two customers a page: bob's two subscriptions share his page; carol's page has
    # only dave's (she has none), and no page is empty.
    assert pages == [["alice", "bob", "bob"], ["dave"]]
    usage = InMemoryUsage()
    run = bill(sessions, tenant, usage, ("2026-10-01", "2026-11-01"), OCT_CLOSE, chunk_size=2)
    assert (run.status, run.invoices_created) == ("completed", 4)

"""The catalog, credit and tax functions on typed specs (invoicing.specs), both backends:
domain rules stay in the domain (known metrics, codes, ranges, duplicates), and lists
page through the one keyset helper."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, InvalidInput, NotFound
from invoicing import catalog, coupons, taxes, wallets
from invoicing.db import transaction
from invoicing.specs import (
    AppliedCouponSpec,
    ChargeSpec,
    CouponSpec,
    CustomerPatch,
    FixedChargeSpec,
    MetricSpec,
    PlanSpec,
    RolloverSpec,
    SubscriptionSpec,
    TaxSpec,
    WalletSpec,
)
from tests.ledger import new_tenant, session_factory

pytestmark = pytest.mark.ledger

API_CALLS = MetricSpec(code="api_calls", name="API calls", aggregation="count")
COUPON_DAY = datetime(2026, 10, 20, tzinfo=UTC)
PER_CALL = ChargeSpec(metric="api_calls", model="per_unit", properties={"unitAmount": "0.01"})


@pytest.fixture
def factory(ledger_url: str) -> Iterator[sessionmaker[Session]]:
    with session_factory(ledger_url) as f:
        yield f


def _plan(**changes: object) -> PlanSpec:
    base = {"code": "pro", "name": "Pro", "currency": "usd", "interval": "monthly"}
    return PlanSpec(**(base | changes))  # type: ignore[arg-type]


def test_a_plan_stores_its_charges_exactly(factory: sessionmaker[Session]) -> None:
    tenant, _ = new_tenant(factory)
    with transaction(factory) as session:
        catalog.create_metric(session, tenant, API_CALLS)
        charge = ChargeSpec(
            metric="api_calls",
            model="graduated",
            properties={
                "tiers": [{"upTo": 10, "unitAmount": "0"}, {"upTo": None, "unitAmount": 1}]
            },
            included_quantity=Decimal("10.50"),
            hard_cap=Decimal("1E+3"),
            rollover=RolloverSpec(cap=Decimal(5)),
        )
        fixed = FixedChargeSpec(name="Setup", amount=Decimal("99.90"), one_time=True)
        row = catalog.create_plan(
            session,
            tenant,
            _plan(base_fee=Decimal("12.50"), charges=(charge,), fixed_charges=(fixed,)),
        )
        assert (row.currency, row.base_fee) == ("USD", Decimal("12.50"))
        [doc] = row.charges
        assert (doc["includedQuantity"], doc["hardCap"]) == ("10.50", "1000")
        assert doc["rollover"] == {"cap": "5", "expiryPeriods": None}
        assert doc["properties"]["tiers"][1] == {"upTo": None, "unitAmount": "1", "flatAmount": "0"}
        [fee] = row.fixed_charges
        assert (fee["amount"], fee["units"], fee["oneTime"], fee["payInAdvance"]) == (
            "99.90",
            "1",
            True,
            True,
        )
        # The bill run's view of the plan, unchanged by the specs.
        domain = catalog.plan_domain(row, catalog.metrics_by_code(session, tenant))
        assert domain.charges[0].hard_cap == Decimal(1000)
        assert domain.charges[0].included_quantity == Decimal("10.50")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": "XYZ"}, "currency 'XYZ' is not an ISO 4217 code"),
        ({"interval": "daily"}, "interval must be one of"),
        ({"base_fee": Decimal(-1)}, "baseFee must not be negative"),
        (
            {"minimum_commitment": Decimal(10), "maximum_spend": Decimal(5)},
            "maximumSpend must not be below minimumCommitment",
        ),
        (
            {"charges": (ChargeSpec(metric="nope", model="per_unit"),)},
            "charges[0].metric 'nope' is not a metric of this tenant",
        ),
        (
            {"charges": (PER_CALL, ChargeSpec(metric="api_calls", model="per_unit"))},
            "charges[1].properties: ",
        ),
        (
            {"charges": (ChargeSpec(**{**PER_CALL.__dict__, "hard_cap": Decimal(-1)}),)},
            "charges[0].hardCap must not be negative",
        ),
        (
            {"fixed_charges": (FixedChargeSpec(name="", amount=Decimal(1)),)},
            "fixedCharges[0].name is required",
        ),
    ],
)
def test_plan_rules(
    factory: sessionmaker[Session], changes: dict[str, object], message: str
) -> None:
    tenant, _ = new_tenant(factory)
    with transaction(factory) as session:
        catalog.create_metric(session, tenant, API_CALLS)
    with transaction(factory) as session, pytest.raises(InvalidInput) as caught:
        catalog.create_plan(session, tenant, _plan(**changes))
    assert message in caught.value.message
    with factory() as session:
        assert catalog.list_plans(session, tenant, limit=10).rows == []


def test_duplicates_are_conflicts_and_the_transaction_goes_on(
    factory: sessionmaker[Session],
) -> None:
    tenant, _ = new_tenant(factory)
    with transaction(factory) as session:
        catalog.create_metric(session, tenant, API_CALLS)
        with pytest.raises(Conflict) as caught:
            catalog.create_metric(session, tenant, API_CALLS)
        assert caught.value.code == "duplicate"
        catalog.create_plan(session, tenant, _plan(charges=(PER_CALL,)))
        with pytest.raises(Conflict):
            catalog.create_plan(session, tenant, _plan())
        taxes.create_tax(session, tenant, TaxSpec(code="vat", name="VAT", rate=Decimal(19)))
        with pytest.raises(Conflict):
            taxes.create_tax(session, tenant, TaxSpec(code="vat", name="VAT", rate=Decimal(7)))
    with factory() as session:
        assert [m.code for m in catalog.list_metrics(session, tenant, limit=5).rows] == [
            "api_calls"
        ]


def test_metric_rules(factory: sessionmaker[Session]) -> None:
    tenant, _ = new_tenant(factory)
    with transaction(factory) as session:
        with pytest.raises(InvalidInput, match="aggregation must be one of"):
            catalog.create_metric(session, tenant, MetricSpec("m", "M", "median"))
        with pytest.raises(InvalidInput, match="a count metric counts events"):
            catalog.create_metric(session, tenant, MetricSpec("m", "M", "count", field="gb"))
        with pytest.raises(InvalidInput, match=r"filters\.region must be a non-empty list"):
            catalog.create_metric(
                session, tenant, MetricSpec("m", "M", "sum", filters={"region": ()})
            )
        row = catalog.create_metric(
            session, tenant, MetricSpec("gb", "GB", "sum", field="gb", filters={"r": ("eu",)})
        )
        assert (row.field, row.filters, row.group_by) == ("gb", {"r": ["eu"]}, [])


def test_update_customer_applies_the_rules_of_create(factory: sessionmaker[Session]) -> None:
    tenant, _ = new_tenant(factory)
    for patch, message in [
        (CustomerPatch(country="germany", sent=frozenset({"country"})), "country must be"),
        (CustomerPatch(currency="XYZ"), "is not an ISO 4217 code"),
        (CustomerPatch(invoice_grace_days=-1), "invoiceGraceDays must not be negative"),
    ]:
        with transaction(factory) as session, pytest.raises(InvalidInput, match=message):
            catalog.update_customer(session, tenant, "acme", patch)
    with transaction(factory) as session:
        row = catalog.update_customer(
            session,
            tenant,
            "acme",
            CustomerPatch(country="de", email="a@acme.test", sent=frozenset({"country", "email"})),
        )
        assert (row.country, row.email, row.name) == ("DE", "a@acme.test", "Acme")
    with transaction(factory) as session:
        # Only what was sent changes; a nullable field sent as None is cleared.
        row = catalog.update_customer(
            session, tenant, "acme", CustomerPatch(email=None, sent=frozenset({"email"}))
        )
        assert (row.country, row.email) == ("DE", None)
    with transaction(factory) as session, pytest.raises(NotFound):
        catalog.update_customer(session, tenant, "nobody", CustomerPatch())


def test_subscription_rules_and_pages(factory: sessionmaker[Session]) -> None:
    tenant, _ = new_tenant(factory)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    with transaction(factory) as session:
        catalog.create_metric(session, tenant, API_CALLS)
        catalog.create_plan(session, tenant, _plan(charges=(PER_CALL,)))
        with pytest.raises(InvalidInput, match="plan 'missing' not found"):
            catalog.create_subscription(session, tenant, SubscriptionSpec("acme", "missing", start))
        with pytest.raises(InvalidInput, match="endDate must be after startDate"):
            catalog.create_subscription(
                session, tenant, SubscriptionSpec("acme", "pro", start, end_date=start)
            )
        overrides = {"charges": {"api_calls": {"includedQuantity": 7, "hardCap": "-1"}}}
        with pytest.raises(InvalidInput, match=r"overrides\.charges\.api_calls\.hardCap"):
            catalog.create_subscription(
                session, tenant, SubscriptionSpec("acme", "pro", start, overrides=overrides)
            )
        ids = [
            catalog.create_subscription(
                session, tenant, SubscriptionSpec("acme", "pro", start, id=f"sub_{i}")
            ).id
            for i in range(3)
        ]
    with factory() as session:
        first = catalog.list_subscriptions(session, tenant, limit=2, customer_external_id="acme")
        rest = catalog.list_subscriptions(session, tenant, limit=2, cursor=first.next_cursor)
        assert [r.id for r in first.rows + rest.rows] == list(reversed(ids))
        assert first.next_cursor is not None and rest.next_cursor is None
        with pytest.raises(InvalidInput, match="cursor is not valid"):
            catalog.list_subscriptions(session, tenant, limit=2, cursor="nope")
    now = datetime(2026, 10, 20, tzinfo=UTC)
    with transaction(factory) as session:
        ended = catalog.terminate_subscription(session, tenant, ids[0], now=now)
        assert (ended.status, ended.terminated_at, ended.end_date) == ("terminated", now, now)


def test_coupon_tax_and_wallet_rules(factory: sessionmaker[Session]) -> None:
    tenant, _ = new_tenant(factory)
    with transaction(factory) as session:
        for spec, message in [
            (CouponSpec("c", kind="bogus"), "type must be 'percentage' or 'fixed'"),
            (CouponSpec("c", kind="percentage"), "percentage is required"),
            (CouponSpec("c", "percentage", percentage=Decimal(101)), "at most 100"),
            (CouponSpec("c", "fixed", amount=Decimal(5)), "needs its currency"),
            (CouponSpec("c", "fixed", amount=Decimal(5), currency="USD", frequency="recurring"),
             "needs frequencyDuration"),
        ]:  # fmt: skip
            with pytest.raises(InvalidInput, match=message):
                coupons.create_coupon(session, tenant, spec)
        coupons.create_coupon(
            session, tenant, CouponSpec("ten", "fixed_amount", amount=Decimal(10), currency="usd")
        )
        applied = coupons.apply_coupon(
            session, tenant, "acme", AppliedCouponSpec("ten"), COUPON_DAY
        )
        assert (applied.amount_remaining, applied.coupon.kind) == (Decimal(10), "fixed")
        with pytest.raises(Conflict):
            coupons.apply_coupon(session, tenant, "acme", AppliedCouponSpec("ten"), COUPON_DAY)
        assert [r.id for r in coupons.applied_coupons(session, tenant, "acme").rows] == [applied.id]

        with pytest.raises(InvalidInput, match="a region needs its country"):
            taxes.create_tax(session, tenant, TaxSpec("t", "T", Decimal(5), region="CA"))
        with pytest.raises(InvalidInput, match="rate must not be negative"):
            taxes.create_tax(session, tenant, TaxSpec("t", "T", Decimal(-5)))

        with pytest.raises(InvalidInput, match="more decimals than USD allows"):
            wallets.create_wallet(session, tenant, WalletSpec("acme", credits=Decimal("1.001")))
        with pytest.raises(InvalidInput, match="customer's currency USD"):
            wallets.create_wallet(session, tenant, WalletSpec("acme", currency="EUR"))
        with pytest.raises(InvalidInput, match=r"scope\.feeTypes"):
            wallets.create_wallet(session, tenant, WalletSpec("acme", scope_fee_types=("x",)))
        wallet = wallets.create_wallet(
            session,
            tenant,
            WalletSpec("acme", credits=Decimal("20.50"), scope_fee_types=("charge",)),
        )
        assert (wallet.balance, wallet.scope_fee_types) == (Decimal("20.50"), ["CHARGE"])
        assert [w.id for w in wallets.list_wallets(session, tenant, "acme").rows] == [wallet.id]
        assert wallet.customer.external_id == "acme"

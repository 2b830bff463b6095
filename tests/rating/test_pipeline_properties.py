"""Properties of the whole pipeline, for random plans, usage, coupons, taxes and wallets."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rating import pricing
from rating.context import (
    AppliedCoupon,
    BillingContext,
    QuotedTax,
    RatingState,
    RolloverBucket,
    TaxRate,
    WalletBalance,
)
from rating.model import (
    Aggregation,
    Customer,
    FixedCharge,
    Interval,
    LineType,
    MeteredQuantity,
    Metric,
    Plan,
    RolloverRule,
    Subscription,
    UsageCharge,
)
from rating.money import percent, quantum, round_money
from rating.pipeline import STAGES, finish, rate_subscription, rate_until_tax
from rating.stages.aggregate import aggregate
from rating.stages.allowance import allowance
from rating.stages.commit import committed_amount
from rating.stages.quota_check import quota_check
from rating.stages.rollover import rollover
from rating.stages.tax import applicable_rate, taxable_positions
from tests.helpers.dates import OCTOBER

PROPERTY = settings(max_examples=200, deadline=None)
METRICS = (
    Metric("api_calls", "API calls", Aggregation.COUNT, group_by=("region",)),
    Metric("storage", "Storage", Aggregation.SUM),
    Metric("seats", "Seats", Aggregation.MAX),
)
REGIONS = ("eu", "us", "ap")


def scaled(max_value: int, places: int) -> st.SearchStrategy[D]:
    return st.integers(min_value=0, max_value=max_value).map(lambda n: D(n).scaleb(-places))


money = st.one_of(scaled(100_000, 2), scaled(1000, 0))
quantities = st.one_of(scaled(10**7, 3), st.integers(0, 5000).map(D))
unit_prices = scaled(10**6, 6)


@st.composite
def tiers(draw: st.DrawFn, rate_key: str = "unitAmount") -> list[dict[str, Any]]:
    bounds = sorted(draw(st.sets(st.integers(1, 20_000), max_size=3)))
    values = unit_prices if rate_key == "unitAmount" else scaled(10_000, 2)
    rows: list[dict[str, Any]] = []
    for bound in [*bounds, None]:
        rows.append(
            {
                "upTo": None if bound is None else str(bound),
                rate_key: str(draw(values)),
                "flatAmount": str(draw(st.one_of(st.just(D(0)), scaled(5000, 2)))),
            }
        )
    return rows


@st.composite
def charge_model(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    model = draw(st.sampled_from(["per_unit", "graduated", "volume", "package"]))
    if model == "per_unit":
        raw: dict[str, Any] = {"unitAmount": str(draw(unit_prices))}
    elif model == "package":
        raw = {
            "amount": str(draw(money)),
            "packageSize": str(draw(st.integers(1, 1000))),
            "freeUnits": str(draw(st.integers(0, 100))),
        }
    else:
        raw = {"tiers": draw(tiers())}
    return model, pricing.validate_properties(model, raw)


@st.composite
def usage_charges(draw: st.DrawFn) -> tuple[UsageCharge, ...]:
    charges = []
    for i, metric in enumerate(draw(st.lists(st.sampled_from(METRICS), min_size=1, max_size=3))):
        model, properties = draw(charge_model())
        charges.append(
            UsageCharge(
                id=f"c{i}",
                metric=metric,
                model=model,
                properties=properties,
                included_quantity=draw(st.one_of(st.just(D(0)), quantities)),
                hard_cap=draw(st.none() | quantities),
                rollover=draw(
                    st.none()
                    | st.builds(
                        RolloverRule,
                        cap=st.none() | quantities,
                        expiry_periods=st.none() | st.integers(1, 3),
                    )
                ),
                pay_in_advance=draw(st.booleans()),
            )
        )
    return tuple(charges)


@st.composite
def fixed_charges(draw: st.DrawFn) -> tuple[FixedCharge, ...]:
    return tuple(
        FixedCharge(
            id=f"fx{i}",
            name=f"Fixed {i}",
            amount=draw(money),
            units=D(draw(st.integers(1, 5))),
            one_time=draw(st.booleans()),
            pay_in_advance=draw(st.booleans()),
            prorated=draw(st.booleans()),
        )
        for i in range(draw(st.integers(0, 2)))
    )


@st.composite
def contexts(draw: st.DrawFn, with_commitments: bool = True) -> BillingContext:
    currency = draw(st.sampled_from(["USD", "JPY", "BHD"]))
    minimum = maximum = None
    if with_commitments:
        minimum = draw(st.none() | money)
        maximum = draw(st.none() | money)
    plan = Plan(
        code=draw(st.sampled_from(["pro", "team"])),
        name="Plan",
        currency=currency,
        interval=Interval.MONTHLY,
        base_fee=draw(st.one_of(st.just(D(0)), money)),
        pay_in_advance=draw(st.booleans()),
        trial_days=draw(st.sampled_from([0, 0, 10, 45])),
        minimum_commitment=minimum,
        maximum_spend=maximum,
        charges=draw(usage_charges()),
        fixed_charges=draw(fixed_charges()),
    )
    start = OCTOBER.start + timedelta(
        days=draw(st.integers(-40, 30)), hours=draw(st.integers(0, 23))
    )
    end = draw(st.none() | st.integers(1, 90).map(lambda d: start + timedelta(days=d)))
    customer = Customer(
        "acme",
        "Acme",
        currency,
        country=draw(st.sampled_from(["FR", "CA", "US", None])),
        region=draw(st.sampled_from(["QC", "ON", None])),
        tax_exempt=draw(st.booleans()),
    )
    usage: list[MeteredQuantity] = []
    for charge in plan.charges:
        groups: list[tuple[tuple[str, str], ...]] = [()]
        if charge.metric.group_by:
            groups = [(("region", r),) for r in draw(st.sets(st.sampled_from(REGIONS)))]
        usage.extend(MeteredQuantity(charge.id, draw(quantities), group=g) for g in groups)
    coupons = [
        AppliedCoupon(
            id=f"cp{i}",
            code=f"C{i}",
            kind=kind,
            percentage=draw(scaled(100_00, 2)) if kind == "percentage" else D(0),
            amount_remaining=draw(money) if kind == "fixed" else D(0),
            plan_codes=draw(st.sampled_from([(), ("pro",), ("team", "other")])),
            metric_codes=draw(st.sampled_from([(), ("api_calls",), ("storage", "seats")])),
        )
        for i, kind in enumerate(
            draw(st.lists(st.sampled_from(["percentage", "fixed"]), max_size=3))
        )
    ]
    tax_rates = [
        TaxRate(f"t{i}", f"Tax {i}", draw(scaled(30_000, 3)), country, region)
        for i, (country, region) in enumerate(
            draw(
                st.lists(
                    st.sampled_from([("FR", None), ("CA", None), ("CA", "QC"), (None, None)]),
                    max_size=3,
                )
            )
        )
    ]
    wallets = [
        WalletBalance(
            id=f"w{i}",
            priority=draw(st.integers(1, 3)),
            balance=draw(st.one_of(money, scaled(100_000, 4))),
            expires_at=draw(
                st.none() | st.integers(-10, 60).map(lambda d: OCTOBER.end + timedelta(days=d))
            ),
            metric_codes=draw(st.sampled_from([(), ("api_calls",), ("storage",)])),
            fee_types=draw(st.sampled_from([(), ("USAGE_FEE",), ("CHARGE", "SETUP_FEE")])),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    rollover_in = {
        charge.id: tuple(
            RolloverBucket(
                draw(quantities), OCTOBER.end + timedelta(days=draw(st.integers(-31, 62)))
            )
            for _ in range(draw(st.integers(0, 2)))
        )
        for charge in plan.charges
    }
    return BillingContext(
        subscription=Subscription("sub", customer, plan, start, end),
        period=OCTOBER,
        usage=tuple(draw(st.permutations(usage))),
        rollover_in=rollover_in,
        coupons=tuple(coupons),
        tax_rates=tuple(tax_rates),
        wallets=tuple(wallets),
    )


@PROPERTY
@given(contexts())
def test_total_is_the_sum_of_rounded_lines(context: BillingContext) -> None:
    invoice = rate_subscription(context).invoice
    step = quantum(context.currency)
    for line in invoice.lines:
        for value in (line.amount, line.tax_amount, line.discount_amount):
            assert value == value.quantize(step)
    assert invoice.total == sum((ln.amount + ln.tax_amount for ln in invoice.lines), D(0))
    assert invoice.total == invoice.subtotal - invoice.discount_total + invoice.tax_total
    assert invoice.amount_due == invoice.total - invoice.credit_total
    assert invoice.total >= 0


@PROPERTY
@given(contexts())
def test_allowance_never_makes_a_billable_quantity_negative(context: BillingContext) -> None:
    state = RatingState(context=context)
    for stage in (quota_check, rollover, aggregate, allowance):
        state = stage(state)
    used: dict[str, D] = {}
    for q in state.quantities:
        assert q.billable >= 0
        assert q.billable == max(q.quantity - q.allowance_used, D(0))
        assert q.billable <= max(q.quantity, D(0))
        if q.charge.hard_cap is not None:
            assert q.quantity <= q.charge.hard_cap
        used[q.charge.id] = used.get(q.charge.id, D(0)) + q.allowance_used
    for charge_id, total in used.items():
        assert total <= state.allowances[charge_id]
    for charge in context.subscription.plan.charges:
        if charge.rollover is not None and charge.rollover.cap is not None:
            carried = sum((b.quantity for b in state.rollover_out[charge.id]), D(0))
            assert carried <= charge.rollover.cap


@PROPERTY
@given(contexts())
def test_discounts_never_make_a_line_negative(context: BillingContext) -> None:
    result = rate_subscription(context)
    invoice = result.invoice
    for line in invoice.lines:
        if line.type == LineType.DISCOUNT:
            assert line.amount < 0
            continue
        assert 0 <= line.discount_amount <= line.amount
    assert 0 <= invoice.discount_total <= invoice.subtotal
    for coupon, use in zip(context.coupons, result.coupon_uses, strict=True):
        assert use.coupon_id == coupon.id
        if coupon.kind == "fixed":
            assert use.amount + use.remaining == coupon.amount_remaining
            assert use.remaining >= 0


@PROPERTY
@given(contexts())
def test_maximum_spend_is_never_exceeded(context: BillingContext) -> None:
    invoice = rate_subscription(context).invoice
    maximum = context.subscription.plan.maximum_spend
    active = context.active
    if maximum is None or active is None:
        return
    usage = [ln for ln in invoice.lines if ln.type == LineType.USAGE_FEE]
    adjustment = sum(
        (ln.amount for ln in invoice.lines if ln.description == "Maximum spend adjustment"), D(0)
    )
    capped = sum((ln.amount for ln in usage), D(0)) + adjustment
    assert capped <= committed_amount(context, maximum, active, ceiling=True) <= maximum


@PROPERTY
@given(contexts())
def test_wallets_pay_at_most_their_balance_and_the_total(context: BillingContext) -> None:
    result = rate_subscription(context)
    balances = {w.id: w.balance for w in context.wallets}
    assert len({d.wallet_id for d in result.wallet_debits}) == len(result.wallet_debits)
    for debit in result.wallet_debits:
        assert 0 < debit.amount <= balances[debit.wallet_id]
    assert 0 <= result.invoice.credit_total <= result.invoice.total
    assert result.invoice.amount_due >= 0


@PROPERTY
@given(contexts(), st.randoms(use_true_random=False))
def test_usage_order_does_not_matter(context: BillingContext, rnd: Any) -> None:
    shuffled = list(context.usage)
    rnd.shuffle(shuffled)
    again = BillingContext(
        subscription=context.subscription,
        period=context.period,
        usage=tuple(shuffled),
        rollover_in=context.rollover_in,
        coupons=context.coupons,
        tax_rates=context.tax_rates,
        wallets=context.wallets,
    )
    assert rate_subscription(again).invoice == rate_subscription(context).invoice


@PROPERTY
@given(
    contexts(with_commitments=False),
    tiers(),
    st.lists(quantities, min_size=2, max_size=4),
    st.none() | money,
)
def test_graduated_invoice_is_non_decreasing_in_usage(
    context: BillingContext, rows: list[dict[str, Any]], usages: list[D], maximum: D | None
) -> None:
    plan = context.subscription.plan
    metric = Metric("api_calls", "API calls", Aggregation.COUNT)
    charge = UsageCharge(
        "g", metric, "graduated", pricing.validate_properties("graduated", {"tiers": rows})
    )
    plan = Plan(
        plan.code,
        plan.name,
        plan.currency,
        plan.interval,
        base_fee=plan.base_fee,
        maximum_spend=maximum,
        charges=(charge,),
        fixed_charges=plan.fixed_charges,
    )
    subscription = Subscription(
        "sub",
        context.subscription.customer,
        plan,
        context.subscription.start,
        context.subscription.end,
    )
    totals = []
    for q in sorted(usages):
        ctx = BillingContext(
            subscription,
            context.period,
            usage=(MeteredQuantity("g", q),),
            coupons=context.coupons,
            tax_rates=context.tax_rates,
        )
        totals.append(rate_subscription(ctx).invoice.total)
    assert totals == sorted(totals)


def test_stages_are_the_composed_pipeline() -> None:
    assert len(STAGES) == 9  # the tenth, Settle, turns the state into the invoice


@PROPERTY
@given(contexts())
def test_split_pipeline_is_the_whole_pipeline(context: BillingContext) -> None:
    assert finish(rate_until_tax(context)) == rate_subscription(context)


@PROPERTY
@given(contexts())
def test_provider_results_equal_to_the_table_give_the_same_invoice(
    context: BillingContext,
) -> None:
    # A provider that answers what the local table computes (one rate, rate × net
    # rounded per line) must produce the invoice of the local path, wallets included.
    state = rate_until_tax(context)
    rate = applicable_rate(context.subscription.customer, context.tax_rates)
    line_taxes = {
        i: QuotedTax(
            rate,
            round_money(
                percent(state.lines[i].amount - state.lines[i].discount_amount, rate),
                context.currency,
            ),
        )
        for i in taxable_positions(state)
    }
    local = rate_subscription(context)
    quoted = finish(state, line_taxes)
    assert quoted.invoice == local.invoice
    assert quoted.wallet_debits == local.wallet_debits

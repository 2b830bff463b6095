"""Progressive billing in rating: thresholds reached, the unbilled lines of the next
progressive invoice, and the period-end credit, so a period is billed exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from rating.context import BillingContext, ProgressiveBilled, RatingState, TaxRate
from rating.model import (
    Aggregation,
    Customer,
    Interval,
    InvoiceLine,
    LineType,
    MeteredQuantity,
    Metric,
    Plan,
    Subscription,
    UsageCharge,
    UsageThreshold,
)
from rating.pipeline import finish, rate_subscription, rate_until_tax
from rating.progressive import reached, unbilled_lines, usage_amount
from tests.helpers.dates import OCTOBER, at

CALLS = Metric("calls", "Calls", Aggregation.COUNT)
STORAGE = Metric("gb", "Storage", Aggregation.SUM)


def _subscription(
    thresholds: Sequence[UsageThreshold] = (), unit: str = "0.5", maximum: str | None = None
) -> Subscription:
    plan = Plan(
        "metered",
        "Metered",
        "EUR",
        Interval.MONTHLY,
        base_fee=D("5"),
        maximum_spend=None if maximum is None else D(maximum),
        charges=(
            UsageCharge("ch_calls", CALLS, "per_unit", {"unitAmount": unit}),
            UsageCharge("ch_gb", STORAGE, "per_unit", {"unitAmount": "0.1"}),
        ),
        usage_thresholds=tuple(thresholds),
    )
    customer = Customer("acme", "Acme", "EUR", country="FR")
    return Subscription("sub", customer, plan, at(2026, 9))


VAT = (TaxRate("vat", "VAT", D("20"), country="FR"),)


def _usage(calls: int, gb: str = "0") -> tuple[MeteredQuantity, ...]:
    return (
        MeteredQuantity("ch_calls", D(calls), event_count=calls),
        MeteredQuantity("ch_gb", D(gb), event_count=1),
    )


def _lines(subscription: Subscription, calls: int, gb: str = "0") -> tuple[InvoiceLine, ...]:
    context = BillingContext(subscription, OCTOBER, usage=_usage(calls, gb))
    return rate_until_tax(context).lines


def test_thresholds_reached_fixed_and_recurring() -> None:
    thresholds = [UsageThreshold(D("10")), UsageThreshold(D("20"), recurring=True)]
    assert reached(thresholds, D("9.99")) == []
    assert reached(thresholds, D("10")) == [D("10")]
    assert reached(thresholds, D("45")) == [D("10"), D("20"), D("40")]
    many = reached([UsageThreshold(D("0.01"), recurring=True)], D("1000"))
    assert len(many) == 100 and many[-1] == D("1000")  # the highest 100 multiples


def test_unbilled_lines_are_what_changed_since_the_last_progressive_invoice() -> None:
    sub = _subscription()
    now = _lines(sub, 45, "10")
    assert usage_amount(now) == D("23.50")  # 22.50 + 1.00; the base fee is not usage
    billed = ProgressiveBilled(
        {("ch_calls", ()): D("12.50"), ("ch_gb", ()): D("1.00")},
        {("ch_calls", ()): D("25"), ("ch_gb", ()): D("10")},
    )
    [calls] = unbilled_lines(now, billed)  # storage is unchanged: no line
    assert (calls.charge_id, calls.quantity, calls.amount) == ("ch_calls", D("20"), D("10.00"))
    assert calls.description == "Calls (usage to date)"


def test_the_period_end_credit_comes_off_before_taxes() -> None:
    sub = _subscription()
    billed = ProgressiveBilled(
        {("ch_calls", ()): D("22.50")}, {("ch_calls", ()): D("45")}, ("INV-000001", "INV-000002")
    )
    context = BillingContext(sub, OCTOBER, usage=_usage(48), tax_rates=VAT, progressive=billed)
    invoice = rate_subscription(context).invoice
    credit = next(ln for ln in invoice.lines if ln.type == LineType.DISCOUNT)
    assert credit.description == "Progressive billing credit (INV-000001, INV-000002)"
    assert credit.amount == D("-22.50")
    assert (invoice.subtotal, invoice.discount_total, invoice.tax_total, invoice.total) == (
        D("29.00"), D("22.50"), D("1.30"), D("7.80"),
    )  # fmt: skip


def test_the_credit_never_exceeds_the_period_usage() -> None:
    # Billed 30.00 progressively, but a maximum spend of 20 caps the period's usage.
    sub = _subscription(maximum="20")
    billed = ProgressiveBilled({("ch_calls", ()): D("30.00")})
    context = BillingContext(sub, OCTOBER, usage=_usage(100), progressive=billed)
    invoice = rate_subscription(context).invoice
    assert invoice.total == D("5.00")  # the base fee: all usage was billed already
    credit = [ln for ln in invoice.lines if ln.description.startswith("Progressive")]
    assert [ln.amount for ln in credit] == [D("-20.00")]


def test_a_maximum_spend_caps_what_is_billed_progressively() -> None:
    # 100 calls at 0.5 = 50.00, capped at 20: thresholds see 20 and bill at most 20.
    sub = _subscription([UsageThreshold(D("10"))], maximum="20")
    lines = _lines(sub, 100)
    assert usage_amount(lines) == D("20.00")
    [calls] = unbilled_lines(lines, None)
    assert calls.amount == D("20.00") and calls.discount_amount == D(0)
    billed = ProgressiveBilled({("ch_calls", ()): calls.amount}, {("ch_calls", ()): D(100)})
    final = rate_subscription(
        BillingContext(sub, OCTOBER, usage=_usage(100), progressive=billed)
    ).invoice
    assert final.total == D("5.00")  # the base fee only: the capped usage was billed


@settings(max_examples=150, deadline=None)
@given(
    unit=st.sampled_from(["0.5", "0.013", "1.99", "0.0007"]),
    steps=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=8),
    gb=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=8),
    thresholds=st.lists(
        st.tuples(st.integers(min_value=1, max_value=300), st.booleans()),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    maximum=st.sampled_from([None, "15", "40", "250"]),
)
def test_progressive_invoices_and_the_period_end_bill_the_period_exactly_once(
    unit: str,
    steps: list[int],
    gb: list[int],
    thresholds: list[tuple[int, bool]],
    maximum: str | None,
) -> None:
    """Usage grows batch by batch; each time a new threshold is reached, the unbilled
    lines are invoiced (taxed alone). Whatever the prices and thresholds, the invoices
    together bill before tax exactly what one period-end invoice would, and their taxes
    differ from its tax by at most half a cent per taxed line (each line rounds alone)."""
    sub = _subscription(
        [UsageThreshold(D(a), recurring=r) for a, r in thresholds], unit=unit, maximum=maximum
    )
    fired: set[D] = set()
    amounts: dict[tuple[str, tuple[tuple[str, str], ...]], D] = {}
    quantities: dict[tuple[str, tuple[tuple[str, str], ...]], D] = {}
    progressive_net = progressive_tax = D(0)
    taxed_lines = 0
    calls, storage = 0, 0
    for step, extra_gb in zip(steps, gb + [0] * len(steps), strict=False):
        calls += step
        storage += extra_gb
        current = _lines(sub, calls, str(D(storage) / 100))
        new = [
            t for t in reached(sub.plan.usage_thresholds, usage_amount(current)) if t not in fired
        ]
        if not new:
            continue
        fired.update(new)
        delta = unbilled_lines(current, ProgressiveBilled(dict(amounts), dict(quantities)))
        if sum((ln.amount for ln in delta), D(0)) <= 0:
            continue
        context = BillingContext(sub, OCTOBER, tax_rates=VAT)
        invoice = finish(RatingState(context=context, lines=delta)).invoice
        taxed_lines += len(delta)
        progressive_net += invoice.subtotal - invoice.discount_total
        progressive_tax += invoice.tax_total
        for ln in delta:
            key = (ln.charge_id or "", ln.group)
            amounts[key] = amounts.get(key, D(0)) + ln.amount
            quantities[key] = quantities.get(key, D(0)) + ln.quantity
    usage = _usage(calls, str(D(storage) / 100))
    whole = rate_subscription(BillingContext(sub, OCTOBER, usage=usage, tax_rates=VAT)).invoice
    billed = ProgressiveBilled(amounts, quantities) if amounts else None
    final = rate_subscription(
        BillingContext(sub, OCTOBER, usage=usage, tax_rates=VAT, progressive=billed)
    ).invoice
    final_net = final.subtotal - final.discount_total
    assert progressive_net + final_net == whole.subtotal - whole.discount_total
    taxed_lines += sum(1 for ln in (*final.lines, *whole.lines) if ln.type != LineType.DISCOUNT)
    assert abs(progressive_tax + final.tax_total - whole.tax_total) <= D("0.005") * taxed_lines
    assert final.total >= 0

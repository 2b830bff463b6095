"""rate_subscription end to end: realistic invoices with exact amounts.

Each scenario is worked out by hand in its comments; the ledger's part (storing
rollover buckets, coupon remainders and wallet debits between invoices) is played by
the test.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from rating.context import (
    AppliedCoupon,
    BillingContext,
    CouponUse,
    QuotedTax,
    RolloverBucket,
    TaxRate,
    WalletBalance,
    WalletDebit,
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
    RatedInvoice,
    RolloverRule,
    Subscription,
    UsageCharge,
)
from rating.pipeline import STAGES, UNTIL_TAX, finish, rate_subscription, rate_until_tax
from tests.helpers.dates import DECEMBER, NOVEMBER, OCTOBER, at

CALLS = Metric("api_calls", "API calls", Aggregation.COUNT)
CALLS_BY_REGION = Metric("api_calls", "API calls", Aggregation.COUNT, group_by=("region",))
STORAGE = Metric("storage", "Storage", Aggregation.WEIGHTED_SUM)


def totals(invoice: RatedInvoice) -> tuple[D, ...]:
    return (
        invoice.subtotal,
        invoice.discount_total,
        invoice.tax_total,
        invoice.total,
        invoice.credit_total,
        invoice.amount_due,
    )


def summary(invoice: RatedInvoice) -> list[tuple[Any, ...]]:
    return [
        (ln.type, ln.description, ln.amount, ln.discount_amount, ln.tax_amount)
        for ln in invoice.lines
    ]


def test_stages_compose_in_the_order_of_billing_md() -> None:
    assert [stage.__name__ for stage in STAGES] == [
        "quota_check",
        "rollover",
        "aggregate",
        "allowance",
        "rate",
        "commit",
        "discount",
        "tax",
        "route",
    ]


def test_pipeline_splits_before_tax() -> None:
    assert [stage.__name__ for stage in UNTIL_TAX] == [
        "quota_check", "rollover", "aggregate", "allowance", "rate", "commit", "discount",
    ]  # fmt: skip
    assert STAGES[: len(UNTIL_TAX)] == UNTIL_TAX


def test_provider_taxes_between_discount_and_tax() -> None:
    plan = Plan(
        "pro",
        "Pro",
        "USD",
        Interval.MONTHLY,
        base_fee=D("33.33"),
        charges=(UsageCharge("c_calls", CALLS, "per_unit", {"unitAmount": "0.01"}),),
    )
    customer = Customer("acme", "Acme", "USD", country="US", region="CA")
    context = BillingContext(
        Subscription("sub_1", customer, plan, at(2026, 1)),
        OCTOBER,
        usage=(MeteredQuantity("c_calls", D(11_000), event_count=11_000),),
        coupons=(AppliedCoupon("cp_1", "TEN", "fixed", amount_remaining=D(10)),),
        # The local table would tax 7.25 % of each net; the provider's amounts win.
        tax_rates=(TaxRate("ca", "CA", D("7.25"), country="US", region="CA"),),
        wallets=(WalletBalance("w_1", 1, D(130)),),
    )
    state = rate_until_tax(context)
    # What a provider is asked about: the lines after Discount, untaxed.
    assert [(ln.type, ln.amount, ln.discount_amount, ln.tax_amount) for ln in state.lines] == [
        (LineType.CHARGE, D("33.33"), D("10.00"), D(0)),
        (LineType.USAGE_FEE, D("110.00"), D(0), D(0)),
        (LineType.DISCOUNT, D("-10.00"), D(0), D(0)),
    ]
    # Nets 23.33 and 110.00. The provider's amounts are taken as given: 7.97 on 110.00,
    # where the table's 7.25 % would be 7.975 → 7.98 (providers round per jurisdiction).
    quoted = {0: QuotedTax(D("7.25"), D("1.69")), 1: QuotedTax(D("7.25"), D("7.97"))}
    result = finish(state, quoted)
    assert summary(result.invoice) == [
        (LineType.CHARGE, "Pro base fee", D("33.33"), D("10.00"), D("1.69")),
        (LineType.USAGE_FEE, "API calls", D("110.00"), D(0), D("7.97")),
        (LineType.DISCOUNT, "Coupon TEN", D("-10.00"), D(0), D(0)),
    ]
    # total = 143.33 − 10.00 + 9.66 = 142.99; the wallet pays 130.00 of it.
    assert totals(result.invoice) == tuple(
        D(x) for x in ("143.33", "10.00", "9.66", "142.99", "130.00", "12.99")
    )
    assert result.wallet_debits == (WalletDebit("w_1", D("130.00")),)
    assert result.coupon_uses == (CouponUse("cp_1", D("10.00"), D(0)),)
    # Without provider results, the same state is taxed with the local table.
    assert finish(state) == rate_subscription(context)
    assert rate_subscription(context).invoice.tax_total == D("9.67")  # 1.69 + 7.98


def test_base_fee_graduated_usage_coupon_tax_wallet() -> None:
    tiers = {
        "tiers": [
            {"upTo": "1000", "unitAmount": "0"},
            {"upTo": "10000", "unitAmount": "0.002"},
            {"upTo": None, "unitAmount": "0.001"},
        ]
    }
    plan = Plan(
        "pro",
        "Pro",
        "USD",
        Interval.MONTHLY,
        base_fee=D(49),
        charges=(UsageCharge("c_calls", CALLS, "graduated", tiers),),
    )
    customer = Customer("acme", "Acme", "USD", country="FR")
    context = BillingContext(
        Subscription("sub_1", customer, plan, at(2026, 1)),
        OCTOBER,
        usage=(MeteredQuantity("c_calls", D(25_000), event_count=25_000),),
        coupons=(AppliedCoupon("cp_1", "WELCOME10", "percentage", percentage=D(10)),),
        tax_rates=(TaxRate("fr_vat", "TVA", D(20), country="FR"),),
        wallets=(WalletBalance("w_1", 1, D(50)),),
    )
    result = rate_subscription(context)
    # Usage: 1000 free, 9000 × 0.002 = 18, 15000 × 0.001 = 15 → 33.00.
    # Coupon 10 %: 4.90 + 3.30. VAT 20 % after discount: 44.10 → 8.82, 29.70 → 5.94.
    assert summary(result.invoice) == [
        (LineType.CHARGE, "Pro base fee", D("49.00"), D("4.90"), D("8.82")),
        (LineType.USAGE_FEE, "API calls", D("33.00"), D("3.30"), D("5.94")),
        (LineType.DISCOUNT, "Coupon WELCOME10", D("-8.20"), D(0), D(0)),
    ]
    # total = 82.00 − 8.20 + 14.76 = 88.56; the wallet pays 50.00.
    assert totals(result.invoice) == tuple(
        D(x) for x in ("82.00", "8.20", "14.76", "88.56", "50.00", "38.56")
    )
    assert result.coupon_uses == (CouponUse("cp_1", D("8.20")),)
    assert result.wallet_debits == (WalletDebit("w_1", D("50.00")),)
    assert result.rollover_out == {}


def _team_plan() -> Plan:
    return Plan(
        "team",
        "Team",
        "USD",
        Interval.MONTHLY,
        base_fee=D(30),
        pay_in_advance=True,
        fixed_charges=(FixedCharge("fx_onboarding", "Onboarding", D(99), one_time=True),),
        charges=(
            UsageCharge(
                "c_calls",
                CALLS,
                "per_unit",
                {"unitAmount": "0.01"},
                included_quantity=D(1000),
                rollover=RolloverRule(cap=D(5000), expiry_periods=2),
            ),
        ),
    )


def test_three_invoices_of_a_pay_in_advance_subscription_through_the_ledger() -> None:
    """Starts Oct 15: setup fee, advance base fee, rollover, a fixed coupon's remainder."""
    plan = _team_plan()
    subscription = Subscription(
        "sub_2",
        Customer("maple", "Maple", "USD", country="CA", region="QC"),
        plan,
        at(2026, 10, 15),
    )
    rates = (
        TaxRate("ca_gst", "GST", D(5), country="CA"),
        TaxRate("ca_qst", "QST", D("9.975"), country="CA", region="QC"),
    )  # 14.975 %
    onboarding_credit = WalletBalance("w_onb", 1, D(80), fee_types=("SETUP_FEE",))

    def coupon(remaining: D) -> AppliedCoupon:
        return AppliedCoupon(
            "cp_api", "API50", "fixed", amount_remaining=remaining, metric_codes=("api_calls",)
        )

    october = rate_subscription(
        BillingContext(
            subscription,
            OCTOBER,
            usage=(MeteredQuantity("c_calls", D(3500)),),
            coupons=(coupon(D(50)),),
            tax_rates=rates,
            wallets=(onboarding_credit,),
        )
    )
    # Setup 99 (tax 14.82525 → 14.83); October's own base fee, 30 × 17/31 = 16.4516 →
    # 16.45 (tax 2.46); November's base fee in advance, 30 (tax 4.4925 → 4.49); usage
    # (3500 − 1000) × 0.01 = 25.00, wholly covered by the coupon (no tax).
    assert summary(october.invoice) == [
        (LineType.SETUP_FEE, "Onboarding", D("99.00"), D(0), D("14.83")),
        (LineType.PRORATION, "Team base fee (prorated 17/31 days)", D("16.45"), D(0), D("2.46")),
        (LineType.CHARGE, "Team base fee", D("30.00"), D(0), D("4.49")),
        (LineType.USAGE_FEE, "API calls", D("25.00"), D("25.00"), D("0.00")),
        (LineType.DISCOUNT, "Coupon API50", D("-25.00"), D(0), D(0)),
    ]
    base_lines = [ln for ln in october.invoice.lines if ln.description.startswith("Team base")]
    assert [(ln.period_start, ln.period_end) for ln in base_lines] == [
        (at(2026, 10, 15), at(2026, 11)),
        (at(2026, 11), at(2026, 12)),
    ]
    # 170.45 − 25.00 + 21.78 = 167.23; the onboarding wallet pays 80 of the setup fee.
    assert totals(october.invoice) == tuple(
        D(x) for x in ("170.45", "25.00", "21.78", "167.23", "80.00", "87.23")
    )
    assert october.coupon_uses == (CouponUse("cp_api", D("25.00"), D("25.00")),)
    assert october.wallet_debits == (WalletDebit("w_onb", D("80.00")),)
    assert october.rollover_out == {"c_calls": ()}  # all 1000 included calls used

    november = rate_subscription(
        BillingContext(
            subscription,
            NOVEMBER,
            usage=(MeteredQuantity("c_calls", D(400)),),
            rollover_in=dict(october.rollover_out),
            coupons=(coupon(october.coupon_uses[0].remaining),),
            tax_rates=rates,
            wallets=(WalletBalance("w_onb", 1, D(0), fee_types=("SETUP_FEE",)),),
        )
    )
    # November's base fee was billed in October: only December's, in advance. 400 calls
    # are within the 1000 included; 600 roll over until the end of January.
    assert summary(november.invoice) == [
        (LineType.CHARGE, "Team base fee", D("30.00"), D(0), D("4.49")),
        (LineType.USAGE_FEE, "API calls", D("0.00"), D(0), D("0.00")),
    ]
    assert totals(november.invoice) == tuple(
        D(x) for x in ("30.00", "0", "4.49", "34.49", "0", "34.49")
    )
    assert november.rollover_out == {"c_calls": (RolloverBucket(D(600), at(2027, 2)),)}
    assert november.coupon_uses == (CouponUse("cp_api", D(0), D("25.00")),)

    december = rate_subscription(
        BillingContext(
            subscription,
            DECEMBER,
            usage=(MeteredQuantity("c_calls", D(1900)),),
            rollover_in=dict(november.rollover_out),
            coupons=(coupon(november.coupon_uses[0].remaining),),
            tax_rates=rates,
        )
    )
    # Allowance 1000 + 600 carried → 300 billable → 3.00, paid by the coupon (22 left).
    assert summary(december.invoice) == [
        (LineType.CHARGE, "Team base fee", D("30.00"), D(0), D("4.49")),
        (LineType.USAGE_FEE, "API calls", D("3.00"), D("3.00"), D("0.00")),
        (LineType.DISCOUNT, "Coupon API50", D("-3.00"), D(0), D(0)),
    ]
    assert totals(december.invoice) == tuple(
        D(x) for x in ("33.00", "3.00", "4.49", "34.49", "0", "34.49")
    )
    assert december.coupon_uses == (CouponUse("cp_api", D("3.00"), D("22.00")),)
    assert december.rollover_out == {"c_calls": ()}


def test_hard_cap_groups_maximum_spend_and_coupon() -> None:
    plan = Plan(
        "scale",
        "Scale",
        "USD",
        Interval.MONTHLY,
        minimum_commitment=D(20),
        maximum_spend=D(100),
        charges=(
            UsageCharge(
                "c_calls", CALLS_BY_REGION, "per_unit", {"unitAmount": "0.002"}, hard_cap=D(60_000)
            ),
            UsageCharge("c_storage", STORAGE, "per_unit", {"unitAmount": "0.10"}),
        ),
    )
    context = BillingContext(
        Subscription("sub_3", Customer("globex", "Globex", "USD", country="US"), plan, at(2026, 1)),
        OCTOBER,
        usage=(
            MeteredQuantity("c_calls", D(35_000), group=(("region", "us"),)),
            MeteredQuantity("c_calls", D(40_000), group=(("region", "eu"),)),
            MeteredQuantity("c_storage", D("250.5")),
        ),
        coupons=(AppliedCoupon("cp_3", "TEN", "percentage", percentage=D(10)),),
    )
    result = rate_subscription(context)
    # Cap 60,000 shared: eu 40,000 → 80.00, us 20,000 → 40.00; storage 25.05.
    # Usage 145.05 > 100: adjustment −45.05, taken from us (20.00) and storage (25.05).
    # Coupon 10 % of what is left: eu 8.00, us 2.00, storage 0.
    assert summary(result.invoice) == [
        (LineType.USAGE_FEE, "API calls (region=eu)", D("80.00"), D("8.00"), D(0)),
        (LineType.USAGE_FEE, "API calls (region=us)", D("40.00"), D("22.00"), D(0)),
        (LineType.USAGE_FEE, "Storage", D("25.05"), D("25.05"), D(0)),
        (LineType.DISCOUNT, "Maximum spend adjustment", D("-45.05"), D(0), D(0)),
        (LineType.DISCOUNT, "Coupon TEN", D("-10.00"), D(0), D(0)),
    ]
    assert [ln.quantity for ln in result.invoice.lines[:3]] == [D(40_000), D(20_000), D("250.5")]
    assert totals(result.invoice) == tuple(
        D(x) for x in ("145.05", "55.05", "0", "90.00", "0", "90.00")
    )


def test_minimum_commitment_true_up_is_discounted_and_taxed() -> None:
    plan = Plan(
        "min",
        "Min",
        "EUR",
        Interval.MONTHLY,
        minimum_commitment=D(100),
        charges=(UsageCharge("c_calls", CALLS, "per_unit", {"unitAmount": "0.01"}),),
    )
    context = BillingContext(
        Subscription("sub_4", Customer("ber", "Ber", "EUR", country="DE"), plan, at(2026, 10, 15)),
        OCTOBER,
        usage=(MeteredQuantity("c_calls", D(1234)),),
        coupons=(AppliedCoupon("cp_4", "HALF", "percentage", percentage=D(50)),),
        tax_rates=(TaxRate("de_vat", "MwSt", D(19), country="DE"),),
    )
    invoice = rate_subscription(context).invoice
    # Minimum 100 × 17/31 = 54.84; usage 12.34 → true-up 42.50.
    # 50 %: 6.17 and 21.25; 19 % of 6.17 = 1.1723 → 1.17, of 21.25 = 4.0375 → 4.04.
    assert summary(invoice) == [
        (LineType.USAGE_FEE, "API calls", D("12.34"), D("6.17"), D("1.17")),
        (LineType.CHARGE, "Minimum commitment true-up", D("42.50"), D("21.25"), D("4.04")),
        (LineType.DISCOUNT, "Coupon HALF", D("-27.42"), D(0), D(0)),
    ]
    assert totals(invoice) == tuple(D(x) for x in ("54.84", "27.42", "5.21", "32.63", "0", "32.63"))


def test_zero_decimal_currency_prorated_and_taxed() -> None:
    plan = Plan(
        "jp",
        "Standard",
        "JPY",
        Interval.MONTHLY,
        base_fee=D(1000),
        charges=(UsageCharge("c_calls", CALLS, "per_unit", {"unitAmount": "0.5"}),),
    )
    context = BillingContext(
        Subscription("sub_5", Customer("kk", "KK", "JPY", country="JP"), plan, at(2026, 10, 15)),
        OCTOBER,
        usage=(MeteredQuantity("c_calls", D(1235)),),
        tax_rates=(TaxRate("jp_ct", "Consumption tax", D(10), country="JP"),),
        wallets=(WalletBalance("w_5", 1, D("500.9")),),
    )
    result = rate_subscription(context)
    # 1000 × 17/31 = 548.39 → 548 (tax 54.8 → 55); 1235 × 0.5 = 617.5 → 618 (tax 61.8 → 62).
    assert summary(result.invoice) == [
        (LineType.PRORATION, "Standard base fee (prorated 17/31 days)", D(548), D(0), D(55)),
        (LineType.USAGE_FEE, "API calls", D(618), D(0), D(62)),
    ]
    # The wallet pays whole yen only: 500.
    assert totals(result.invoice) == tuple(D(x) for x in ("1166", "0", "117", "1283", "500", "783"))


def test_subscription_ending_mid_period_gets_its_last_invoice() -> None:
    plan = Plan(
        "pro",
        "Pro",
        "USD",
        Interval.MONTHLY,
        base_fee=D(49),
        fixed_charges=(FixedCharge("fx_seat", "Seats", D(5), units=D(3), pay_in_advance=True),),
        charges=(UsageCharge("c_calls", CALLS, "per_unit", {"unitAmount": "0.01"}),),
    )
    subscription = Subscription(
        "sub_6", Customer("ini", "Initech", "USD"), plan, at(2026, 1), end=at(2026, 10, 21)
    )
    invoice = rate_subscription(
        BillingContext(subscription, OCTOBER, usage=(MeteredQuantity("c_calls", D(700)),))
    ).invoice
    # Base fee 49 × 20/31 = 31.61 in arrears; the seats were paid in advance in September
    # and nothing is ahead; usage 7.00 for October 1–21.
    assert summary(invoice) == [
        (LineType.PRORATION, "Pro base fee (prorated 20/31 days)", D("31.61"), D(0), D(0)),
        (LineType.USAGE_FEE, "API calls", D("7.00"), D(0), D(0)),
    ]
    assert (invoice.lines[1].period_start, invoice.lines[1].period_end) == (
        at(2026, 10),
        at(2026, 10, 21),
    )
    assert invoice.total == D("38.61")

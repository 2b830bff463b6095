"""TaxService: the state after Discount → a TaxRequest → the provider → per-line taxes
for the pure Tax stage; local table by default, external providers behind the cache."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from core.errors import ValidationFailed
from invoicing.tax import (
    CachedTaxProvider,
    LineTax,
    TaxableLine,
    TaxProviderUnavailable,
    TaxQuote,
    TaxRequest,
)
from invoicing.tax.service import TaxService
from meterline.settings import Settings
from rating.context import AppliedCoupon, BillingContext, QuotedTax, TaxRate, WalletBalance
from rating.model import (
    Aggregation,
    Customer,
    Interval,
    MeteredQuantity,
    Metric,
    Plan,
    Subscription,
    UsageCharge,
)
from rating.pipeline import rate_subscription, rate_until_tax
from tests.helpers.dates import OCTOBER
from tests.tax.test_cache import CountingProvider

CALLS = Metric("api_calls", "API calls", Aggregation.COUNT)
PLAN = Plan(
    "pro",
    "Pro",
    "USD",
    Interval.MONTHLY,
    base_fee=D("33.33"),
    charges=(UsageCharge("c_calls", CALLS, "per_unit", {"unitAmount": "0.01"}),),
)
RATES = (
    TaxRate("us_ca", "California", D("7.25"), country="US", region="CA"),
    TaxRate("fr", "TVA", D(20), country="FR"),
)


def context(
    customer: Customer | None = None, *, coupon: bool = True, calls: int = 10_000
) -> BillingContext:
    who = customer or Customer("sf-1", "SF", "USD", country="US", region="CA")
    coupons = (AppliedCoupon("cp", "TEN", "fixed", amount_remaining=D(10)),) if coupon else ()
    return BillingContext(
        Subscription("sub_1", who, PLAN, OCTOBER.start),
        OCTOBER,
        usage=(MeteredQuantity("c_calls", D(calls)),),
        coupons=coupons,
        tax_rates=RATES,
        wallets=(WalletBalance("w", 1, D(5)),),
    )


def test_request_is_the_state_after_discount() -> None:
    state = rate_until_tax(context())
    request = TaxService().request("ten_1", state)
    assert request == TaxRequest(
        tenant_id="ten_1",
        customer_id="sf-1",
        country="US",
        region="CA",
        currency="USD",
        invoice_date=date(2026, 11, 1),  # the period's end: the day the invoice is issued
        lines=(
            TaxableLine("0", D("23.33"), "CHARGE", description="Pro base fee"),
            TaxableLine("1", D("100.00"), "USAGE_FEE", metric="api_calls", description="API calls"),
        ),  # line 2, the coupon's DISCOUNT line, is not taxed
    )


def test_local_provider_is_the_tenants_table() -> None:
    service = TaxService()
    ctx = context()
    state = rate_until_tax(ctx)
    assert (service.name, service.cache) == ("local", None)
    # 7.25 % of 23.33 = 1.691… → 1.69; of 100.00 → 7.25
    assert service.line_taxes("ten_1", state) == {
        0: QuotedTax(D("7.25"), D("1.69")),
        1: QuotedTax(D("7.25"), D("7.25")),
    }
    assert service.rate("ten_1", ctx).invoice == rate_subscription(ctx).invoice


class Quoted(CountingProvider):
    """Answers fixed per-jurisdiction-rounded amounts, as AvaTax would."""

    name = "avalara"

    def rates_for(self, request: TaxRequest) -> TaxQuote:
        super().rates_for(request)
        amounts = {D("23.33"): D("1.69"), D("100.00"): D("7.25"), D("33.33"): D("2.41")}
        lines = tuple(
            LineTax(line.key, D("7.25"), amounts.get(line.amount, D("0.00")))
            for line in request.lines
        )
        return TaxQuote(self.name, request.currency, lines)


def test_external_provider_results_by_position_through_one_cache() -> None:
    inner = Quoted()
    service = TaxService(inner)
    assert service.name == "avalara" and isinstance(service.provider, CachedTaxProvider)

    result = service.rate("ten_1", context(coupon=False))
    assert [(ln.tax_rate, ln.tax_amount) for ln in result.invoice.lines] == [
        (D("7.25"), D("2.41")),  # not 7.25 % × 33.33 = 2.42: the provider's amount
        (D("7.25"), D("7.25")),
    ]
    assert result.invoice.tax_total == D("9.66")
    assert result.wallet_debits[0].amount == D(5)

    other = Customer("sf-2", "SF 2", "USD", country="US", region="CA")
    again = service.rate("ten_1", context(other, coupon=False))
    assert again.invoice.tax_total == D("9.66")
    assert inner.calls == 1  # identical inputs, not customer-specific: served from the cache
    service.rate("ten_2", context(other, coupon=False))
    assert inner.calls == 2  # another tenant never shares a quote


def test_exempt_customer_is_not_quoted_and_pays_none() -> None:
    inner = Quoted()
    exempt = Customer("ngo", "NGO", "USD", country="US", region="CA", tax_exempt=True)
    result = TaxService(inner).rate("ten_1", context(exempt))
    assert inner.calls == 0 and result.invoice.tax_total == 0


def test_provider_errors_propagate_and_are_not_cached() -> None:
    inner = Quoted()
    inner.fail_next = 1
    service = TaxService(inner)
    with pytest.raises(TaxProviderUnavailable):
        service.rate("ten_1", context())
    assert service.rate("ten_1", context()).invoice.tax_total == D("8.94")
    assert inner.calls == 2


def test_from_config_validates_at_startup() -> None:
    with pytest.raises(ValidationFailed) as unknown:
        TaxService.from_config("taxjar", {})
    assert unknown.value.code == "unknown_tax_provider"
    with pytest.raises(ValidationFailed) as invalid:
        TaxService.from_config("avalara", {"baseUrl": "https://x", "licenseKey": "s3cret"})
    assert invalid.value.code == "invalid_tax_configuration"
    assert "s3cret" not in str(invalid.value.details)
    assert TaxService.from_config("local").name == "local"


def test_settings_read_the_provider_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METERLINE_TAX_PROVIDER", "avalara")
    monkeypatch.setenv(
        "METERLINE_TAX_PROVIDER_CONFIG",
        '{"baseUrl": "https://sandbox-rest.avatax.com", "accountId": "2000134479",'
        ' "licenseKey": "s3cret", "companyCode": "METERLINE"}',
    )
    settings = Settings()
    assert settings.tax_provider == "avalara"
    assert settings.tax_provider_config["companyCode"] == "METERLINE"
    assert "s3cret" not in repr(settings)
    service = TaxService.from_config(settings.tax_provider, settings.tax_provider_config)
    assert service.name == "avalara" and service.cache is not None
    service.close()
    assert Settings.model_fields["tax_provider"].default == "local"

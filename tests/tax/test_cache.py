"""The 24-hour quote cache: its key, expiry with an injected clock, LRU bound, errors
never cached, and safe sharing between threads. (The AvaTax tests check that a cached
quote makes no HTTP request.)"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.clock import FrozenClock
from invoicing.tax import (
    CachedTaxProvider,
    LineTax,
    TaxableLine,
    TaxProviderUnavailable,
    TaxQuote,
    TaxRequest,
    quote_key,
)


class CountingProvider:
    """A provider that taxes every line at 10 % and counts how often it is asked."""

    name = "counting"

    def __init__(self, *, customer_specific: bool = False) -> None:
        self.customer_specific = customer_specific
        self.calls = 0
        self.fail_next = 0
        self._lock = threading.Lock()

    def rates_for(self, request: TaxRequest) -> TaxQuote:
        with self._lock:
            self.calls += 1
            if self.fail_next:
                self.fail_next -= 1
                raise TaxProviderUnavailable(self.name, "down")
        lines = tuple(
            LineTax(line.key, Decimal(10), (line.amount / 10).quantize(Decimal("0.01")))
            for line in request.lines
        )
        return TaxQuote(self.name, request.currency, lines)


def start_clock() -> FrozenClock:
    return FrozenClock(datetime(2025, 1, 31, 10, 0, tzinfo=UTC))


BASE = TaxRequest(
    tenant_id="ten_1",
    customer_id="cust-1",
    country="US",
    region="CA",
    postal_code="94105",
    currency="USD",
    invoice_date=date(2025, 1, 31),
    lines=(
        TaxableLine("0", Decimal("100.00"), "USAGE_FEE", metric="api_calls", tax_code="SW054000"),
        TaxableLine("1", Decimal("20.00"), "CHARGE"),
    ),
)


def with_first_line(**changes: Any) -> TaxRequest:
    return replace(BASE, lines=(replace(BASE.lines[0], **changes), BASE.lines[1]))


def test_same_inputs_are_answered_from_the_cache() -> None:
    inner = CountingProvider()
    cached = CachedTaxProvider(inner, clock=start_clock())

    first = cached.rates_for(BASE)
    second = cached.rates_for(BASE)

    assert inner.calls == 1 and (cached.hits, cached.misses) == (1, 1)
    assert second == first and second.line("0").amount == Decimal("10.00")


def test_a_cached_quote_is_rekeyed_to_the_new_invoice_lines() -> None:
    inner = CountingProvider()
    cached = CachedTaxProvider(inner, clock=start_clock())
    cached.rates_for(BASE)

    other_draft = replace(
        BASE,
        lines=(
            replace(BASE.lines[0], key="line-a", description="other words"),
            replace(BASE.lines[1], key="line-b", amount=Decimal("20.0")),  # same number
        ),
    )
    quote = cached.rates_for(other_draft)

    assert inner.calls == 1
    assert [line.key for line in quote.lines] == ["line-a", "line-b"]
    assert quote.line("line-b").amount == Decimal("2.00")


@pytest.mark.parametrize(
    "changed",
    [
        replace(BASE, tenant_id="ten_2"),
        replace(BASE, country="CA"),
        replace(BASE, region="NY"),
        replace(BASE, postal_code="94016"),
        replace(BASE, postal_code=None),
        replace(BASE, tax_exempt=True),
        replace(BASE, tax_exempt=True, exemption_number="EX-1"),
        replace(BASE, entity_use_code="G"),
        replace(BASE, currency="EUR"),
        replace(BASE, invoice_date=date(2025, 2, 1)),
        with_first_line(amount=Decimal("100.01")),
        with_first_line(tax_code="SW052000"),
        with_first_line(tax_code=None),
        with_first_line(fee_type="SETUP_FEE"),
        with_first_line(metric="storage_gb"),
        replace(BASE, lines=BASE.lines[:1]),
        replace(BASE, lines=(BASE.lines[1], BASE.lines[0])),
    ],
    ids=lambda request: "",
)
def test_any_other_rate_input_asks_the_provider(changed: TaxRequest) -> None:
    inner = CountingProvider()
    cached = CachedTaxProvider(inner, clock=start_clock())

    cached.rates_for(BASE)
    cached.rates_for(changed)

    assert inner.calls == 2
    assert quote_key("p", changed, customer_specific=True) != quote_key(
        "p", BASE, customer_specific=True
    )


@pytest.mark.parametrize(("customer_specific", "calls"), [(True, 2), (False, 1)])
def test_customer_id_is_in_the_key_only_for_customer_specific_providers(
    customer_specific: bool, calls: int
) -> None:
    inner = CountingProvider(customer_specific=customer_specific)
    cached = CachedTaxProvider(inner, clock=start_clock())

    cached.rates_for(BASE)
    cached.rates_for(replace(BASE, customer_id="cust-2"))

    assert inner.calls == calls


def test_entries_expire_after_24_hours() -> None:
    clock = start_clock()
    inner = CountingProvider()
    cached = CachedTaxProvider(inner, clock=clock)
    cached.rates_for(BASE)

    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    cached.rates_for(BASE)
    assert inner.calls == 1

    clock.advance(timedelta(seconds=1))
    cached.rates_for(BASE)
    assert inner.calls == 2

    clock.advance(timedelta(hours=23))  # the renewed entry lives 24 h from its renewal
    cached.rates_for(BASE)
    assert inner.calls == 2


def test_the_store_is_bounded_least_recently_used_first() -> None:
    inner = CountingProvider()
    cached = CachedTaxProvider(inner, clock=start_clock(), max_entries=2)
    a, b, c = (replace(BASE, postal_code=code) for code in ("1", "2", "3"))

    cached.rates_for(a)
    cached.rates_for(b)
    cached.rates_for(a)  # a is now the most recently used
    cached.rates_for(c)  # evicts b

    assert len(cached) == 2 and inner.calls == 3
    cached.rates_for(a)
    assert inner.calls == 3
    cached.rates_for(b)
    assert inner.calls == 4


def test_errors_are_not_cached() -> None:
    inner = CountingProvider()
    inner.fail_next = 1
    cached = CachedTaxProvider(inner, clock=start_clock())

    with pytest.raises(TaxProviderUnavailable):
        cached.rates_for(BASE)
    quote = cached.rates_for(BASE)

    assert inner.calls == 2 and quote.total == Decimal("12.00")
    cached.rates_for(BASE)
    assert inner.calls == 2


def test_clear_forgets_everything() -> None:
    inner = CountingProvider()
    cached = CachedTaxProvider(inner, clock=start_clock())
    cached.rates_for(BASE)
    cached.clear()
    cached.rates_for(BASE)
    assert inner.calls == 2


def test_threads_share_the_cache_safely() -> None:
    inner = CountingProvider()
    cached = CachedTaxProvider(inner, clock=start_clock(), max_entries=100)
    requests = [with_first_line(amount=Decimal(amount)) for amount in range(1, 6)]

    def work(index: int) -> tuple[int, Decimal]:
        request = requests[index % len(requests)]
        return index, cached.rates_for(request).line("0").amount

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(800)))

    assert all(amount == Decimal(index % 5 + 1) / 10 for index, amount in results)
    assert cached.hits + cached.misses == 800
    assert len(cached) == 5 and 5 <= inner.calls <= 5 + 16


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="ttl"):
        CachedTaxProvider(CountingProvider(), ttl=timedelta(0))
    with pytest.raises(ValueError, match="max_entries"):
        CachedTaxProvider(CountingProvider(), max_entries=0)

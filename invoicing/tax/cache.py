"""Quotes cached per unique combination of rate inputs, for 24 hours by default.

The key (`QuoteKey`) holds every input that can change a provider's answer, and
nothing else:

    provider name, tenant id,
    customer id            — only when the provider is customer_specific (exemption
                             certificates matched by customer code), else left out,
    country, region, postal code,
    tax exempt flag, exemption number, entity/use code,
    currency, invoice date (rates change on effective dates),
    and, in invoice order, per line: (amount, tax code, fee type, metric).

Line keys and descriptions are not rate inputs: two drafts with the same inputs share
one quote, re-keyed to each draft's own line keys. Amounts compare as numbers
(`10.0` and `10.00` are one key). The tenant is part of the key even though rates are
the same everywhere, because each tenant has its own provider account and settings and
a cache must never carry an answer across tenants.

An entry is served while `clock.now() < stored_at + ttl`; errors are never cached. The
store is an in-memory LRU bounded to `max_entries`, guarded by a lock so the bill run's
worker threads can share it; two threads missing the same key at once may both ask the
provider (the second answer wins), which is harmless for an estimate.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from core.clock import SYSTEM_CLOCK, Clock
from invoicing.tax.base import TaxProvider, TaxQuote, TaxRequest

LineInputs = tuple[Decimal, str | None, str, str | None]  # amount, tax code, fee type, metric


@dataclass(frozen=True)
class QuoteKey:
    """The rate inputs of a TaxRequest: equal keys always get equal quotes."""

    provider: str
    tenant_id: str
    customer_id: str | None
    country: str | None
    region: str | None
    postal_code: str | None
    tax_exempt: bool
    exemption_number: str | None
    entity_use_code: str | None
    currency: str
    invoice_date: date
    lines: tuple[LineInputs, ...]


def quote_key(provider: str, request: TaxRequest, *, customer_specific: bool) -> QuoteKey:
    """The cache key of a request for a provider (see the module docstring)."""
    return QuoteKey(
        provider=provider,
        tenant_id=request.tenant_id,
        customer_id=request.customer_id if customer_specific else None,
        country=request.country,
        region=request.region,
        postal_code=request.postal_code,
        tax_exempt=request.tax_exempt,
        exemption_number=request.exemption_number,
        entity_use_code=request.entity_use_code,
        currency=request.currency,
        invoice_date=request.invoice_date,
        lines=tuple(
            (line.amount, line.tax_code, line.fee_type, line.metric) for line in request.lines
        ),
    )


@dataclass(frozen=True)
class _Entry:
    quote: TaxQuote
    expires_at: datetime


class CachedTaxProvider:
    """A TaxProvider that answers repeated rate inputs from memory for `ttl`."""

    def __init__(
        self,
        inner: TaxProvider,
        *,
        ttl: timedelta = timedelta(hours=24),
        clock: Clock = SYSTEM_CLOCK,
        max_entries: int = 10_000,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.inner = inner
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[QuoteKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def customer_specific(self) -> bool:
        return self.inner.customer_specific

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def rates_for(self, request: TaxRequest) -> TaxQuote:
        """The cached quote for these rate inputs, or the inner provider's (then cached)."""
        key = quote_key(self.name, request, customer_specific=self.customer_specific)
        keys = [line.key for line in request.lines]
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if self._clock.now() < entry.expires_at:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return entry.quote.rekeyed(keys)
                del self._entries[key]
            self.misses += 1
        quote = self.inner.rates_for(request)  # outside the lock: other keys go on
        with self._lock:
            self._entries[key] = _Entry(quote, self._clock.now() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return quote

    def clear(self) -> None:
        """Forget every cached quote (after a tenant changes its tax configuration)."""
        with self._lock:
            self._entries.clear()

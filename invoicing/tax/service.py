"""Stage 8's I/O: the configured tax provider, asked between Discount and Tax.

`rating/` does no I/O, so the bill run rates in two halves (`rating.pipeline`):

    state = rate_until_tax(context)                 # Quota Check … Discount (pure)
    line_taxes = tax_service.line_taxes(tenant_id, state)   # the provider (I/O)
    result = finish(state, line_taxes)              # Tax, Route, Settle (pure)

`TaxService.line_taxes` turns the state after Discount into a `TaxRequest` (the
customer's country, region and exemption, the plan's currency, the invoice date, which
is the day the period ends, and the taxable lines of `taxable_lines`), asks the
provider and returns each taxable line's rate and exact amount keyed by line position.

- `local` (the default): the tenant's own rate table, which the bill run loads into
  `BillingContext.tax_rates`, answered by `LocalRatesProvider` (no I/O, never cached).
- `avalara`, `vertex`: one adapter per process, behind one `CachedTaxProvider`
  (24 h per unique combination of rate inputs; the tenant id is part of every key).

An exempt customer pays no tax: the provider is not asked. A provider error
(`TaxProviderError`: unavailable after its retries, credentials refused, request
rejected, unreadable answer) propagates to the caller; the bill run records it as that
subscription's failure and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from core.clock import SYSTEM_CLOCK, Clock
from invoicing.tax import provider_from_config
from invoicing.tax.base import (
    RetryPolicy,
    TaxProvider,
    TaxProviderBadResponse,
    TaxQuote,
    TaxRequest,
    taxable_lines,
)
from invoicing.tax.cache import CachedTaxProvider
from invoicing.tax.local import LocalRatesProvider
from rating.context import BillingContext, LineTaxes, QuotedTax, RatingState
from rating.pipeline import RatingResult, finish, rate_until_tax
from rating.stages.tax import own_line_taxes

LOCAL = "local"
CACHE_TTL = timedelta(hours=24)


class TaxService:
    """The process's tax provider, as the bill run and the draft refresh use it."""

    def __init__(
        self,
        provider: TaxProvider | None = None,
        *,
        ttl: timedelta = CACHE_TTL,
        clock: Clock = SYSTEM_CLOCK,
        max_entries: int = 10_000,
    ) -> None:
        """`provider` None or a "local" one: each tenant's own table. Any other provider
        is wrapped in a CachedTaxProvider (unless it already is one), kept for the life
        of this service: create one service per process."""
        self.provider: TaxProvider | None
        if provider is None or provider.name == LOCAL:
            self.provider = None
        elif isinstance(provider, CachedTaxProvider):
            self.provider = provider
        else:
            self.provider = CachedTaxProvider(
                provider, ttl=ttl, clock=clock, max_entries=max_entries
            )

    @classmethod
    def from_config(
        cls,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> TaxService:
        """The service of a provider name and its settings (see `provider_from_config`):
        an unknown name or invalid settings is a ValidationFailed, at startup."""
        provider = provider_from_config(
            name, config or {}, (), client=client, retry=retry, clock=clock
        )
        return cls(provider, clock=clock)

    @property
    def name(self) -> str:
        return LOCAL if self.provider is None else self.provider.name

    @property
    def cache(self) -> CachedTaxProvider | None:
        """The quote cache of an external provider (None for the local table)."""
        return self.provider if isinstance(self.provider, CachedTaxProvider) else None

    def request(self, tenant_id: str, state: RatingState) -> TaxRequest:
        """The rate inputs of the draft invoice that `state` (after Discount) describes."""
        ctx = state.context
        customer = ctx.subscription.customer
        own = own_line_taxes(state)
        return TaxRequest(
            tenant_id=tenant_id,
            customer_id=customer.external_id,
            country=customer.country,
            region=customer.region,
            tax_exempt=customer.tax_exempt,
            currency=ctx.currency,
            # The invoice is issued when its period ends (half-open: the first instant
            # after the period), unless the context says otherwise.
            invoice_date=ctx.issue_date.date(),
            # Lines of add-ons with taxes of their own are not the provider's to tax.
            lines=tuple(line for line in taxable_lines(state.lines) if int(line.key) not in own),
        )

    def quote(self, tenant_id: str, state: RatingState) -> TaxQuote:
        """The provider's quote for the state's taxable lines (keys: line positions)."""
        request = self.request(tenant_id, state)
        if self.provider is None:  # (a CachedTaxProvider is falsy while empty)
            return LocalRatesProvider(state.context.tax_rates).rates_for(request)
        return self.provider.rates_for(request)

    def line_taxes(self, tenant_id: str, state: RatingState) -> LineTaxes:
        """Each taxable line's rate and exact tax, by position, for `rating.finish`."""
        if state.context.subscription.customer.tax_exempt:
            return {}  # exempt: nothing to ask, the Tax stage charges none
        out: dict[int, QuotedTax] = own_line_taxes(state)
        rest = [line for line in taxable_lines(state.lines) if int(line.key) not in out]
        if not rest:
            return out
        quote = self.quote(tenant_id, state)
        for line in rest:
            try:
                quoted = quote.line(line.key)
            except KeyError:
                raise TaxProviderBadResponse(
                    quote.provider, f"the quote has no tax for line {line.key}"
                ) from None
            out[int(line.key)] = QuotedTax(rate=quoted.rate, amount=quoted.amount)
        return out

    def rate(self, tenant_id: str, context: BillingContext) -> RatingResult:
        """The whole pipeline for one subscription, taxed by this service's provider."""
        return self.finish(tenant_id, rate_until_tax(context))

    def finish(self, tenant_id: str, state: RatingState) -> RatingResult:
        """Tax, Route and Settle of lines rated up to the Tax stage, by this provider."""
        ctx = state.context
        if self.provider is None and not ctx.tax_rates and not ctx.charge_tax_rates:
            return finish(state)  # an empty local table taxes nothing: no quote to build
        return finish(state, self.line_taxes(tenant_id, state))

    def close(self) -> None:
        """Release the provider's HTTP client, if it owns one."""
        inner = self.provider.inner if isinstance(self.provider, CachedTaxProvider) else None
        close = getattr(inner, "close", None)
        if callable(close):
            close()

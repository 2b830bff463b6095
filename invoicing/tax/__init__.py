"""Tax providers for pipeline stage 8: the local rate table, Avalara AvaTax, Vertex.

    provider = CachedTaxProvider(provider_from_config(name, config, local_rates))
    quote = provider.rates_for(TaxRequest(...))   # in the bill run's worker thread
    quote.line(key).rate, quote.line(key).amount  # percent, exact tax of the line

`docs/tax-providers.md` describes each provider, the requests they send and the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from core.clock import SYSTEM_CLOCK, Clock
from core.errors import ValidationFailed
from invoicing.tax.avalara import AvalaraConfig, AvalaraProvider
from invoicing.tax.base import (
    LineTax,
    RetryPolicy,
    TaxableLine,
    TaxComponent,
    TaxProvider,
    TaxProviderAuthFailed,
    TaxProviderBadResponse,
    TaxProviderError,
    TaxProviderRejected,
    TaxProviderUnavailable,
    TaxQuote,
    TaxRequest,
    taxable_lines,
)
from invoicing.tax.cache import CachedTaxProvider, QuoteKey, quote_key
from invoicing.tax.local import LocalRatesProvider
from invoicing.tax.vertex import VertexConfig, VertexProvider
from rating.context import TaxRate

PROVIDERS = ("local", "avalara", "vertex")

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "PROVIDERS",
    "AvalaraConfig",
    "AvalaraProvider",
    "CachedTaxProvider",
    "LineTax",
    "LocalRatesProvider",
    "QuoteKey",
    "RetryPolicy",
    "TaxComponent",
    "TaxProvider",
    "TaxProviderAuthFailed",
    "TaxProviderBadResponse",
    "TaxProviderError",
    "TaxProviderRejected",
    "TaxProviderUnavailable",
    "TaxQuote",
    "TaxRate",
    "TaxRequest",
    "TaxableLine",
    "VertexConfig",
    "VertexProvider",
    "provider_from_config",
    "quote_key",
    "taxable_lines",
]


def provider_from_config(
    name: str,
    config: Mapping[str, Any],
    local_rates: Sequence[TaxRate] = (),
    *,
    client: httpx.Client | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> TaxProvider:
    """The provider a tenant configured: "local" (its rate table), "avalara", "vertex".

    `config` is the provider's settings as stored (camelCase or snake_case keys); an
    invalid one is a ValidationFailed whose details never echo the values (secrets).
    The result is not cached: wrap it in a long-lived CachedTaxProvider per tenant.
    """
    if name == "local":
        return LocalRatesProvider(local_rates)
    if name == "avalara":
        return AvalaraProvider(_parse(AvalaraConfig, name, config), client=client, retry=retry)
    if name == "vertex":
        vertex = _parse(VertexConfig, name, config)
        return VertexProvider(vertex, client=client, retry=retry, clock=clock)
    raise ValidationFailed(
        f"unknown tax provider {name!r}; expected one of {', '.join(PROVIDERS)}",
        code="unknown_tax_provider",
    )


def _parse(model: type[M], name: str, config: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(dict(config))
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"]), "problem": error["msg"]}
            for error in exc.errors(include_input=False, include_url=False)
        ]
        fields = ", ".join(p["field"] for p in problems)
        raise ValidationFailed(
            f"invalid {name} tax configuration: {fields}",
            code="invalid_tax_configuration",
            details=problems,
        ) from None

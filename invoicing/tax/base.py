"""The tax-provider port of pipeline stage 8, and what its HTTP adapters share.

A provider answers one question for one draft invoice: for each taxable line, at what
total rate and for what exact amount is it taxed? The bill run's worker thread asks it
before it runs the pure rating pipeline; `rating/` itself never does I/O.

    TaxRequest (customer location, exemption, currency, date, taxable lines)
        → TaxProvider.rates_for → TaxQuote (per line: rate %, exact tax, components)

Money is `Decimal` end to end: request amounts are written into the JSON body as exact
number literals (`dumps_exact`), and provider JSON is parsed with `parse_float=Decimal`
(`loads_exact`), so no amount ever passes through a binary float.

Errors are classified (STYLE.md rule 5): a provider that rejects the request (4xx) is
`TaxProviderRejected` / `TaxProviderAuthFailed` and is never retried; transport errors,
5xx and 429 are retried with exponential backoff and, once the attempts are used up,
become `TaxProviderUnavailable`; a 2xx body we cannot read is `TaxProviderBadResponse`;
a request that cannot be sent at all (bad URL scheme) is a plain `TaxProviderError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, Protocol

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from core.errors import Transient, UpstreamFailed
from rating.model import InvoiceLine, LineType
from rating.money import ZERO, round_money, to_decimal

log = logging.getLogger(__name__)

# Line types that never carry tax: the same set the pure tax stage skips.
UNTAXED_LINE_TYPES = frozenset({LineType.DISCOUNT, LineType.CREDIT, LineType.TAX_ADJUSTMENT})


# ---------------------------------------------------------------------------- domain types


@dataclass(frozen=True)
class TaxableLine:
    """One invoice line to tax: its amount after discounts, rounded to the currency."""

    key: str  # stable id of the line within the invoice; the quote is keyed by it
    amount: Decimal
    fee_type: str  # a rating LineType value: CHARGE, USAGE_FEE, SETUP_FEE, PRORATION
    metric: str | None = None  # billable metric code of usage lines (AvaTax itemCode)
    tax_code: str | None = None  # provider tax code of the product, e.g. AvaTax SW054000
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise ValueError(f"line {self.key!r}: amount must be a finite Decimal")


@dataclass(frozen=True)
class TaxRequest:
    """Everything that decides the tax of one draft invoice (the rate inputs)."""

    tenant_id: str
    customer_id: str  # the customer's external id (AvaTax customerCode, Vertex customerCode)
    country: str | None  # ISO 3166-1 alpha-2
    region: str | None  # state / province code, e.g. "CA"
    currency: str  # ISO 4217
    invoice_date: date
    lines: tuple[TaxableLine, ...]
    postal_code: str | None = None
    tax_exempt: bool = False
    exemption_number: str | None = None  # exemption certificate number, when known
    entity_use_code: str | None = None  # AvaTax entity/use code (A-R), when known

    def __post_init__(self) -> None:
        keys = [line.key for line in self.lines]
        if len(set(keys)) != len(keys):
            raise ValueError("line keys of a tax request must be unique")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError(f"currency {self.currency!r} is not an ISO 4217 code")


@dataclass(frozen=True)
class TaxComponent:
    """One jurisdiction's tax inside a line's total, for display on the invoice."""

    name: str  # "CA STATE TAX", "Sales and Use Tax", a local rate's name
    rate: Decimal  # percent
    jurisdiction: str | None = None  # "CALIFORNIA", or the local rate's code
    amount: Decimal | None = None  # what the provider computed for this component


@dataclass(frozen=True)
class LineTax:
    """The tax of one line: total rate in percent and the exact amount to invoice."""

    key: str
    rate: Decimal
    amount: Decimal
    components: tuple[TaxComponent, ...] = ()


@dataclass(frozen=True)
class TaxQuote:
    """A provider's answer for one TaxRequest, one LineTax per request line, same order."""

    provider: str
    currency: str
    lines: tuple[LineTax, ...] = ()
    _by_key: Mapping[str, LineTax] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {line.key: line for line in self.lines})

    def line(self, key: str) -> LineTax:
        """The tax of the line with this key (KeyError when the quote has none)."""
        return self._by_key[key]

    @property
    def total(self) -> Decimal:
        """Sum of the line amounts (each already rounded to the currency)."""
        return sum((line.amount for line in self.lines), ZERO)

    def rekeyed(self, keys: Sequence[str]) -> TaxQuote:
        """The same quote for another invoice whose lines have these keys, in order."""
        if len(keys) != len(self.lines):
            raise ValueError("a quote can only be re-keyed to as many lines as it has")
        lines = tuple(
            LineTax(key, line.rate, line.amount, line.components)
            for key, line in zip(keys, self.lines, strict=True)
        )
        return TaxQuote(self.provider, self.currency, lines)


def empty_quote(provider: str, request: TaxRequest) -> TaxQuote:
    """A zero tax for every line: exempt customers of the local table, for example."""
    zero = round_money(ZERO, request.currency)
    lines = tuple(LineTax(line.key, ZERO, zero) for line in request.lines)
    return TaxQuote(provider, request.currency, lines)


def taxable_lines(lines: Sequence[InvoiceLine]) -> tuple[TaxableLine, ...]:
    """The lines of a rated invoice that carry tax, keyed by their position ("0", "1" …).

    Mirrors the pure tax stage: DISCOUNT, CREDIT and TAX_ADJUSTMENT lines are untaxed,
    and a line is taxed on its amount after the discounts allocated to it.
    """
    return tuple(
        TaxableLine(
            key=str(index),
            amount=line.amount - line.discount_amount,
            fee_type=line.type.value,
            metric=line.metric,
            description=line.description,
        )
        for index, line in enumerate(lines)
        if line.type not in UNTAXED_LINE_TYPES
    )


class TaxProvider(Protocol):
    """Computes the tax of a draft invoice. Sync: called from the bill run's worker."""

    @property
    def name(self) -> str:
        """Stable provider name: "local", "avalara", "vertex"."""
        ...

    @property
    def customer_specific(self) -> bool:
        """True when the customer's identity itself can change the result (exemption
        certificates the provider matches by customer code): then cached quotes are
        never shared between customers."""
        ...

    def rates_for(self, request: TaxRequest) -> TaxQuote:
        """The tax of every line of the request, or a classified TaxProviderError."""
        ...


# -------------------------------------------------------------------------------- errors


class TaxProviderError(UpstreamFailed):
    """A tax provider could not produce a quote; `code` says why (stable, for the API)."""

    code = "tax_provider_error"
    retryable = False

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        http_status: int | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(f"{provider}: {message}", details=details)
        self.provider = provider
        self.http_status = http_status


class TaxProviderRejected(TaxProviderError):
    """The provider refused the request as invalid (4xx): fix the data, do not retry."""

    code = "tax_provider_rejected"


class TaxProviderAuthFailed(TaxProviderRejected):
    """The provider refused our credentials (401/403): fix the tenant's configuration."""

    code = "tax_provider_auth_failed"


class TaxProviderUnavailable(TaxProviderError, Transient):
    """Transport error, 5xx or 429 on every attempt: transient, the bill run may retry."""

    code = "tax_provider_unavailable"
    retryable = True


class TaxProviderBadResponse(TaxProviderError):
    """A 2xx answer we cannot read (not JSON, a line missing, a non-numeric amount)."""

    code = "tax_provider_bad_response"


# ------------------------------------------------------------------- exact JSON encoding


def dumps_exact(value: object) -> str:
    """JSON text in which every Decimal is an exact number literal (`33.33`, never
    `33.329999…`). Floats are refused: money must not reach a provider through one."""
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot encode {value} as a JSON number")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not sent to tax providers; use Decimal")
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))}:{dumps_exact(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def loads_exact(content: bytes | str) -> Any:
    """Parse JSON with every non-integer number as a Decimal (integers stay int)."""
    return json.loads(content, parse_float=Decimal)


def decimal_field(provider: str, value: object, what: str) -> Decimal:
    """A number of a provider's answer as an exact Decimal, or TaxProviderBadResponse."""
    try:
        return to_decimal(value, what=what)
    except (ValueError, InvalidOperation):
        raise TaxProviderBadResponse(provider, f"{what} is not a number: {value!r}") from None


def rounded_tax(provider: str, value: object, what: str, currency: str) -> Decimal:
    """A provider's tax amount, rounded HALF_UP to the currency's minor unit (a no-op for
    amounts the provider already rounded; it absorbs double-precision noise)."""
    return round_money(decimal_field(provider, value, what), currency)


# ----------------------------------------------------------------- HTTP with retries


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    attempts: int = 3  # total attempts, the first included
    wait: Callable[[RetryCallState], float] = field(
        default_factory=lambda: wait_exponential(multiplier=0.5, min=0.5, max=8)
    )
    max_retry_after: float = 30.0  # cap on a 429/503 Retry-After we honour


class _RetryableStatus(Exception):
    """A 429 or 5xx answer: worth another attempt."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


# Timeouts, refused or dropped connections and garbled answers may pass; an unsupported
# URL scheme or a proxy refusal will not, so they fail at once as a TaxProviderError.
_TRANSIENT_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (*_TRANSIENT_TRANSPORT, _RetryableStatus))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


ErrorMessage = Callable[[Any], str | None]
"""Extracts the provider's human message from a parsed error body, if it has one."""


class ProviderHttp:
    """JSON over HTTP for one provider: exact encoding, classified errors, retries."""

    def __init__(
        self,
        provider: str,
        client: httpx.Client,
        *,
        retry: RetryPolicy,
        error_message: ErrorMessage,
    ) -> None:
        self.provider = provider
        self.client = client
        self.retry = retry
        self._error_message = error_message

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: object = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send with retries on transport errors, 5xx and 429; the parsed 2xx body."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        content: str | None = None
        if json_body is not None:
            content = dumps_exact(json_body)
            all_headers["Content-Type"] = "application/json"

        def attempt() -> httpx.Response:
            response = self.client.request(
                method,
                url,
                content=content,
                data=dict(form) if form is not None else None,
                headers=all_headers,
                auth=auth,
                params=params,
            )
            if response.status_code == 429 or response.status_code >= 500:
                raise _RetryableStatus(
                    response.status_code, self._describe(response), _retry_after(response)
                )
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except _RetryableStatus as exc:
            raise TaxProviderUnavailable(
                self.provider,
                f"HTTP {exc.status} after {self.retry.attempts} attempts: {exc.message}",
                http_status=exc.status,
            ) from None
        except _TRANSIENT_TRANSPORT as exc:
            raise TaxProviderUnavailable(
                self.provider,
                f"{type(exc).__name__} after {self.retry.attempts} attempts: {exc}",
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise TaxProviderError(
                self.provider, f"cannot send the request ({type(exc).__name__}): {exc}"
            ) from None
        if response.status_code >= 400:
            self._reject(response)
        try:
            return loads_exact(response.content)
        except ValueError:
            raise TaxProviderBadResponse(
                self.provider,
                f"HTTP {response.status_code} body is not JSON",
                http_status=response.status_code,
            ) from None

    def _wait(self, state: RetryCallState) -> float:
        wait = float(self.retry.wait(state))
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self.retry.max_retry_after))
        return wait

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "%s: attempt %d failed (%s), retrying", self.provider, state.attempt_number, exc
        )

    def _describe(self, response: httpx.Response) -> str:
        try:
            message = self._error_message(loads_exact(response.content))
        except ValueError:
            message = None
        return message or response.reason_phrase or f"HTTP {response.status_code}"

    def _reject(self, response: httpx.Response) -> NoReturn:
        status = response.status_code
        message = f"HTTP {status}: {self._describe(response)}"
        if status in (401, 403):
            raise TaxProviderAuthFailed(self.provider, message, http_status=status)
        raise TaxProviderRejected(self.provider, message, http_status=status)

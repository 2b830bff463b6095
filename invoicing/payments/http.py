"""HTTP to a payment provider, shared by the adapters: retries of what may pass, and
nothing else.

A request is retried, with exponential backoff and the SAME headers (so the SAME
idempotency key), after a timeout, a dropped or refused connection, a 429 or a 5xx:
the provider either never saw it or answers the repeat with the first result. Once
the attempts are used up the call raises `PaymentUnavailable` (nothing is known to
have moved; dunning tries again later under a new key). Every other answer, 2xx or
4xx, is handed back as a `Reply` for the adapter to classify: only it knows which 4xx
of its vendor is a decline and which is a mistake in the setup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from invoicing.payments.base import PaymentUnavailable
from invoicing.tax.base import dumps_exact, loads_exact

log = logging.getLogger(__name__)

# Timeouts, refused or dropped connections: the request may not have arrived.
TRANSIENT_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class Reply:
    """A provider's final answer: its status and its JSON object ({} when it sent none)."""

    status: int
    body: dict[str, Any]
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is tried again."""

    attempts: int = 3  # in all, the first included
    backoff: float = 0.5  # seconds before the first retry; doubles up to 8 s


def transient_status(response: httpx.Response) -> bool:
    """The statuses every provider documents as worth another try."""
    return response.status_code == 429 or response.status_code >= 500


class _Retryable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderHttp:
    """One provider's HTTP client: JSON or form bodies, headers, retries."""

    def __init__(
        self,
        vendor: str,
        client: httpx.Client,
        *,
        retry: RetryPolicy | None = None,
        retryable: Callable[[httpx.Response], bool] = transient_status,
    ) -> None:
        self.vendor = vendor
        self.client = client
        self.retry = retry or RetryPolicy()
        self._retryable = retryable

    def get(self, path: str, *, params: Mapping[str, str] | None = None) -> Reply:
        return self.send("GET", path, params=params)

    def post(
        self,
        path: str,
        *,
        idempotency_key: str | None,
        json: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        key_header: str = "Idempotency-Key",
    ) -> Reply:
        headers = {key_header: idempotency_key} if idempotency_key else {}
        return self.send("POST", path, json=json, form=form, headers=headers)

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """The provider's final answer; `PaymentUnavailable` when none came in time.

        A JSON body may hold Decimals: they are sent as exact number literals."""
        all_headers = dict(headers or {})
        content = None
        if json is not None:
            content = dumps_exact(json)
            all_headers["Content-Type"] = "application/json"

        def attempt() -> Reply:
            try:
                response = self.client.request(
                    method,
                    path,
                    content=content,
                    data=dict(form) if form is not None else None,
                    headers=all_headers,
                    params=dict(params) if params is not None else None,
                )
            except TRANSIENT_TRANSPORT as exc:
                raise _Retryable(f"{self.vendor} unreachable: {type(exc).__name__}") from exc
            if self._retryable(response):
                raise _Retryable(f"{self.vendor} answered {response.status_code}")
            return Reply(response.status_code, _json_object(response), response.headers)

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential(multiplier=self.retry.backoff, min=self.retry.backoff, max=8),
            retry=retry_if_exception_type(_Retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            raise PaymentUnavailable(
                f"{exc.message} (after {self.retry.attempts} attempts)"
            ) from exc

    def close(self) -> None:
        self.client.close()

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s: attempt %d failed (%s), retrying", self.vendor, state.attempt_number, exc)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = loads_exact(response.content)  # money, if any, as exact Decimals
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def client(
    base_url: str, headers: Mapping[str, str], *, timeout: float, given: httpx.Client | None
) -> httpx.Client:
    """The adapter's httpx client: `given` (tests) with the vendor's headers added, or a
    new one on `base_url`."""
    if given is not None:
        given.headers.update(headers)
        return given
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        headers={"Accept": "application/json", **headers},
        timeout=timeout,
    )

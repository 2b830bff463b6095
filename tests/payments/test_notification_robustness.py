"""Whatever reaches `POST /payment-providers/{id}/webhooks` (the route is open to anyone
who knows a connection id), each provider's check answers a list of results or
`WebhookRejected` (400): never another exception (a 500, and the provider retrying the
same garbage for days). Bodies are any JSON, including the shapes each adapter reads
with the wrong types in them; headers are the ones each adapter reads, with any text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing.payments import providers
from invoicing.payments.base import WebhookRejected

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

CONFIGS: dict[str, dict[str, Any]] = {
    "stripe": {"secretKey": "sk_test_x", "webhookSecret": "whsec_x"},
    "adyen": {"apiKey": "k", "merchantAccount": "Acme", "hmacKey": "44782DEF547AAA06"},
    "gocardless": {"accessToken": "t", "webhookSecret": "s"},
    "tap": {"secretKey": "sk_test_tap"},
    "moneyhash": {"apiKey": "k", "signatureKey": "s"},
    "flutterwave": {"secretKey": "FLWSECK-x", "secretHash": "h"},
    "cashfree": {"clientId": "id", "clientSecret": "s"},
}

HEADERS = [
    "Stripe-Signature",
    "Webhook-Signature",
    "hashstring",
    "MoneyHash-Signature",
    "verif-hash",
    "x-webhook-signature",
    "x-webhook-timestamp",
]

# Latin-1 text: what a server decodes any header bytes to.
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# The keys adapters read, so the wrong types land where they look.
KEYS = ["id", "type", "event", "events", "data", "object", "amount", "currency", "status",
        "reference", "transaction", "notificationItems", "NotificationRequestItem",
        "additionalData", "links", "payment", "refund", "intent", "metadata", "tx_ref"]  # fmt: skip
shaped = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=16,
)


def _check(provider: str, headers: dict[str, str], body: bytes) -> None:
    try:
        results = providers.verify_notifications(provider, CONFIGS[provider], headers, body, NOW)
    except WebhookRejected:
        return
    assert isinstance(results, list | tuple)


@pytest.mark.parametrize("provider", sorted(CONFIGS))
@settings(max_examples=60, deadline=None)
@given(
    body=json_values | shaped,
    headers=st.dictionaries(st.sampled_from(HEADERS), header_text, max_size=3),
)
def test_any_json_and_any_header_is_results_or_refused(
    provider: str, body: Any, headers: dict[str, str]
) -> None:
    _check(provider, headers, json.dumps(body).encode())


@pytest.mark.parametrize("provider", sorted(CONFIGS))
def test_bytes_that_are_not_json_and_deep_nesting_are_refused(provider: str) -> None:
    for body in (b"", b"\xff\xfe", b"[" * 100_000, b'{"a": ' * 50_000):
        _check(provider, {"Webhook-Signature": "\xe9", "hashstring": "\xff"}, body)

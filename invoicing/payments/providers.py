"""A tenant's payment-provider connections (`POST /payment-providers`), and the
gateway each one builds. Secrets are kept in the ledger sealed (Fernet, the key of
`invoicing.secrets`) as `{"sealed": <token>, "shown": "…last4"}`, and never shown
back; `gateways(box)` opens them for the one gateway being built."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, DomainError, InvalidInput, NotFound
from invoicing.models import PaymentProviderRow, new_id
from invoicing.payments import adyen, cashfree, flutterwave, gocardless, moneyhash, stripe, tap
from invoicing.payments.adyen import AdyenConfig, AdyenGateway
from invoicing.payments.base import (
    PROVIDERS,
    SUPPORTED,
    C,
    PaymentGateway,
    WebhookRejected,
    WebhookResult,
    parse_config,
)
from invoicing.payments.cashfree import CashfreeConfig, CashfreeGateway
from invoicing.payments.flutterwave import FlutterwaveConfig, FlutterwaveGateway
from invoicing.payments.gocardless import GoCardlessConfig, GoCardlessGateway
from invoicing.payments.moneyhash import MoneyhashConfig, MoneyhashGateway
from invoicing.payments.stripe import StripeConfig, StripeGateway
from invoicing.payments.tap import TapConfig, TapGateway
from invoicing.secrets import SecretBox

# Config keys whose values are secrets: stored, never answered.
SECRET_KEYS = frozenset(
    {
        "secretKey",
        "apiKey",
        "accessToken",
        "webhookSecret",
        "hmacKey",
        "secretHash",
        "signatureKey",
        "clientSecret",
        "password",
        "token",
    }
)

log = logging.getLogger(__name__)

GatewayFactory = Callable[[str, Mapping[str, Any]], PaymentGateway]


# A provider module's check of a notification: (config, headers, raw body, now) -> what
# it says, or WebhookRejected when it is not the provider's.
Verifier = Callable[[C, Mapping[str, str], bytes, datetime], Sequence[WebhookResult]]


@dataclass(frozen=True)
class Adapter(Generic[C]):
    """A provider's config model, the gateway built from a checked config, and the
    check of its signed notifications."""

    config: type[C]
    build: Callable[[C], PaymentGateway]
    verify: Verifier[C]

    def gateway(self, config: Mapping[str, Any]) -> PaymentGateway:
        return self.build(parse_config(self.config, config))

    def notifications(
        self, config: Mapping[str, Any], headers: Mapping[str, str], body: bytes, now: datetime
    ) -> Sequence[WebhookResult]:
        return self.verify(parse_config(self.config, config), headers, body, now)


ADAPTERS: dict[str, Adapter[Any]] = {
    "stripe": Adapter(StripeConfig, StripeGateway, stripe.verify_webhook),
    "adyen": Adapter(AdyenConfig, AdyenGateway, adyen.verify_webhook),
    "gocardless": Adapter(GoCardlessConfig, GoCardlessGateway, gocardless.verify_webhook),
    "tap": Adapter(TapConfig, TapGateway, tap.verify_webhook),
    "moneyhash": Adapter(MoneyhashConfig, MoneyhashGateway, moneyhash.verify_webhook),
    "flutterwave": Adapter(FlutterwaveConfig, FlutterwaveGateway, flutterwave.verify_webhook),
    "cashfree": Adapter(CashfreeConfig, CashfreeGateway, cashfree.verify_webhook),
}


def build_gateway(provider: str, config: Mapping[str, Any]) -> PaymentGateway:
    """The adapter of `provider` over its stored configuration."""
    adapter = ADAPTERS.get(provider)
    if adapter is None:
        raise InvalidInput(f"payment provider {provider!r} has no adapter yet")
    return adapter.gateway(config)


def verify_notifications(
    provider: str, config: Mapping[str, Any], headers: Mapping[str, str], body: bytes, now: datetime
) -> Sequence[WebhookResult]:
    """What a notification posted for a connection of `provider` says, its stored
    config opened already; WebhookRejected when its signature is not the provider's."""
    adapter = ADAPTERS.get(provider)
    if adapter is None:
        raise InvalidInput(f"payment provider {provider!r} has no adapter yet")
    try:
        return adapter.notifications(config, headers, body, now)
    except DomainError:
        raise
    except (Exception, RecursionError) as exc:  # a body or header no adapter expected
        log.info("a %s notification refused: %r", provider, exc)
        raise WebhookRejected(
            f"the {provider} notification could not be read ({type(exc).__name__})"
        ) from None


def confirms(provider: str) -> bool:
    """Whether `provider`'s gateway confirms its notifications by API before they count
    (`ConfirmsNotifications`: a provider whose signature does not cover the body)."""
    adapter = ADAPTERS.get(provider)
    return adapter is not None and callable(getattr(adapter.build, "confirm", None))


def saves_payment_methods(provider: str) -> bool:
    """Whether `provider`'s gateway makes a page to save a payment method without a
    payment (`SavesPaymentMethods`: POST /customers/{externalId}/checkout-url)."""
    adapter = ADAPTERS.get(provider)
    return adapter is not None and callable(getattr(adapter.build, "checkout", None))


def gateways(box: SecretBox) -> GatewayFactory:
    """The factory the runtime hands to what charges and refunds: stored configs opened."""

    def build(provider: str, config: Mapping[str, Any]) -> PaymentGateway:
        return build_gateway(provider, opened(config, box))

    return build


def seal(config: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    """The config as stored: each secret value sealed, with its masked form beside it."""
    return {
        key: {"sealed": box.seal(value), "shown": _mask(value)}
        if key in SECRET_KEYS and isinstance(value, str)
        else value
        for key, value in config.items()
    }


def opened(config: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    """The stored config with its secrets in the clear (a value stored before sealing
    existed is taken as it is)."""
    return {
        key: box.open(value["sealed"]) if _sealed(value) else value for key, value in config.items()
    }


def _sealed(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("sealed"), str)


def _mask(value: str) -> str:
    return f"…{value[-4:]}" if len(value) > 8 else "…"


def check_config(provider: str, config: Mapping[str, Any]) -> None:
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}")
    adapter = ADAPTERS.get(provider)
    if provider not in SUPPORTED or adapter is None:
        raise InvalidInput(
            f"payment provider {provider!r} is not supported yet (supported: "
            f"{', '.join(SUPPORTED)})",
            code="provider_not_supported",
        )
    parse_config(adapter.config, config)


def connect(
    session: Session,
    tenant_id: str,
    provider: str,
    config: Mapping[str, Any],
    now: datetime,
    box: SecretBox,
) -> PaymentProviderRow:
    check_config(provider, config)
    row = PaymentProviderRow(
        id=new_id("pp"),
        tenant_id=tenant_id,
        provider=provider,
        config=seal(config, box),
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"payment provider {provider!r} is already connected; PATCH it to change the config",
            code="duplicate",
        ) from None
    return row


def update(
    session: Session,
    tenant_id: str,
    provider_id: str,
    config: Mapping[str, Any],
    box: SecretBox,
) -> PaymentProviderRow:
    row = get(session, tenant_id, provider_id)
    merged = {**opened(row.config, box), **config}
    check_config(row.provider, merged)
    row.config = seal(merged, box)
    return row


def get(session: Session, tenant_id: str, provider_id: str) -> PaymentProviderRow:
    row = session.execute(
        select(PaymentProviderRow).where(
            PaymentProviderRow.tenant_id == tenant_id, PaymentProviderRow.id == provider_id
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"payment provider {provider_id!r} not found")
    return row


def delete(session: Session, tenant_id: str, provider_id: str) -> None:
    session.delete(get(session, tenant_id, provider_id))


def list_all(session: Session, tenant_id: str) -> list[PaymentProviderRow]:
    return list(
        session.execute(
            select(PaymentProviderRow)
            .where(PaymentProviderRow.tenant_id == tenant_id)
            .order_by(PaymentProviderRow.created_at.desc(), PaymentProviderRow.id.desc())
        ).scalars()
    )


def find(session: Session, tenant_id: str, provider: str) -> PaymentProviderRow | None:
    return session.execute(
        select(PaymentProviderRow).where(
            PaymentProviderRow.tenant_id == tenant_id, PaymentProviderRow.provider == provider
        )
    ).scalar_one_or_none()


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as answered: secrets masked to their last four characters."""
    shown: dict[str, Any] = {}
    for key, value in config.items():
        if _sealed(value):
            shown[key] = value.get("shown", "…")
        elif key in SECRET_KEYS and isinstance(value, str):
            shown[key] = _mask(value)
        else:
            shown[key] = value
    return shown

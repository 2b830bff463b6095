"""The connectors by provider: each one's config model, which config keys are secrets
(sealed at rest, never answered), and how a connector is built from a checked config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic

from core.errors import InvalidInput
from invoicing.erp.base import PROVIDERS, C, Connector, Context, Credentials, parse_config
from invoicing.erp.custom_webhook import CustomWebhookConfig, CustomWebhookConnector
from invoicing.erp.netsuite import NetSuiteConfig, NetSuiteConnector
from invoicing.erp.quickbooks import QuickBooksConfig, QuickBooksConnector
from invoicing.erp.xero import XeroConfig, XeroConnector


@dataclass(frozen=True)
class Adapter(Generic[C]):
    config: type[C]
    build: Callable[[C, Credentials, Context], Connector]
    secrets: frozenset[str]  # config keys kept sealed and shown masked
    oauth: bool = False

    def connector(
        self, config: Mapping[str, Any], credentials: Credentials, context: Context
    ) -> Connector:
        return self.build(parse_config(self.config, config), credentials, context)


ADAPTERS: dict[str, Adapter[Any]] = {
    "custom_webhook": Adapter(
        CustomWebhookConfig,
        lambda config, _credentials, _context: CustomWebhookConnector(config),
        frozenset({"secret"}),
    ),
    "quickbooks": Adapter(
        QuickBooksConfig,
        lambda config, credentials, context: QuickBooksConnector(config, credentials, context),
        frozenset({"clientSecret"}),
        oauth=True,
    ),
    "netsuite": Adapter(
        NetSuiteConfig,
        lambda config, _credentials, context: NetSuiteConnector(config, context),
        frozenset({"consumerSecret", "tokenSecret"}),
    ),
    "xero": Adapter(
        XeroConfig,
        lambda config, credentials, context: XeroConnector(config, credentials, context),
        frozenset({"clientSecret"}),
        oauth=True,
    ),
}


def adapter(provider: str) -> Adapter[Any]:
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}")
    found = ADAPTERS.get(provider)
    if found is None:
        raise InvalidInput(
            f"ERP provider {provider!r} is not supported yet", code="provider_not_supported"
        )
    return found

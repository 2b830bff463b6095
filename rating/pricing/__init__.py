"""Pricing: one pure pricer per charge model, behind one interface.

    validate_properties("graduated", raw)   -> normalized properties (or InvalidChargeProperties)
    price("graduated", properties, usage)   -> PricedCharge(amount exact, unit_amount)
    needs_event_amounts(model, properties)  -> whether to fetch per-transaction amounts

Amounts are exact Decimals; rounding happens once, on the invoice line, elsewhere.
The interface is in `base.py`, one module per model, the registry in `registry.py`.
The semantics of each model are in BILLING.md and docs/pricing-models.md.
"""

from __future__ import annotations

from rating.pricing.base import (
    ChargeUsage,
    InvalidChargeProperties,
    InvalidChargeUsage,
    PricedCharge,
    Pricer,
)
from rating.pricing.registry import (
    MODELS,
    PRICERS,
    needs_event_amounts,
    price,
    validate_properties,
)

__all__ = [
    "MODELS",
    "PRICERS",
    "ChargeUsage",
    "InvalidChargeProperties",
    "InvalidChargeUsage",
    "PricedCharge",
    "Pricer",
    "needs_event_amounts",
    "price",
    "validate_properties",
]

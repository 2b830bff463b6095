"""package: units are sold in whole packages, ⌈max(q - freeUnits, 0) / packageSize⌉ * amount."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rating.money import ZERO, ceil_div
from rating.pricing.base import (
    ChargeUsage,
    InvalidChargeProperties,
    PricedCharge,
    average_unit_amount,
    optional_decimal,
    reject_unknown_keys,
    required_decimal,
    text,
)


@dataclass(frozen=True)
class PackageProperties:
    amount: Decimal  # price of one package
    package_size: Decimal  # units per package, > 0
    free_units: Decimal = ZERO


class PackagePricer:
    model = "package"

    def parse(self, properties: Mapping[str, Any]) -> PackageProperties:
        reject_unknown_keys(properties, ("amount", "packageSize", "freeUnits"), model=self.model)
        package_size = required_decimal(properties, "packageSize")
        if package_size == 0:
            raise InvalidChargeProperties("packageSize must be greater than 0")
        return PackageProperties(
            amount=required_decimal(properties, "amount"),
            package_size=package_size,
            free_units=optional_decimal(properties, "freeUnits") or ZERO,
        )

    def normalize(self, parsed: PackageProperties) -> dict[str, Any]:
        return {
            "amount": text(parsed.amount),
            "packageSize": text(parsed.package_size),
            "freeUnits": text(parsed.free_units),
        }

    def price(self, parsed: PackageProperties, usage: ChargeUsage) -> PricedCharge:
        billable = max(usage.quantity - parsed.free_units, ZERO)
        # Exact integer ceiling: a started package is a whole package.
        packages = ceil_div(billable, parsed.package_size)
        amount = packages * parsed.amount
        return PricedCharge(amount=amount, unit_amount=average_unit_amount(amount, usage.quantity))

    def needs_event_amounts(self, parsed: PackageProperties) -> bool:
        return False


PACKAGE = PackagePricer()

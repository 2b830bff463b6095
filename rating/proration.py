"""Splitting a fee of one period at an instant: the used part and the unused rest.

A fee split at a termination or a plan change is prorated by days (BILLING.md:
Prorations, a started day counts as a used day). The used part is the fee × days used /
days covered, rounded once to the currency's minor unit (HALF_UP); the unused part is
the fee minus the used part, so the two always sum to the fee exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from rating.model import Period
from rating.money import ZERO, prorate, round_money
from rating.periods import days


@dataclass(frozen=True)
class FeeSplit:
    """A fee of a span cut at an instant: `used` before it, `unused` from it on."""

    used: Decimal
    unused: Decimal
    used_days: Decimal
    total_days: Decimal


def split_fee(
    amount: Decimal, span: Period, at: datetime, currency: str, zone: tzinfo = UTC
) -> FeeSplit:
    """Cut the (rounded) fee `amount` covering `span` at `at`: used = amount × days of
    [span.start, at) / days of span (local days of `zone`), rounded; unused = amount − used."""
    amount = round_money(amount, currency)
    total = days(span.start, span.end, zone)
    used_days = min(days(span.start, min(at, span.end), zone), total)
    if total <= 0 or used_days >= total:
        return FeeSplit(amount, ZERO, total, total)
    used = prorate(amount, used_days, total, currency) if used_days > 0 else ZERO
    return FeeSplit(used, amount - used, used_days, total)

"""Revenue analytics (docs/analytics.md): the month parameters and the figures as shown."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import Field

from api.schemas.common import Public
from api.schemas.money import Decimal_, money, parse_instant
from core.errors import InvalidInput
from invoicing import analytics
from invoicing.catalog import currency_code

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# Months are UTC calendar months of years the ledger can hold with room for the
# window's arithmetic (a default `from` eleven months back, an `end` one month on).
FIRST_YEAR, LAST_YEAR = 1970, 9998


def parse_month(value: str | None, name: str) -> analytics.Month | None:
    """A 'YYYY-MM' month; a date or an RFC 3339 date-time stands for its UTC month."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    matched = _MONTH.match(text)
    if matched:
        year, month = int(matched.group(1)), int(matched.group(2))
        if not 1 <= month <= 12:
            raise InvalidInput(f"{name}: {text!r} has no month {month:02d} (01 … 12)")
        found = analytics.Month(year, month)
    else:
        try:
            found = analytics.Month.of(parse_instant(text, end=False))
        except ValueError:
            raise InvalidInput(
                f"{name}: {text!r} is not a month (YYYY-MM), a date or an RFC 3339 date-time"
            ) from None
    if not FIRST_YEAR <= found.year <= LAST_YEAR:
        raise InvalidInput(f"{name}: {text!r} is outside {FIRST_YEAR} … {LAST_YEAR}")
    return found


def parse_currency(value: str | None) -> str | None:
    """An ISO 4217 code (any case), or None for every currency."""
    if value is None or not value.strip():
        return None
    return currency_code(value.strip())


class MonthAmount(Public):
    """One month of one currency: gross revenue or collections."""

    month: str = Field(description="YYYY-MM, a UTC calendar month")
    currency: str
    amount: Decimal_
    count: int = Field(description="invoices (gross revenue) or payments (collections)")

    @classmethod
    def of(cls, figure: analytics.Figure) -> MonthAmount:
        return cls(
            month=figure.month,
            currency=figure.currency,
            amount=money(figure.amount, figure.currency),
            count=figure.count,
        )


class UsageAmount(MonthAmount):
    """One month of one currency and one metric: invoiced usage."""

    count: int = Field(description="usage lines")
    metric: str = Field(description="the billable metric's code")

    @classmethod
    def of(cls, figure: analytics.Figure) -> UsageAmount:
        return cls(
            month=figure.month,
            currency=figure.currency,
            amount=money(figure.amount, figure.currency),
            count=figure.count,
            metric=figure.metric or "",
        )


class MovementsPublic(Public):
    new: Decimal_ = Field(description="MRR of customers who had none at the previous month end")
    expansion: Decimal_ = Field(description="increases of customers who had MRR before")
    contraction: Decimal_ = Field(description="decreases of customers who keep some MRR")
    churn: Decimal_ = Field(description="MRR of customers who have none left")


class MrrMonth(Public):
    """The MRR at the end of a month of one currency, and how it moved in that month."""

    month: str = Field(description="YYYY-MM, a UTC calendar month")
    currency: str
    amount: Decimal_ = Field(description="MRR at the month's end")
    count: int = Field(description="subscriptions running at the month's end")
    movements: MovementsPublic

    @classmethod
    def of(cls, figure: analytics.MrrFigure) -> MrrMonth:
        cur, moved = figure.currency, figure.movements
        return cls(
            month=figure.month,
            currency=cur,
            amount=money(figure.amount, cur),
            count=figure.count,
            movements=MovementsPublic(
                new=money(moved.new, cur),
                expansion=money(moved.expansion, cur),
                contraction=money(moved.contraction, cur),
                churn=money(moved.churn, cur),
            ),
        )


class OverdueBalance(Public):
    currency: str
    amount: Decimal_ = Field(description="still due on the overdue invoices")
    count: int = Field(description="overdue invoices")

    @classmethod
    def of(cls, balance: analytics.Balance) -> OverdueBalance:
        return cls(
            currency=balance.currency,
            amount=money(balance.amount, balance.currency),
            count=balance.count,
        )


class MonthAmounts(Public):
    data: list[MonthAmount]

    @classmethod
    def of(cls, figures: Iterable[analytics.Figure]) -> MonthAmounts:
        return cls(data=[MonthAmount.of(f) for f in figures])


class UsageAmounts(Public):
    data: list[UsageAmount]


class MrrMonths(Public):
    data: list[MrrMonth]


class OverdueBalances(Public):
    data: list[OverdueBalance]

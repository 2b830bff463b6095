"""The usage read-out's query parameters (`from` and `to`, parsed or refused with a 422)
and its response.

Any text is a valid request: it parses to an instant or fails as a validation error that
names the parameter. The range an instant may take is the domain's
(`invoicing.usage.check_window`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import Query
from pydantic import BeforeValidator, Field

from api.schemas.common import Public
from api.schemas.money import Timestamp


def _instant(value: object, *, end: bool) -> datetime:
    """An RFC 3339 date-time (a missing zone is UTC) or a YYYY-MM-DD date.

    A date as `from` is its first instant; as `to` it includes that whole day (the end
    is the next midnight), and so does a `to` of 23:59:59, as elsewhere in the API.
    """
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 date-time or a YYYY-MM-DD date")
    text = value.strip()
    try:
        if len(text) == 10:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
            parsed = datetime.combine(day, time(), UTC)
            return parsed + timedelta(days=1) if end else parsed
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an RFC 3339 date-time") from None
        parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        if end and (parsed.hour, parsed.minute, parsed.second) == (23, 59, 59):
            parsed = datetime.combine(parsed.date() + timedelta(days=1), time(), UTC)
        return parsed
    except OverflowError:
        # Year 1 minus an offset, or the day after 9999-12-31: not an instant at all.
        raise ValueError(f"{value!r} is out of range") from None


def _from(value: object) -> datetime | None:
    # `?from=` (empty) is the same as leaving it out.
    return None if value == "" else _instant(value, end=False)


def _to(value: object) -> datetime | None:
    return None if value == "" else _instant(value, end=True)


UsageFrom = Annotated[
    datetime | None,
    BeforeValidator(_from),
    Query(
        alias="from",
        description="Start of the window (inclusive): RFC 3339 or YYYY-MM-DD. "
        "Default: the start of the current billing period.",
    ),
]
UsageTo = Annotated[
    datetime | None,
    BeforeValidator(_to),
    Query(
        description="End of the window (exclusive; a date includes that day). "
        "Default: the end of the current billing period.",
    ),
]


class UsageMetricPublic(Public):
    """One metric (and group) of the read-out: its exact quantity and what it costs."""

    metric: str
    group: dict[str, str]
    quantity: str = Field(description="every event counted once, the cap notwithstanding")
    amount: str = Field(description="what the invoice bills: at most the cap's worth")
    cap: str | None = Field(None, description="the charge's hardCap (absent without one)")
    blocked: bool | None = Field(None, description="the charge reached its cap (with a cap)")


class UsagePublic(Public):
    """A customer's usage over a window, priced as the bill run prices it."""

    customer_id: str
    from_: str = Field(alias="from")
    to: str
    currency: str
    metrics: list[UsageMetricPublic]
    amount: str


class QuotaPublic(Public):
    """May this customer go on? The current period's use of a metric against its cap."""

    customer_id: str
    metric: str
    period_start: Timestamp
    period_end: Timestamp
    used: str = Field(description="the period's quantity: every event, duplicates never")
    cap: str | None
    remaining: str | None = Field(description="max(cap - used, 0); null without a cap")
    blocked: bool = Field(description="used >= cap")

"""The API's decimal and time types: how they parse from the wire and how they are shown.

`Decimal_` is the one type of every money and decimal field. It parses a decimal
string or a JSON number exactly (`rating.money.to_decimal`: a number goes through its
shortest repr, so 0.1 is 0.1) and is shown as a plain decimal string, never with an
exponent. A response model holds each value at the scale the API shows it: money
rounded to its currency's minor unit (`money`), quantities, prices and rates without
trailing zeros (`plain`), stored charge values as stored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo, WithJsonSchema
from pydantic.alias_generators import to_camel

from rating.money import canonical, round_money, to_decimal


def _parse_decimal(value: Any, info: ValidationInfo) -> Decimal:
    return to_decimal(value, what=to_camel(info.field_name) if info.field_name else "value")


def _show_decimal(value: Decimal) -> str:
    return format(value, "f")


Decimal_ = Annotated[
    Decimal,
    BeforeValidator(_parse_decimal),
    PlainSerializer(_show_decimal, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "example": "12.50"}, {"type": "number"}],
            "description": "A decimal: a string (exact) or a JSON number",
        },
        mode="validation",
    ),
    WithJsonSchema(
        {"type": "string", "example": "12.50", "description": "A decimal string"},
        mode="serialization",
    ),
]


# A decimal that the domain parses (with the same `to_decimal`) only after it checked the
# state of what it applies to: a request in the wrong state is a 409 even when its values
# are also wrong (API.md), so a malformed amount must not be refused here first.
StateCheckedDecimal = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "example": "12.50"}, {"type": "number"}],
            "description": "A decimal: a string (exact) or a JSON number",
        },
        mode="validation",
    ),
]


def money(value: Decimal, currency: str) -> Decimal:
    """An amount as shown: rounded once to the currency's minor unit ('12.50', '100' JPY)."""
    return round_money(value, currency)


def plain(value: Decimal) -> Decimal:
    """A quantity, unit price or rate as shown: no trailing zeros ('1234.5', '19')."""
    return canonical(value)


def plain_or_none(value: Decimal | None) -> Decimal | None:
    return None if value is None else canonical(value)


def ts(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a 'Z'."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _show_instant(value: datetime) -> str:
    shown = ts(value)
    assert shown is not None
    return shown


# A response time: RFC 3339 in UTC, 'Z'.
Timestamp = Annotated[
    datetime,
    PlainSerializer(_show_instant, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


def parse_instant(value: Any, *, end: bool) -> datetime:
    """A date-time with zone, or a date. A date means its first instant, or for an end
    its last day inclusive (the end is then the next midnight); 23:59:59 ends a day too."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(), UTC) + (timedelta(days=1) if end else timedelta())
        return parsed
    elif isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
            return parse_instant(day, end=end)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an RFC 3339 date-time") from None
    else:
        raise ValueError("expected an RFC 3339 date-time or a YYYY-MM-DD date")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if end and (parsed.hour, parsed.minute, parsed.second) == (23, 59, 59):
        parsed = datetime.combine(parsed.date() + timedelta(days=1), time(), UTC)
    return parsed


def start_instant(value: Any) -> datetime:
    """The instant a period or interval starts at."""
    return parse_instant(value, end=False)


def end_instant(value: Any) -> datetime | None:
    """The instant a period or interval ends at (exclusive), or None."""
    return None if value is None else parse_instant(value, end=True)


_INSTANT_IN = WithJsonSchema(
    {
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
        "description": "RFC 3339 date-time (UTC if no zone) or a YYYY-MM-DD date",
    },
    mode="validation",
)
StartInstant = Annotated[datetime, BeforeValidator(start_instant), _INSTANT_IN]
EndInstant = Annotated[datetime | None, BeforeValidator(end_instant), _INSTANT_IN]

"""SQL that must mean the same on both ledger databases: exact money sums and UTC months.

PostgreSQL keeps money as NUMERIC, whose SUM is exact. SQLite keeps it as canonical
decimal text (`invoicing.db.Money`), and SQLite's own SUM of text goes through a float:
wrong in the last digits once enough values add up. So on SQLite a money column is
summed as three integer sums, each exact in SQLite's 64-bit integers: the whole part,
and the first and last six of the twelve stored decimals. `sum_value` puts them back
together exactly.

Limits of the SQLite form: a whole part beyond ±9.2 × 10^18 is clamped by SQLite's
CAST, and decimals past the twelfth (none is stored: NUMERIC(38, 12)) are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, String, case, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement

from rating.money import EXACT, ZERO

_SIX = Decimal(10) ** 6
_TWELVE = Decimal(10) ** 12


def month_of(column: Any, dialect: str) -> ColumnElement[str]:
    """The UTC month of a timestamp column as 'YYYY-MM'.

    SQLite stores the instant as UTC text 'YYYY-MM-DD HH:MM:SS.ffffff', so the month is
    its first seven characters; PostgreSQL's timestamptz is read in UTC explicitly, so
    the session's time zone cannot move an instant to another month."""
    if dialect == "sqlite":
        return func.substr(column, 1, 7, type_=String)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM", type_=String)


def sum_columns(column: Any, dialect: str) -> list[ColumnElement[Any]]:
    """The select columns of an exact SUM of a money column (read back by `sum_value`)."""
    if dialect != "sqlite":
        return [func.sum(column)]
    sign = case((func.substr(column, 1, 1) == "-", -1), else_=1)
    dot = func.instr(column, ".")
    decimals = case((dot > 0, func.substr(column, dot + 1)), else_="")
    twelve = func.substr(decimals.op("||")(literal("000000000000", String)), 1, 12)
    return [
        func.sum(cast(column, Integer)),
        func.sum(cast(func.substr(twelve, 1, 6), Integer) * sign),
        func.sum(cast(func.substr(twelve, 7, 6), Integer) * sign),
    ]


def sum_width(dialect: str) -> int:
    """How many columns `sum_columns` gives on `dialect`."""
    return 3 if dialect == "sqlite" else 1


def sum_value(values: Sequence[Any]) -> Decimal:
    """The exact sum from the values of `sum_columns` (0 when no row was summed)."""
    if len(values) == 1:
        (total,) = values
        return ZERO if total is None else Decimal(total)
    whole, high, low = (int(v or 0) for v in values)
    return EXACT.add(
        EXACT.add(Decimal(whole), EXACT.divide(Decimal(high), _SIX)),
        EXACT.divide(Decimal(low), _TWELVE),
    )

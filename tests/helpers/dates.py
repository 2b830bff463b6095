"""Instants and billing periods the pure tests share (all UTC, all in 2026)."""

from __future__ import annotations

from datetime import UTC, datetime

from rating.model import Period


def at(year: int, month: int, day: int = 1, hour: int = 0, minute: int = 0) -> datetime:
    """That instant in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


OCTOBER = Period(at(2026, 10), at(2026, 11))
NOVEMBER = Period(at(2026, 11), at(2026, 12))
DECEMBER = Period(at(2026, 12), at(2027, 1))

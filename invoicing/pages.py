"""Keyset pagination of ledger lists: newest first (created_at, then id), one helper.

A cursor is the opaque position after the last row of a page; a page with more rows
after it carries the cursor of its last row, the last page none.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from core.errors import InvalidInput

RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    next_cursor: str | None


def encode_cursor(created_at: datetime, ident: str) -> str:
    """The cursor after a row."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{ident}".encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (created_at, id) a cursor points after, or None for the first page."""
    if not cursor:
        return None
    try:
        created, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), ident
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not valid; pass the nextCursor of a previous page") from None


def keyset_page(
    session: Session, query: Select[Any], model: Any, limit: int, cursor: str | None
) -> Page[Any]:
    """One page of `query` over `model` (a table with created_at and id), newest first."""
    if (after := decode_cursor(cursor)) is not None:
        query = query.where(
            (model.created_at < after[0]) | ((model.created_at == after[0]) & (model.id < after[1]))
        )
    ordered = query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    rows = list(session.execute(ordered).unique().scalars().all())
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return Page(rows, encode_cursor(last.created_at, last.id) if last is not None else None)


def whole(rows: list[RowT]) -> Page[RowT]:
    """A list that is never paged: one page, no cursor."""
    return Page(rows, None)

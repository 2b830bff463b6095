"""Which write failures blame the rows (bisect, dead-letter) and which the store
(retry while consumption pauses): a store in trouble must never dead-letter good
events, and only errors about the data are refusals."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from streams.sink import is_refusal


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (ValueError("Decimal out of range"), True),
        (TypeError("expected str"), True),
        (OverflowError("int too big"), True),
        (DataError("bad value"), True),
        (DatabaseError("Code: 53. DB::Exception: Type mismatch"), True),
        (DatabaseError("Code: 407. DB::Exception: Decimal math overflow"), True),
        (DatabaseError("Code: 252. DB::Exception: Too many parts"), False),
        (DatabaseError("Code: 241. DB::Exception: Memory limit exceeded"), False),
        (DatabaseError("Code: 243. DB::Exception: Cannot reserve space"), False),
        (DatabaseError("something went wrong"), False),
        (OperationalError("connection refused"), False),
        (ConnectionError("reset"), False),
        (TimeoutError(), False),
        (RuntimeError("unknown"), False),
    ],
)
def test_refusals(error: BaseException, refused: bool) -> None:
    assert is_refusal(error) is refused

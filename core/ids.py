"""Ids with a readable prefix, time-ordered so that bulk inserts append to the index."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """A unique id with a readable prefix: inv_0193a1b2c3d4e5f6a7b8c9d0e1f2.

    Milliseconds first, then 64 random bits: new rows land at the end of the
    primary-key index instead of on random pages. The time part only orders ids; no
    rule reads it back, so it is taken from the process, not from an injected clock."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{millis:011x}{secrets.token_hex(8)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids as `new_id` makes them, with one read of the clock and of the system's
    randomness (bulk inserts make hundreds of thousands)."""
    millis = time.time_ns() // 1_000_000
    noise = secrets.token_hex(8 * count)
    return [f"{prefix}_{millis:011x}{noise[16 * i : 16 * i + 16]}" for i in range(count)]

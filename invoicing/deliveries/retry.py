"""When a failed delivery is tried again: exponential backoff with full jitter.

Attempt n (1-based) that failed is retried after `base × 2^(n-1)`, capped, with a
random part so that many deliveries failing together (a receiver down) do not all
return at the same instant. The jitter source is injected so tests are exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

Jitter = Callable[[], float]  # a number in [0, 1)


@dataclass(frozen=True)
class Backoff:
    base: timedelta
    cap: timedelta
    max_attempts: int
    jitter: float = 0.2  # the random share of each wait, at most

    def delay(self, attempts: int, draw: Jitter = random.random) -> timedelta:
        """The wait after the `attempts`-th failed attempt."""
        wait = min(self.base * (1 << (attempts - 1)), self.cap)
        return wait * (1 - self.jitter * draw())

    def next_attempt(
        self, attempts: int, now: datetime, draw: Jitter = random.random
    ) -> datetime | None:
        """When to try again after `attempts` failed ones, or None: give up."""
        if attempts >= self.max_attempts:
            return None
        return now + self.delay(attempts, draw)

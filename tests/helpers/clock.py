"""A clock for the live stack that follows the wall until a test moves it."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from core.clock import SYSTEM_CLOCK, Clock, as_utc


class TravelClock:
    """The system time, shifted by an offset a test sets (`travel_to`) and clears (`reset`).

    Time keeps running after a jump, so "it is now 2026-11-03" stays true to the second
    and timeouts measured against this clock still expire. The API server reads it from
    another thread, hence the lock.
    """

    def __init__(self, base: Clock = SYSTEM_CLOCK) -> None:
        self._base = base
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return self._base.now() + offset

    def travel_to(self, at: datetime) -> datetime:
        """From now on the clock reads `at` (naive means UTC), then runs on."""
        target = as_utc(at)
        with self._lock:
            self._offset = target - self._base.now()
        return target

    def advance(self, delta: timedelta) -> datetime:
        """Jump `delta` ahead (or back, if negative) of where the clock is."""
        with self._lock:
            self._offset += delta
        return self.now()

    def reset(self) -> None:
        """Back to the system time."""
        with self._lock:
            self._offset = timedelta(0)

    @property
    def travelled(self) -> bool:
        with self._lock:
            return self._offset != timedelta(0)

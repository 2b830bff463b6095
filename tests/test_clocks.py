"""The test clocks: the frozen `clock` fixture and the live stack's `TravelClock`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.clock import FrozenClock
from tests.helpers.clock import TravelClock
from tests.helpers.dates import at


def test_clock_fixture_stands_still_until_moved(clock):
    assert isinstance(clock, FrozenClock)
    assert clock.now() == at(2026, 11, 3) == clock.now()
    assert clock.advance(timedelta(days=1)) == at(2026, 11, 4)
    clock.set(datetime(2026, 12, 1, 9))  # naive means UTC
    assert clock.now() == at(2026, 12, 1, 9)


def test_travel_clock_follows_its_base_until_it_travels():
    base = FrozenClock(at(2026, 12, 1, 21))
    travel = TravelClock(base)
    assert travel.now() == at(2026, 12, 1, 21) and not travel.travelled
    assert travel.travel_to(datetime(2026, 11, 3)) == at(2026, 11, 3)
    assert travel.now() == at(2026, 11, 3) and travel.travelled
    # time runs on from the destination as it does on the base
    base.advance(timedelta(minutes=5))
    assert travel.now() == at(2026, 11, 3, 0, 5)
    assert travel.advance(timedelta(days=2)) == at(2026, 11, 5, 0, 5)
    travel.reset()
    assert travel.now() == at(2026, 12, 1, 21, 5) and not travel.travelled


def test_travel_clock_on_the_wall_keeps_running():
    travel = TravelClock()
    before = datetime.now(UTC)
    assert before <= travel.now() <= datetime.now(UTC)
    travel.travel_to(at(2026, 11, 3, 12))
    first = travel.now()
    assert at(2026, 11, 3, 12) <= first < at(2026, 11, 3, 12, 1)
    assert travel.now() >= first
    assert first.tzinfo is not None

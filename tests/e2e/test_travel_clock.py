"""The live stack's clock travels when a test says so, and is back at the wall after."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.helpers.clock import TravelClock
from tests.helpers.dates import at

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def test_the_stack_runs_on_a_travel_clock(stack, travel_clock):
    assert stack.runtime.clock is travel_clock
    assert isinstance(travel_clock, TravelClock) and not travel_clock.travelled
    travel_clock.travel_to(at(2026, 11, 3))
    assert at(2026, 11, 3) <= stack.runtime.clock.now() < at(2026, 11, 3, 0, 1)


def test_the_next_test_starts_at_the_wall(stack):
    # Runs after the test above (file order): its travel was undone.
    assert not stack.runtime.clock.travelled
    assert abs((stack.runtime.clock.now() - datetime.now(UTC)).total_seconds()) < 5

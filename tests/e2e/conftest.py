"""The live stack of the end-to-end tests: API + stream worker on real Kafka and chDB.

The stack lives for the e2e package only. Its threads (uvicorn, the Faust worker and
aiokafka's fetcher, which reshuffles the global `random` on every fetch) must not run
during the rest of the suite: besides taking CPU, they change the global random state
while hypothesis draws examples, which hypothesis reports as a strategy using the
`random` module (HypothesisDeprecationWarning) in tests that never touch it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.clock import TravelClock
from tests.helpers.stack import Stack, serving, stack_settings


@pytest.fixture(scope="package")
def stack(
    kafka_bootstrap: str, chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    from meterline.runtime import Runtime

    data_dir = tmp_path_factory.mktemp("stack")
    runtime = Runtime.open(stack_settings(data_dir, kafka_bootstrap, chdb_dir))
    # The API's "now": the wall clock until a test travels (`travel_clock`).
    runtime.clock = TravelClock()
    with serving(runtime, data_dir) as running:
        yield running


@pytest.fixture(autouse=True)
def _stack_clock_back_to_now(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test did to the stack's clock, the next test starts at the wall time."""
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").runtime.clock.reset()


@pytest.fixture
def travel_clock(stack: Stack) -> Iterator[TravelClock]:
    """The live stack's clock: `travel_clock.travel_to(at(2026, 11, 3))` moves the API's now."""
    clock = stack.runtime.clock
    assert isinstance(clock, TravelClock)
    yield clock
    clock.reset()

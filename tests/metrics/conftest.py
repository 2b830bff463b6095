"""`stack`: a live Meterline (API + stream worker on the real broker, chDB and SQLite)
for this package only (its threads must not run during the rest of the suite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.stack import Stack, serving, stack_settings


@pytest.fixture(scope="package")
def stack(
    kafka_bootstrap: str, chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    from meterline.runtime import Runtime

    data_dir = tmp_path_factory.mktemp("metrics-stack")
    runtime = Runtime.open(stack_settings(data_dir, kafka_bootstrap, chdb_dir, "metrics"))
    with serving(runtime, data_dir) as running:
        yield running

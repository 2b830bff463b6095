"""`api`: a fresh tenant's client of the API over a fresh ledger, on each backend, with
an in-memory usage source so that bill runs can run through the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.billing.fakes import InMemoryUsage
from tests.helpers.ledger_api import ApiClient, ledger_api


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path / "a") as client:
        client.runtime.usage = InMemoryUsage()
        yield client


@pytest.fixture
def other(ledger_url: str, tmp_path: Path, api: ApiClient) -> Iterator[ApiClient]:
    """Another tenant's client over the same ledger."""
    with ledger_api(ledger_url, tmp_path / "b") as client:
        yield client

"""`api`: a fresh tenant's client over a fresh ledger (each backend), its clock in mid
October, with an in-memory usage source so that bill runs run through the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.billing.fakes import InMemoryUsage
from tests.helpers.ledger_api import ApiClient, ledger_api

MID_OCTOBER = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    (tmp_path / "a").mkdir()
    with ledger_api(ledger_url, tmp_path / "a", now=MID_OCTOBER) as client:
        client.runtime.usage = InMemoryUsage()
        yield client


@pytest.fixture
def other(ledger_url: str, tmp_path: Path, api: ApiClient) -> Iterator[ApiClient]:
    """Another tenant's client over the same ledger."""
    (tmp_path / "b").mkdir()
    with ledger_api(ledger_url, tmp_path / "b", now=MID_OCTOBER) as client:
        yield client

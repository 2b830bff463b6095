"""`api`: a fresh tenant's client of the API over a fresh ledger, on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.ledger_api import ApiClient, ledger_api


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path) as client:
        yield client


@pytest.fixture
def other(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    """A second tenant on the same ledger."""
    (tmp_path / "other").mkdir()
    with ledger_api(ledger_url, tmp_path / "other") as client:
        yield client

"""`api` (a fresh tenant's client on each backend) and `other` (a second tenant's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.billing.fakes import InMemoryUsage
from tests.documents import conftest as documents_conftest
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


# The UBL 2.1 schemas of the document tests (session-scoped, fetched once).
ubl = documents_conftest.ubl

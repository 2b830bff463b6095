"""Two tenants' clients of the ledger API (SQLite and PostgreSQL) whose usage store is an
empty in-memory one, so fixed-fee plans bill through real bill runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.billing.fakes import InMemoryUsage
from tests.helpers.ledger_api import ApiClient, ledger_api

NOV_1 = datetime(2026, 11, 1, 9, tzinfo=UTC)


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, now=NOV_1) as client:
        client.runtime.usage = InMemoryUsage()
        yield client


@pytest.fixture
def other(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    """A second tenant on the same ledger."""
    (tmp_path / "other").mkdir()
    with ledger_api(ledger_url, tmp_path / "other", now=NOV_1) as client:
        yield client

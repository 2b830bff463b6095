"""`api`: a fresh tenant's client of the API over a fresh ledger, on each backend;
`receiver`: the tenant's own endpoint for the custom-webhook ERP, on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver("/erp") as server:
        yield server

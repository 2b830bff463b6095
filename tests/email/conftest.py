"""`smtp`: a real SMTP server on loopback; `api`: a fresh tenant's client of the API
whose server sends email through it, on each ledger backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.smtp_server import SmtpServer, smtp_server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def api(ledger_url: str, tmp_path: Path, smtp: SmtpServer) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, **smtp.settings()) as client:
        yield client

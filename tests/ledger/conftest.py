"""Fixtures of the ledger tests: a session factory on a fresh, migrated database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.ledger import session_factory


@pytest.fixture
def factory(ledger_url: str) -> Iterator[sessionmaker[Session]]:
    with session_factory(ledger_url) as f:
        yield f


@pytest.fixture
def locking() -> None:
    """Tests that take invoice row locks (kept as a marker of what they exercise)."""

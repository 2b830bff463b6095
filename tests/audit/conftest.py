"""`api`: a fresh tenant's client over a fresh ledger on each backend; helpers that read
the activity log and the request log, and the id of the client's API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from invoicing.models import ApiKey
from tests.helpers.ledger_api import ApiClient, ledger_api


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path) as client:
        yield client


@pytest.fixture
def other(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    """A second tenant of the same ledger (its own app and runtime)."""
    (tmp_path / "other").mkdir()
    with ledger_api(ledger_url, tmp_path / "other") as client:
        yield client


def key_id(api: ApiClient) -> str:
    with api.runtime.sessions() as session:
        ident: str = session.execute(
            select(ApiKey.id).where(ApiKey.tenant_id == api.tenant_id)
        ).scalar_one()
    return ident


def activity(api: ApiClient, **params: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.ok("GET", "/activity", params={"limit": 500, **params})["data"]
    return data


def request_log(api: ApiClient, **params: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.ok("GET", "/request-log", params={"limit": 500, **params})[
        "data"
    ]
    return data

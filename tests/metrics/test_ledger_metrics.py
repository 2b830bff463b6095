"""Real actions move the right series, on SQLite and PostgreSQL: webhook attempts by
outcome and status class, bill runs (duration, outcome, subscriptions)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from core.clock import FrozenClock
from invoicing.billing import BillRunner, create_bill_run
from meterline import deliverers
from tests.billing.fakes import InMemoryUsage
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient, ledger_api
from tests.helpers.webhook_receiver import webhook_receiver
from tests.metrics.scrape import parse, value

pytestmark = pytest.mark.ledger


def _scrape(api: ApiClient) -> Any:
    response = api.get("http://testserver/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    return parse(response.text)


def test_webhook_attempts_count_by_outcome_and_status(ledger_url: str, tmp_path: Path) -> None:
    name = "meterline_webhook_attempts_total"
    with ledger_api(ledger_url, tmp_path) as api, webhook_receiver() as receiver:
        api.ok("POST", "/webhook-endpoints", json={"url": receiver.url, "secret": "whsec_m_1"})
        receiver.answers = [503, 200]
        api.customer("acme")
        before = _scrape(api)
        api.open_invoice("acme", "10.00")
        deliverers.deliver(api.runtime, api.clock.now())
        api.clock.advance(timedelta(seconds=10))
        deliverers.deliver(api.runtime, api.clock.now())
        after = _scrape(api)
        assert api.tenant_id not in api.get("http://testserver/metrics").text

    def moved(outcome: str, status: str) -> float:
        labels = {"outcome": outcome, "status": status}
        return value(after, name, labels) - value(before, name, labels)

    assert moved("retrying", "5xx") == 1
    assert moved("succeeded", "2xx") == 1
    assert moved("failed", "5xx") == 0


class _BrokenUsage(InMemoryUsage):
    @contextmanager
    def bill_run_usage(self, tenant_id: str) -> Iterator[Any]:
        raise RuntimeError("ClickHouse is away")
        yield


def test_a_bill_run_moves_its_duration_and_outcome(ledger_url: str, tmp_path: Path) -> None:
    def sample(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    with ledger_api(ledger_url, tmp_path) as api:
        api.customer("acme")
        count, completed, failed = (
            sample("meterline_bill_run_seconds_count"),
            sample("meterline_bill_runs_total", {"outcome": "completed"}),
            sample("meterline_bill_runs_total", {"outcome": "failed"}),
        )
        clock = FrozenClock(DEFAULT_NOW)
        for usage in (InMemoryUsage(), _BrokenUsage()):
            with api.runtime.session() as session:
                run_id = create_bill_run(
                    session, api.tenant_id, DEFAULT_NOW - timedelta(days=31), DEFAULT_NOW
                ).id
            BillRunner(api.runtime.sessions, usage, clock=clock).run(run_id)
        scraped = _scrape(api)
    assert value(scraped, "meterline_bill_run_seconds_count") == count + 2
    assert value(scraped, "meterline_bill_runs_total", {"outcome": "completed"}) == completed + 1
    assert value(scraped, "meterline_bill_runs_total", {"outcome": "failed"}) == failed + 1

"""The usage and rejected-events pages over a real usage store (the session's in-process
ClickHouse engine): the chart holds the rollup's hourly counts per metric, and a newly
written event shows up on the next periodic refresh without reloading the page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.schema import Rejection, UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import UsageStore
from tests.dashboard.conftest import NOW, Dashboard, sign_in
from tests.helpers.browser import Browser, live_server, open_browser, shots_dir
from tests.helpers.ledger_api import ledger_api
from tests.helpers.stack import CH_DATABASE

pytestmark = [pytest.mark.ledger, pytest.mark.clickhouse]


@pytest.fixture
def with_usage(ledger_url: str, tmp_path: Path, clickhouse: Any) -> Iterator[Dashboard]:
    with ledger_api(ledger_url, tmp_path, now=NOW) as api:
        api.runtime.usage = UsageStore(clickhouse, CH_DATABASE)
        with live_server(api.app) as url:
            yield Dashboard(api, url)


def _event(tenant: str, n: int, metric: str, at: datetime) -> UsageEvent:
    return UsageEvent(tenant, f"ev-{metric}-{n}", "acme", metric, at, None, {})


def test_usage_chart_and_live_refresh(
    with_usage: Dashboard, clickhouse: Any, request: pytest.FixtureRequest
) -> None:
    tenant = with_usage.api.tenant_id
    sink = ClickHouseSink(clickhouse, CH_DATABASE)
    hour = NOW.replace(minute=0)
    events = [
        _event(tenant, i, "api_calls", hour - timedelta(hours=2, minutes=-i)) for i in range(3)
    ]
    events += [_event(tenant, i, "api_calls", hour + timedelta(minutes=i)) for i in range(5)]
    events += [_event(tenant, i, "storage_gb", hour - timedelta(hours=1)) for i in range(2)]
    events.append(events[0])  # a repeat: counted once (uniqExact over event ids)
    sink.write_events(events)
    sink.write_rejections(
        [(tenant, Rejection("metric is missing", "bad-1"), '{"id": "bad-1"}', "http")]
    )

    with open_browser(with_usage.base_url, shots_dir(request)) as browser:
        sign_in(browser, tenant, with_usage.api.api_key)
        browser.go("/dashboard/usage")
        series = _usage_series(browser)
        assert series["api_calls"][-3:] == [3, 0, 5]
        assert series["storage_gb"][-3:] == [0, 2, 0]
        assert len(series["api_calls"]) == 24
        rows = [r.text for r in browser.find_all("#usage-table tbody tr")]
        assert rows == ["api_calls 8 5", "storage_gb 2 0"]
        browser.screenshot("usage")

        # Live: two more events this hour appear on the next refresh (every 15 s).
        sink.write_events(
            [_event(tenant, i, "api_calls", hour + timedelta(minutes=i)) for i in (5, 6)]
        )
        before = browser.js("return window.meterline.refreshes")
        browser.wait(
            lambda d: d.execute_script("return window.meterline.refreshes") > before,
            timeout=25,
            what="the usage page's periodic refresh",
        )
        assert _usage_series(browser)["api_calls"][-1] == 7
        assert browser.text("#usage-table tbody tr") == "api_calls 10 7"
        browser.screenshot("usage-refreshed")

        browser.go("/dashboard/usage?hours=168")
        assert len(_usage_series(browser)["api_calls"]) == 168

        browser.go("/dashboard/rejected-events")
        assert "bad-1 metric is missing http" in browser.text("table tbody tr")
        browser.screenshot("rejected-events")
        browser.assert_no_console_errors()


def _usage_series(browser: Browser) -> dict[str, list[int]]:
    found: dict[str, list[int]] = browser.js(
        """const chart = Chart.getChart(document.getElementById("usage-chart"));
           return Object.fromEntries(chart.data.datasets.map(d => [d.label, d.data]));"""
    )
    return found

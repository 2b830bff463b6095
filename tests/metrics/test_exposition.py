"""GET /metrics of the in-process API: Prometheus's text format, every family of
core.metrics and of the worker's stats, an optional token, and the ingest front's
merge of two processes (on SQLite and PostgreSQL for the ledger-backed API)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest

from api.metrics import StreamStatsCollector, merged
from streams.app import StreamStats
from tests.helpers.ledger_api import ledger_api
from tests.metrics.scrape import families, parse, value

CORE_FAMILIES = {
    "meterline_http_events": "counter",
    "meterline_stream_batch_write_seconds": "histogram",
    "meterline_quota_evaluations": "counter",
    "meterline_alert_evaluations": "counter",
    "meterline_bill_runs": "counter",
    "meterline_bill_run_seconds": "histogram",
    "meterline_bill_run_subscriptions": "counter",
    "meterline_webhook_attempts": "counter",
    "meterline_erp_sync_attempts": "counter",
}
STREAM_FAMILIES = {
    "meterline_stream_consumed": "counter",
    "meterline_stream_written": "counter",
    "meterline_stream_rejected": "counter",
    "meterline_stream_batches": "counter",
    "meterline_stream_write_retries": "counter",
    "meterline_stream_hook_errors": "counter",
    "meterline_stream_seconds": "counter",
    "meterline_stream_consumer_lag": "gauge",
}


@pytest.mark.ledger
def test_the_exposition_parses_and_names_every_family(ledger_url: str, tmp_path: Path) -> None:
    with ledger_api(ledger_url, tmp_path) as api:
        response = api.get("http://testserver/metrics", headers={"Authorization": ""})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = families(response.text)
    for name, kind in {**CORE_FAMILIES, **STREAM_FAMILIES}.items():
        assert found.get(name) == kind, (name, found.get(name))
    parse(response.text)  # no series twice
    assert "process_resident_memory_bytes" in response.text  # the process collector too
    assert "_created" not in response.text


@pytest.mark.ledger
def test_a_metrics_token_is_required_when_configured(ledger_url: str, tmp_path: Path) -> None:
    with ledger_api(ledger_url, tmp_path, metrics_token="scrape-secret") as api:
        url = "http://testserver/metrics"
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                        {"Authorization": f"Bearer {api.api_key}"}):  # fmt: skip
            refused = api.get(url, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "unauthorized"
            assert "scrape-secret" not in refused.text
        allowed = api.get(url, headers={"Authorization": "Bearer scrape-secret"})
        assert allowed.status_code == 200 and "meterline_http_events" in allowed.text


def test_stream_stats_render_with_their_lag_per_partition() -> None:
    stats = StreamStats(consumed=7, written=5, rejected=2, batches=3)
    stats.spent("write", 0.25)
    stats.lag.update({0: 12, 3: 0})
    series = parse(generate_latest(StreamStatsCollector(stats, "usage-events")))
    assert value(series, "meterline_stream_consumed_total") == 7
    assert value(series, "meterline_stream_written_total") == 5
    assert value(series, "meterline_stream_rejected_total") == 2
    assert value(series, "meterline_stream_seconds_total", {"phase": "write"}) == 0.25
    lag = {
        dict(labels)["partition"]: v
        for (name, labels), v in series.items()
        if name == "meterline_stream_consumer_lag"
    }
    assert lag == {"0": 12, "3": 0}


def test_the_front_merges_two_processes_with_a_process_label() -> None:
    def one(count: float) -> bytes:
        registry = CollectorRegistry()
        Counter("meterline_http_events", "x", ["outcome"], registry=registry).labels(
            "accepted"
        ).inc(count)
        return generate_latest(registry)

    text = merged([("front", one(3)), ("main", one(0)), ("worker", generate_latest(REGISTRY))])
    assert text.count(b"# TYPE meterline_http_events_total counter") == 1
    series = parse(text)
    accepted = {"outcome": "accepted"}
    assert value(series, "meterline_http_events_total", {**accepted, "process": "front"}) == 3
    assert families(text)["meterline_bill_run_seconds"] == "histogram"

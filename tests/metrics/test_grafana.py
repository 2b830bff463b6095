"""The compose stack's monitoring files: the Grafana dashboard is valid JSON whose
every PromQL names series this code exports, Prometheus scrapes every Meterline
process of docker-compose.yml, Grafana is provisioned with both. (No Docker here: the
files are parsed, not run; YAML is parsed when PyYAML is importable, else checked as
text.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from api.metrics import exposition
from streams.app import StreamStats
from tests.metrics.scrape import families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "infra/grafana/meterline.json"
PROMETHEUS = ROOT / "infra/prometheus/prometheus.yml"
PROVISIONING = ROOT / "infra/grafana/provisioning"
COMPOSE = ROOT / "docker-compose.yml"

# PromQL words that are not series names.
PROMQL = {"sum", "by", "rate", "increase", "histogram_quantile", "le", "without", "avg",
          "max", "min", "count", "topk", "irate", "on", "ignoring"}  # fmt: skip


def _exported() -> set[str]:
    """Every sample name /metrics can show (plus Prometheus's own `up`)."""
    stats = StreamStats()
    stats.lag[0] = 0
    names = {"up"}
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"],
                "gauge": [""], "summary": ["_count", "_sum", ""], "info": ["_info"]}  # fmt: skip
    for name, kind in families(exposition(stats, "usage-events")).items():
        names.update(name + s for s in suffixes.get(kind, [""]))
    return names


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    return list(dashboard["panels"])


def _series_in(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_groups = re.sub(r"\b(by|without)\s*\([^)]*\)", "", without_ranges)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groups))
    return {w for w in words if w not in PROMQL and not re.fullmatch(r"[0-9.]+", w)}


def test_every_panel_queries_series_the_code_exports() -> None:
    exported = _exported()
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels)
    seen: set[str] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == "meterline-prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = _series_in(target["expr"])
            assert names, (panel["title"], target["expr"])
            unknown = names - exported
            assert not unknown, (panel["title"], target["expr"], unknown)
            seen |= names
    # the figures operators watch are all on the dashboard
    watched = {
        "meterline_http_events_total", "meterline_stream_written_total",
        "meterline_stream_rejected_total", "meterline_stream_consumer_lag",
        "meterline_stream_batch_write_seconds_bucket", "meterline_quota_evaluations_total",
        "meterline_alert_evaluations_total", "meterline_bill_run_seconds_bucket",
        "meterline_bill_runs_total", "meterline_webhook_attempts_total",
        "meterline_erp_sync_attempts_total",
    }  # fmt: skip
    assert watched <= seen, watched - seen


def test_the_series_finder_reads_promql() -> None:
    expr = 'histogram_quantile(0.95, sum by (le) (rate(x_bucket{outcome="a"}[5m]))) / y_total'
    assert _series_in(expr) == {"x_bucket", "y_total"}


def _yaml(path: Path) -> Any:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text())


def test_prometheus_scrapes_every_meterline_process_of_the_compose_stack() -> None:
    text = PROMETHEUS.read_text()
    for target in ("api:8080", "worker-1:9100", "worker-2:9100", "scheduler:9100"):
        assert f'"{target}"' in text, target
    compose = COMPOSE.read_text()
    for needle in ("./infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml",
                   "./infra/grafana/provisioning:/etc/grafana/provisioning",
                   "./infra/grafana/meterline.json:/var/lib/grafana/dashboards/meterline.json",
                   "METERLINE_METRICS_HOST: 0.0.0.0"):  # fmt: skip
        assert needle in compose, needle
    datasource = (PROVISIONING / "datasources/prometheus.yml").read_text()
    assert "uid: meterline-prometheus" in datasource and "http://prometheus:9090" in datasource
    provider = (PROVISIONING / "dashboards/meterline.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider


def test_the_monitoring_yaml_parses_into_the_stack_it_describes() -> None:
    config = _yaml(PROMETHEUS)
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    stack = _yaml(COMPOSE)["services"]
    assert {"prometheus", "grafana"} <= set(stack)
    for service in ("worker-1", "worker-2", "scheduler"):
        assert stack[service]["environment"]["METERLINE_METRICS_HOST"] == "0.0.0.0"
        assert f"{service}:9100" in targets
    assert "api:8080" in targets and "8080" in stack["api"]["command"]
    sources = _yaml(PROVISIONING / "datasources/prometheus.yml")["datasources"]
    assert [s["uid"] for s in sources] == ["meterline-prometheus"]
    providers = _yaml(PROVISIONING / "dashboards/meterline.yml")["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"

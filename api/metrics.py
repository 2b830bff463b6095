"""GET /metrics: the exposition of this process, in Prometheus's text format.

What a process shows is its own: the metric objects of `core.metrics` (process-wide)
and, where a stream worker runs, its `StreamStats` (batches, phases, consumer lag per
partition) read at scrape time. Each process is a scrape target of its own (the API,
every worker, the scheduler: docs/metrics.md); PromQL sums them. The one exception is
`meterline serve` with its ingest front: there the front answers /metrics with its
own series and the main process's, each sample labelled `process="front"|"main"`
(`merged`), so one scrape of the public port sees both.

With `METERLINE_METRICS_TOKEN` set, /metrics wants `Authorization: Bearer <token>`;
unset (the default, like most exporters) it is open: no series carries tenant data.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from api.errors import install_error_handlers
from core.errors import Unauthenticated
from streams.app import StreamStats

# The classic text format (what generate_latest writes), understood by every Prometheus.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StreamStatsCollector:
    """A worker's `StreamStats` as Prometheus families (the names /metrics always had)."""

    def __init__(self, stats: StreamStats, topic: str = "") -> None:
        self._stats = stats
        self._topic = topic

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        for name, value, text in (
            ("consumed", stats.consumed, "Messages the worker consumed from usage-events."),
            ("written", stats.written, "Events the worker stored in ClickHouse."),
            ("rejected", stats.rejected, "Events the worker dead-lettered, with a reason."),
            ("batches", stats.batches, "Batches the worker handled."),
            ("write_retries", stats.write_retries, "ClickHouse writes retried (backpressure)."),
            ("hook_errors", stats.hook_errors, "Failures of the quota/alert steps of a batch."),
        ):
            yield CounterMetricFamily(f"meterline_stream_{name}", text, value=value)
        seconds = CounterMetricFamily(
            "meterline_stream_seconds", "Worker seconds spent per batch phase.", labels=["phase"]
        )
        for phase, spent in sorted(dict(stats.seconds).items()):
            seconds.add_metric([phase], spent)
        yield seconds
        lag = GaugeMetricFamily(
            "meterline_stream_consumer_lag",
            "Messages of usage-events not yet committed by the group, per partition this "
            "worker holds (log end offset - committed offset).",
            labels=["topic", "partition"],
        )
        for partition, behind in sorted(dict(stats.lag).items()):
            lag.add_metric([self._topic, str(partition)], behind)
        yield lag


def exposition(stats: StreamStats | None = None, topic: str = "") -> bytes:
    """This process's metrics: the process-wide registry, plus a worker's stats."""
    text = generate_latest(REGISTRY)
    if stats is not None:
        text += generate_latest(StreamStatsCollector(stats, topic))
    return text


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merged(parts: Sequence[tuple[str, bytes]]) -> bytes:
    """Several processes' expositions as one: every sample gains `process="<name>"`,
    and families of the same name become one (one HELP and TYPE, all samples)."""
    families: dict[str, Metric] = {}
    for process, text in parts:
        for family in text_string_to_metric_families(text.decode()):
            into = families.get(family.name)
            if into is None:
                into = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            for sample in family.samples:
                labels = {**sample.labels, "process": process}
                into.add_sample(sample.name, labels, sample.value, sample.timestamp)
    return generate_latest(_Families(families.values()))


def check_token(request: Request, token: str | None) -> None:
    """Refuse the scrape unless it carries the configured token (none configured: open)."""
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise Unauthenticated("GET /metrics needs 'Authorization: Bearer <metrics token>'")


def metrics_app(token: str | None, stats: StreamStats | None = None, topic: str = "") -> FastAPI:
    """The listener of a process without the HTTP API (a worker, the scheduler):
    GET /metrics (and /healthz) only."""
    app = FastAPI(title="Meterline metrics", openapi_url=None)
    install_error_handlers(app)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        check_token(request, token)
        return Response(exposition(stats, topic), media_type=CONTENT_TYPE)

    return app

"""The process's operational metrics: what operators watch, in Prometheus's terms.

Every metric object of Meterline is here, in the process-wide default registry of
`prometheus_client`, so that each layer records with one line where the thing
happens (`metrics.WEBHOOK_ATTEMPTS.labels(...).inc()`) and `GET /metrics` renders the
lot. They are in-memory counters: recording does no I/O and cannot fail a request,
a batch or a bill run. Figures kept per runtime (the stream worker's `StreamStats`,
its consumer lag) are rendered beside these at scrape time (api/metrics.py).

Labels are bounded sets only (an outcome, a stage, a provider, an HTTP status class,
a partition): never a tenant, customer, endpoint URL or error text, whose
cardinality is unbounded and which would carry tenants' data into the monitoring
system. docs/metrics.md lists every series and what it counts.

`rating/` records nothing (it stays pure; an import-linter contract says so).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

# `*_created` series double every counter's series for a timestamp nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds, from a fast local write (a few ms) to a ClickHouse in trouble (retried).
_WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds, from an empty tenant to a 100,000-subscription period close.
_BILL_RUN_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

HTTP_EVENTS = Counter(
    "meterline_http_events",
    "Usage events of POST /api/v1/events: accepted (in Kafka, answered 202) or rejected "
    "alone with a reason.",
    ["outcome"],
)
BATCH_WRITE_SECONDS = Histogram(
    "meterline_stream_batch_write_seconds",
    "Time to store one consumed batch in ClickHouse, retries under backpressure included.",
    buckets=_WRITE_BUCKETS,
)
QUOTA_EVALUATIONS = Counter(
    "meterline_quota_evaluations",
    "Hard caps measured after a stored batch: within the cap, or exceeded (a crossing).",
    ["outcome"],
)
ALERT_EVALUATIONS = Counter(
    "meterline_alert_evaluations",
    "Usage and wallet alerts evaluated: a threshold reached, or all below.",
    ["kind", "outcome"],
)
BILL_RUNS = Counter(
    "meterline_bill_runs",
    "Bill runs finished: completed, or failed as a whole.",
    ["outcome"],
)
BILL_RUN_SECONDS = Histogram(
    "meterline_bill_run_seconds",
    "Duration of a bill run, from start to completed or failed.",
    buckets=_BILL_RUN_BUCKETS,
)
BILL_RUN_SUBSCRIPTIONS = Counter(
    "meterline_bill_run_subscriptions",
    "Subscription periods a bill run handled: invoiced, or failed (recorded on the run).",
    ["outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "meterline_webhook_attempts",
    "Webhook delivery attempts: succeeded, retrying (failed, tried again later) or failed "
    "(given up); status is the receiver's HTTP status class, or none (no answer).",
    ["outcome", "status"],
)
ERP_SYNC_ATTEMPTS = Counter(
    "meterline_erp_sync_attempts",
    "ERP sync attempts per provider: succeeded, retrying or failed (given up); status as "
    "for webhooks.",
    ["provider", "outcome", "status"],
)


def status_class(code: int | None) -> str:
    """An HTTP status as a bounded label: 2xx … 5xx, or none when nothing answered."""
    if code is None or not 100 <= code <= 599:
        return "none"
    return f"{code // 100}xx"


def bill_run_finished(outcome: str, seconds: float) -> None:
    """One bill run ended (`completed` or `failed`) after `seconds`."""
    BILL_RUNS.labels(outcome=outcome).inc()
    BILL_RUN_SECONDS.observe(seconds)

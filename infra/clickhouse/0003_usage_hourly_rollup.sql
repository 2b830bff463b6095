-- Hourly rollup for real-time dashboards. Event counts are exact (uniqExact of the
-- event id); value sums and maxima include redelivered duplicates, so invoices never
-- read this table: billing aggregates come from usage_events FINAL.
CREATE TABLE IF NOT EXISTS {db}.usage_hourly
(
    tenant_id   LowCardinality(String),
    customer_id String,
    metric      LowCardinality(String),
    hour        DateTime('UTC'),
    events      AggregateFunction(uniqExact, String),
    value_sum   AggregateFunction(sum, Decimal(38, 12)),
    value_max   AggregateFunction(max, Decimal(38, 12))
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, customer_id, metric, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_hourly_mv TO {db}.usage_hourly AS
SELECT
    tenant_id,
    customer_id,
    metric,
    toStartOfHour(ts) AS hour,
    uniqExactState(event_id) AS events,
    sumState(ifNull(value, toDecimal128(0, 12))) AS value_sum,
    maxState(ifNull(value, toDecimal128(0, 12))) AS value_max
FROM {db}.usage_events
GROUP BY tenant_id, customer_id, metric, hour;

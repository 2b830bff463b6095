-- Raw usage events, exact and deduplicable by (tenant, event id).
-- ORDER BY is the dedup key: ReplacingMergeTree keeps one row per (tenant_id, event_id)
-- and queries read it with FINAL, so a redelivered or resent event counts once.
-- `version` is descending in ingestion order, so the FIRST accepted copy wins.
-- No PARTITION BY: duplicates must share a partition to be collapsed by FINAL.
CREATE TABLE IF NOT EXISTS {db}.usage_events
(
    tenant_id   LowCardinality(String),
    event_id    String,
    customer_id String,
    metric      LowCardinality(String),
    ts          DateTime64(3, 'UTC'),
    value       Nullable(Decimal(38, 12)),
    properties  Map(LowCardinality(String), String),
    ingested_at DateTime64(6, 'UTC'),
    version     UInt64,
    INDEX idx_customer customer_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_ts ts TYPE minmax GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant_id, event_id);

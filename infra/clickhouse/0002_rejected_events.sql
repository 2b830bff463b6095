-- Events that were refused by the stream (malformed, unknown tenant), with the reason,
-- so that nothing accepted is ever lost silently: the API can list them.
CREATE TABLE IF NOT EXISTS {db}.rejected_events
(
    tenant_id   LowCardinality(String),
    event_id    String,
    reason      String,
    payload     String,
    source      LowCardinality(String),
    rejected_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (tenant_id, rejected_at);

-- Scratch table of a bill run: each subscription's billing interval, joined with the
-- raw events so one query per metric prices every subscription of the run.
-- Rows are deleted after the run; the TTL removes what a crashed run left behind.
CREATE TABLE IF NOT EXISTS {db}.billing_intervals
(
    run_key         String,
    tenant_id       LowCardinality(String),
    subscription_id String,
    customer_id     String,
    start           DateTime64(3, 'UTC'),
    end             DateTime64(3, 'UTC'),
    created_at      DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (run_key, customer_id)
TTL created_at + INTERVAL 1 DAY;

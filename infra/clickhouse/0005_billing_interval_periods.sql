-- The whole billing period of each registered interval: weighted_sum divides the
-- level held during a subscription's active interval by the seconds of its billing
-- period, which may be longer (a subscription started mid-month). Rows written
-- without it default to the active interval.
ALTER TABLE {db}.billing_intervals
    ADD COLUMN IF NOT EXISTS period_start DateTime64(3, 'UTC') DEFAULT start;

ALTER TABLE {db}.billing_intervals
    ADD COLUMN IF NOT EXISTS period_end DateTime64(3, 'UTC') DEFAULT end;

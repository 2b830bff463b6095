"""Helpers shared by the tests: dates, clocks, the live stack, the scenario vocabulary,
and the guard that keeps unmarked tests off Kafka, ClickHouse and the ledger."""

"""End-to-end billing scenarios, in the style of Lago's spec/scenarios.

Each scenario builds its own catalog through the API in a new tenant, sends its events
through POST /api/v1/events (Kafka → Faust → ClickHouse), waits until they are stored,
runs a bill run and asserts the exact invoice: every line's type, metric, quantity,
unit amount, amount and tax, and the totals
(subtotal, discountTotal, taxTotal, creditTotal, total, amountDue).
The arithmetic is written next to each expectation; the rules are BILLING.md's and
docs/billing-rules.md's. Nothing is shared between scenarios but the session `stack`;
the vocabulary they share (catalog, events, bill runs, invoice tuples) is
tests/helpers/scenarios.py.
"""

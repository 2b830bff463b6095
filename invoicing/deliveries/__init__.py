"""Deliverers: what tells the world of a domain event (email now; webhooks and ERP sync
follow). `dispatch` fans each event of the outbox out into delivery rows, in the
ledger; each deliverer then sends its due rows and records every attempt."""

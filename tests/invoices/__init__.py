"""The invoice after the bill run, through the HTTP API over the ledger (SQLite and
PostgreSQL): payments, dunning, credit notes, one-off invoices, documents, exports."""

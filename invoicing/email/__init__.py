"""Email: invoices and credit notes (their PDF attached) and payment receipts, sent by
SMTP from the ledger's delivery queue (docs/email.md)."""

"""Revenue analytics through the API on a seeded ledger (SQLite and PostgreSQL)."""

"""Webhooks: a tenant's endpoints, and every domain event POSTed to each subscribed one,
signed, retried, logged (docs/webhooks.md)."""

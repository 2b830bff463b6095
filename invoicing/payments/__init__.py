"""Collecting invoices: payment providers, their adapters, and the attempts made.

base.py        the gateway protocol: charge and refund, classified outcomes
stripe.py      the Stripe adapter (PaymentIntents and Refunds, idempotency keys)
providers.py   a tenant's provider connections, and the gateway each one builds
collection.py  one attempt to collect an invoice (at finalize, at a dunning step)
"""
